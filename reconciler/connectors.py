"""Where a provider's HTTP client connects: the network, or something standing in for it.

The pipeline is handed a connector and never knows which: `NetworkConnector` reads
base URLs from the environment variables the YAML names; the sandbox's connector
(`reconciler.sandbox.runtime.SandboxConnector`) hands out in-process transports and
fixed credentials. A test or a benchmark can bring its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from reconciler.envnames import BASE_URL_SETTING
from reconciler.secrets import Secrets


@dataclass(frozen=True)
class Endpoint:
    """How one provider's client reaches its vendor."""

    base_url: str
    secrets: Secrets
    transport: httpx.AsyncBaseTransport | None = None
    check_urls: bool = True
    """Whether the URLs came from the user (and so must be checked before use)."""


class Connector(Protocol):
    sandboxed: bool
    """True when the vendors are simulators: a plan made so applies only so."""

    def endpoint(
        self, provider: str, default_base_url: str, connection: Mapping[str, Any],
        secrets: Secrets,
    ) -> Endpoint: ...


class NetworkConnector:
    """The real vendors, at the base URL the YAML's `base_url_env` names (or the default)."""

    sandboxed = False

    def endpoint(
        self, provider: str, default_base_url: str, connection: Mapping[str, Any],
        secrets: Secrets,
    ) -> Endpoint:
        base_url = secrets.optional(connection.get(BASE_URL_SETTING), default_base_url)
        return Endpoint(base_url=base_url, secrets=secrets)
