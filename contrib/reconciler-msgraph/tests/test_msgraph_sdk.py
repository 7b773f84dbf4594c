"""Microsoft's own `msgraph-sdk`, unmodified, as the judge of the simulator.

Only two things are set: the SDK's base URL (the served sandbox) and a token credential
(client credentials against the sandbox's token endpoint). The SDK lists SKUs and users
and assigns and removes licences; what it changes behind reconciler's back is drift
that the next `apply` repairs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from reconciler_msgraph.simulator import GraphSimulator

from reconciler.testing.runner import cli
from reconciler.testing.served import served_sandbox

SCOPE = "https://graph.microsoft.com/.default"


class SandboxCredential:
    """An async token credential (azure-core's protocol): client credentials against
    `/{tenant}/oauth2/v2.0/token` of the served sandbox."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        async with httpx.AsyncClient(base_url=self.env["MSGRAPH_LOGIN_URL"]) as client:
            answer = await client.post(f"/{self.env['MSGRAPH_TENANT']}/oauth2/v2.0/token", data={
                "client_id": self.env["MSGRAPH_CLIENT_ID"], "scope": " ".join(scopes),
                "client_secret": self.env["MSGRAPH_CLIENT_SECRET"],
                "grant_type": "client_credentials"})
        answer.raise_for_status()
        body = answer.json()
        return AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> SandboxCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        """Nothing to release."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """`reconciler sandbox serve` for the shipped example, in its own process."""
    folder = tmp_path_factory.mktemp("sdk")
    desired = folder / "desired"
    desired.mkdir()
    example = GraphSimulator.example_document()
    assert example is not None
    (desired / "msgraph.yaml").write_text(example)
    with served_sandbox(desired, folder) as served:
        exports = served.exports
        assert exports.get("MSGRAPH_BASE_URL", "").startswith("http://127.0.0.1:"), exports
        yield desired, exports


def sdk(env: dict[str, str]) -> GraphServiceClient:
    """The SDK as shipped, with the sandbox's base URL and a token credential."""
    auth = AzureIdentityAuthenticationProvider(SandboxCredential(env), scopes=[SCOPE],
                                               allowed_hosts=["127.0.0.1"])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = env["MSGRAPH_BASE_URL"]
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture
def env(served: tuple[Path, dict[str, str]]) -> dict[str, str]:
    """The served sandbox's variables, its state back at the seed."""
    httpx.post(served[1]["MSGRAPH_LOGIN_URL"] + "/_sandbox/reset").raise_for_status()
    return served[1]


async def _user_id(graph: GraphServiceClient, upn: str) -> str:
    user = await graph.users.by_user_id(upn).get()
    assert user is not None and user.id is not None
    return user.id


async def test_the_sdk_lists_skus_and_users(env):
    graph = sdk(env)
    skus = await graph.subscribed_skus.get()
    assert skus is not None and skus.value
    by_part = {s.sku_part_number: s for s in skus.value}
    e3 = by_part["ENTERPRISEPACK"]
    assert e3.prepaid_units is not None and e3.prepaid_units.enabled == 6
    assert e3.consumed_units == 5
    assert {p.service_plan_name for p in e3.service_plans or []} >= {"YAMMER_ENTERPRISE"}
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "assignedLicenses"], top=3)
    page = await graph.users.get(RequestConfiguration(query_parameters=query))
    assert page is not None and len(page.value or []) == 3
    assert page.odata_next_link, "seven users in pages of three"
    seen = [u.user_principal_name for u in page.value or []]
    while page is not None and page.odata_next_link:
        page = await graph.users.with_url(page.odata_next_link).get()
        seen += [u.user_principal_name for u in (page.value if page else None) or []]
    assert len(seen) == 7 and "adele@contoso.com" in seen


def test_licences_the_sdk_changes_are_drift_the_next_apply_repairs(env, served):
    target = str(served[0])
    assert cli("apply", target, "--auto-approve", env=env).exit_code == 0
    assert cli("drift", target, env=env).exit_code == 0
    skus = asyncio.run(_change_grady(env))
    drifted = cli("drift", target, env=env)
    assert drifted.exit_code == 2, drifted.output
    assert cli("apply", target, "--auto-approve", env=env).exit_code == 0
    assert cli("drift", target, env=env).exit_code == 0
    held = asyncio.run(_licences_of(env, "grady@contoso.com"))
    assert held == {skus["ENTERPRISEPACK"], skus["VISIOCLIENT"]}


async def _licences_of(env: dict[str, str], upn: str) -> set[Any]:
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=["id", "assignedLicenses"])
    user = await sdk(env).users.by_user_id(upn).get(RequestConfiguration(query_parameters=query))
    assert user is not None
    return {lic.sku_id for lic in user.assigned_licenses or []}


async def _change_grady(env: dict[str, str]) -> dict[str, Any]:
    """With the SDK: takes grady's Visio seat, gives him Power BI."""
    graph = sdk(env)
    listed = await graph.subscribed_skus.get()
    assert listed is not None
    skus = {s.sku_part_number: s.sku_id for s in listed.value or []}
    grady = await _user_id(graph, "grady@contoso.com")
    removal = AssignLicensePostRequestBody(add_licenses=[],
                                           remove_licenses=[skus["VISIOCLIENT"]])
    await graph.users.by_user_id(grady).assign_license.post(removal)
    addition = AssignLicensePostRequestBody(
        add_licenses=[AssignedLicense(sku_id=skus["POWER_BI_PRO"], disabled_plans=[])],
        remove_licenses=[])
    await graph.users.by_user_id(grady).assign_license.post(addition)
    held = await _licences_of(env, "grady@contoso.com")
    assert held == {skus["ENTERPRISEPACK"], skus["POWER_BI_PRO"]}
    return skus
