"""Every UiPath request reconciler makes, as typed `Call`s: one function per endpoint.

The four allocation `PUT`s are documented (Automation Suite API guide, "Allocate
Licenses to an Organization / a Tenant / a Group / a User"). The reads are NOT: the
guide has no page for reading an allocation, so each read is one `inferred_*`
function below (a `GET` on the allocation's own path, the portal's behaviour), and
nothing else in the provider builds a read. An operator confirms them with one
`curl -H "Authorization: Bearer $TOKEN" https://<domain>/<path>` per kind
(docs/providers/uipath.md, "Inferred calls").

Every id is one path segment (percent-encoded when sent), never formatted into a
path string: an id can name a subject, never change the endpoint.
"""

from __future__ import annotations

from typing import Any

from reconciler.model import Call, literal_path
from reconciler.providers.uipath.connection import UiPathConnection


def organization_path(connection: UiPathConnection, organization: str) -> tuple[str, ...]:
    return ("lrm", "api", "host", connection.host_account_id, "organization",
            connection.id_of(organization), "license")


def tenant_path(connection: UiPathConnection, organization: str, tenant: str,
                service: str) -> tuple[str, ...]:
    return ("lrm", "api", "account", connection.id_of(organization), "service-license",
            connection.id_of(tenant), service)


def users_path(connection: UiPathConnection, organization: str) -> tuple[str, ...]:
    """`<user_license_base>/api/account/{accountId}/user-license`; a `{organization}`
    segment of the configured base becomes the organization's name, as one segment."""
    base = tuple(organization if part == "{organization}" else part
                 for part in literal_path(connection.user_license_base))
    return (*base, "api", "account", connection.id_of(organization), "user-license")


def group_path(connection: UiPathConnection, organization: str, group: str) -> tuple[str, ...]:
    return (*users_path(connection, organization), "group", connection.id_of(group))


# ---- documented writes ---------------------------------------------------------------------
def allocate_organization(connection: UiPathConnection, organization: str,
                          products: list[dict[str, Any]]) -> Call:
    """`PUT .../organization/{organizationId}/license` `{productQuantities}` (host token)."""
    return Call.to("PUT", *organization_path(connection, organization),
                   body={"productQuantities": products})


def allocate_tenant(connection: UiPathConnection, organization: str, tenant: str,
                    service: str, products: list[dict[str, Any]]) -> Call:
    """`PUT .../service-license/{serviceScopeId}/{serviceType}` `{tenantName, products}`."""
    return Call.to("PUT", *tenant_path(connection, organization, tenant, service),
                   body={"tenantName": tenant, "products": products})


def allocate_group(connection: UiPathConnection, organization: str, group: str,
                   bundles: list[str]) -> Call:
    """`PUT .../user-license/group/{groupId}` `{userBundleCodes, useExternalLicense}`."""
    return Call.to("PUT", *group_path(connection, organization, group),
                   body={"userBundleCodes": bundles, "useExternalLicense": False})


def allocate_user(connection: UiPathConnection, organization: str, user: str,
                  bundles: list[str]) -> Call:
    """`PUT .../user-license` `{userIds, userBundleCodes, useExternalLicense}`."""
    return Call.to("PUT", *users_path(connection, organization), body={
        "userIds": [connection.id_of(user)], "userBundleCodes": bundles,
        "useExternalLicense": False})


# ---- inferred reads (no public page) --------------------------------------------------------
def inferred_organization_read(connection: UiPathConnection, organization: str) -> Call:
    """INFERRED: `GET` on the organization's allocation path answers
    `{"productQuantities": [{code, quantity}]}` (the PUT's own body shape)."""
    return Call.to("GET", *organization_path(connection, organization))


def inferred_tenant_read(connection: UiPathConnection, organization: str, tenant: str,
                         service: str) -> Call:
    """INFERRED: `GET` on the tenant's service-license path answers what the documented
    PUT answers (`{accountId, serviceScopeId, serviceType, license: {products}}`)."""
    return Call.to("GET", *tenant_path(connection, organization, tenant, service))


def inferred_group_read(connection: UiPathConnection, organization: str, group: str) -> Call:
    """INFERRED: `GET` on the group's path answers `{"userBundleCodes": [...]}`."""
    return Call.to("GET", *group_path(connection, organization, group))


def inferred_users_read(connection: UiPathConnection, organization: str) -> Call:
    """INFERRED: `GET .../user-license` lists the organization's users as
    `{"users": [{"userId", "userBundleCodes"}]}`."""
    return Call.to("GET", *users_path(connection, organization))


def inferred_read_of(allocation: Call) -> Call:
    """The inferred read of the resource an allocation `PUT` sets (used by `confirm`):
    every read above is a `GET` on its write's path, so this is that `GET`."""
    return Call(method="GET", path=allocation.path)
