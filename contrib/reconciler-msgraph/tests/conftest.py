"""Fixtures of the Microsoft 365 package's own tests: the CLI in a scratch directory
whose sandbox starts from a seed the test chooses, and the provider wired in-process
to a simulator."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from reconciler_msgraph.provider import GraphProvider
from reconciler_msgraph.simulator import GraphSimulator

from reconciler.hosts import Hosts
from reconciler.http import RetryPolicy, VendorHttp, new_client
from reconciler.model import Limits, ProviderDesired
from reconciler.sandbox.transport import SandboxTransport
from reconciler.secrets import Secrets

CONNECTION = {"tenant_env": "T", "client_id_env": "C", "client_secret_env": "S"}
SANDBOX_ENV = {"T": "contoso.onmicrosoft.com", "C": "sandbox-msgraph-client",
               "S": "sandbox-msgraph-secret"}


def seed(**changes: Any) -> dict[str, Any]:
    """The shipped seed with top-level keys replaced."""
    return {**copy.deepcopy(GraphSimulator.default_seed()), **changes}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def seeded(workspace: Path) -> Callable[[dict[str, Any]], None]:
    """Starts the `--sandbox` Graph of this workspace from another seed."""
    def put(chosen: dict[str, Any]) -> None:
        folder = workspace / ".reconciler" / "sandbox"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "msgraph.json").write_text(json.dumps(GraphSimulator(seed=chosen).state))
    return put


def write_desired(workspace: Path, subjects: list[dict[str, Any]], **block: Any) -> Path:
    document = {"providers": {"msgraph": {"connection": {
        "tenant_env": "MSGRAPH_TENANT", "client_id_env": "MSGRAPH_CLIENT_ID",
        "client_secret_env": "MSGRAPH_CLIENT_SECRET"}, "subjects": subjects, **block}}}
    target = workspace / "desired"
    target.mkdir(exist_ok=True)
    (target / "msgraph.yaml").write_text(yaml.safe_dump(document))
    return target


@pytest.fixture
async def graph() -> AsyncIterator[Callable[..., GraphProvider]]:
    """Factory: a provider talking to `simulator` in-process, fast retries."""
    clients: list[httpx.AsyncClient] = []

    def make(simulator: GraphSimulator, **connection: Any) -> GraphProvider:
        def at(base_url: str) -> VendorHttp:
            client = new_client(base_url, transport=SandboxTransport(simulator.app))
            clients.append(client)
            return VendorHttp(client, Limits(rate_limit=10_000),
                              retry=RetryPolicy(attempts=8, max_elapsed=20, initial_wait=0.001,
                                                max_wait=0.01))

        http = at("http://msgraph.sandbox/v1.0")
        settings = GraphProvider.connection_model.model_validate(
            {**CONNECTION, "login_url_env": "L", **connection})
        secrets = Secrets({**SANDBOX_ENV, "L": "http://msgraph.sandbox"})
        return GraphProvider(settings, http, secrets, hosts=Hosts(http, at))

    yield make
    for client in clients:
        await client.aclose()


def desired(**fields: Any) -> ProviderDesired:
    return ProviderDesired(provider="msgraph", connection=CONNECTION, **fields)
