"""UiPath connection settings and the vocabulary of its license ids.

Kept apart from the calls and the planning so that both can read the settings
without importing each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reconciler.providers.base import Connection

HOST_ACCOUNT_ID = "feb0dd79-85b6-483b-b297-0e49a1aa5b7d"
"""Automation Suite's host account id: the same on every installation (API guide)."""

TokenKind = Literal["host", "app"]
QUANTIFIED = frozenset({"organization", "tenant"})
"""Subject kinds that hold quantities (robots, services); groups and users hold bundle codes."""


class UiPathConnection(Connection):
    """How to reach an Automation Suite installation (base URL: https://<domain>)."""

    base_url_env: str | None = "UIPATH_BASE_URL"
    host_username_env: str
    host_password_env: str
    client_id_env: str
    client_secret_env: str
    scope: str = Field(default="PM.License", description=(
        "Scopes the external app asks for (PM.License, or PM.License.Read and "
        "PM.License.Write)."))
    host_account_id: str = HOST_ACCOUNT_ID
    user_license_base: str = Field(default="/lease_", description=(
        "Where organization-level (group, user) calls live. The references of 'Allocate "
        "Licenses to a User' (every version) and 'to a Group' (2022.10, 2023.4) put them "
        "at https://<domain>/lease_; Automation Cloud and later guides' group page at "
        "https://<domain>/{organization}/lease_ ({organization} is the organization's "
        "name, sent as one path segment)."))
    ids: dict[str, str] = Field(default_factory=dict)
    host_license: dict[str, int] = Field(default_factory=dict)

    def id_of(self, name: str) -> str:
        """The API id of a name in the YAML (a name with no entry is its own id)."""
        return self.ids.get(name, name)


def code_of(license: str) -> str:
    """`orchestrator/UNATT` → `UNATT`; an organization's or a user's code is itself."""
    return license.split("/", 1)[-1]


def service_of(license: str) -> str:
    """`orchestrator/UNATT` → `orchestrator` (a tenant license's service type)."""
    return license.split("/", 1)[0]


def token_kind(subject_kind: str) -> TokenKind:
    """Organizations and tenants are host-level calls; groups and users organization-level."""
    return "host" if subject_kind in QUANTIFIED else "app"
