"""The YAML `connection:` block of one CommCell, and the defaults it falls back on."""

from __future__ import annotations

from pydantic import Field, model_validator

from reconciler.providers.base import Connection

DEFAULT_AGENT_LICENSES: dict[str, list[str]] = {
    "File System": ["Server File System"],
    "Virtual Server": ["Virtual Server"],
    "SQL Server": ["SQL Server"],
    "Exchange Mailbox": ["Exchange Mailbox"],
}
NOT_CONSUMED_CODES = (3,)
TOKEN_PREFIXES = ("QSDK ", "SAML ", "Bearer ")


class CommvaultConnection(Connection):
    """How to reach one CommCell's Command Center API (base URL ends in /api).

    `agent_licenses`, `capacity` and `not_consumed_codes` are settings because no
    public page documents them (docs/providers/commvault.md says how to check each).
    """

    base_url_env: str | None = "COMMVAULT_BASE_URL"
    token_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    platform_types: tuple[int, ...] = (1,)
    capacity: dict[str, int] = Field(default_factory=dict)
    agent_licenses: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_AGENT_LICENSES)
    )
    not_consumed_codes: tuple[int, ...] = NOT_CONSUMED_CODES
    token_prefix: str = "QSDK "
    """Put before a `token_env` value that has none of QSDK/SAML/Bearer: cvpysdk's rule
    (`Commcell(authtoken=...)` sends a bare token as `QSDK <token>`)."""

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> CommvaultConnection:
        if self.token_env is None and (self.username_env is None or self.password_env is None):
            raise ValueError("set token_env, or username_env and password_env")
        if not self.platform_types:
            raise ValueError("platform_types needs at least one platform type (1: clients)")
        return self
