"""Runs the simulators for the CLI: in-process for `--sandbox`, over HTTP for `serve`.

The sandbox supplies three things a provider needs to reach it: a transport, a
base URL, and the fixed credentials (as values for the environment variables the
YAML names), so the examples run with no real credentials at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from reconciler.connectors import Endpoint
from reconciler.sandbox.base import Simulator
from reconciler.sandbox.registry import simulators
from reconciler.sandbox.transport import SandboxTransport
from reconciler.secrets import Secrets

DEFAULT_STATE_DIR = Path(".reconciler") / "sandbox"


def credential_overlay(simulator: type[Simulator], connection: Mapping[str, Any]) -> dict[str, str]:
    """Environment-variable name → sandbox value, for the variables `connection` names."""
    overlay: dict[str, str] = {}
    for field, value in simulator.environment.items():
        variable = connection.get(field)
        if isinstance(variable, str) and variable:
            overlay[variable] = value
    return overlay


class InProcessSandbox:
    """Simulators running inside this process, their state kept in `state_dir`."""

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR) -> None:
        self.state_dir = state_dir
        self._running: dict[str, Simulator] = {}

    def simulator(self, provider_id: str) -> Simulator:
        if provider_id not in self._running:
            known = simulators()
            if provider_id not in known:
                raise KeyError(f"the sandbox has no simulator for '{provider_id}'")
            self._running[provider_id] = known[provider_id](state_dir=self.state_dir)
        return self._running[provider_id]

    def transport(self, provider_id: str) -> httpx.AsyncBaseTransport:
        return SandboxTransport(self.simulator(provider_id).app)

    def base_url(self, provider_id: str) -> str:
        return f"http://{provider_id}.sandbox{type(self.simulator(provider_id)).base_path}"

    def overlay(self, provider_id: str, connection: Mapping[str, Any]) -> dict[str, str]:
        simulator = type(self.simulator(provider_id))
        overlay = credential_overlay(simulator, connection)
        for field in simulator.secondary_urls:
            variable = connection.get(field)
            if isinstance(variable, str) and variable:
                # A host of its own (the transport routes by path, whatever the host), so
                # a provider reaches it with its own client, as it would the vendor's.
                host = field.removesuffix("_url_env").replace("_", "-")
                overlay[variable] = f"http://{host}.{provider_id}.sandbox"
        return overlay

    def reset(self) -> list[str]:
        """Back to the documented seed state, for every simulator."""
        names = sorted(simulators())
        for name in names:
            self.simulator(name).reset()
        return names


class SandboxConnector:
    """The in-process simulators, with their fixed credentials, as a connector."""

    sandboxed = True

    def __init__(self, sandbox: InProcessSandbox) -> None:
        self.sandbox = sandbox

    def endpoint(
        self, provider: str, default_base_url: str, connection: Mapping[str, Any],
        secrets: Secrets,
    ) -> Endpoint:
        return Endpoint(
            base_url=self.sandbox.base_url(provider),
            secrets=secrets.with_overlay(self.sandbox.overlay(provider, connection)),
            transport=self.sandbox.transport(provider),
            check_urls=False,
        )
