"""The YAML `connection:` block of a Microsoft 365 tenant."""

from __future__ import annotations

from pydantic import Field

from reconciler.providers.base import Connection

GRAPH_URL = "https://graph.microsoft.com/v1.0"
LOGIN_URL = "https://login.microsoftonline.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class GraphConnection(Connection):
    """One tenant, reached as an app registration with the client-credentials grant.

    The app needs the `Organization.Read.All`, `User.ReadWrite.All` and
    `Group.ReadWrite.All` (or `LicenseAssignment.ReadWrite.All`) application permissions.
    """

    tenant_env: str
    """Variable holding the directory (tenant) id or a verified domain, the `{tenant}`
    of `/{tenant}/oauth2/v2.0/token` (not a secret; named like the client id)."""
    login_url_env: str | None = None
    """Variable holding the identity platform's URL (default https://login.microsoftonline.com)."""
    client_id_env: str
    client_secret_env: str
    page_size: int = Field(default=999, ge=1, le=999)
    """`$top` of the user and group lists (Graph serves at most 999 users a page)."""
    batch_size: int = Field(default=20, ge=1, le=20)
    """Requests per JSON `$batch` (Graph's limit is 20)."""
