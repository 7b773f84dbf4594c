"""Every provider converges under every fault profile, with no duplicated change.

Parametrized over the provider registry: a provider added later, with an example
file, is covered without touching this test. The in-process matrix (`--sandbox`, the
ASGI transport) is the conformance kit's (tests/e2e/test_conformance.py); here the
same faults go over real sockets on every network transport offered
(`RECONCILER_HTTP_TRANSPORT`), where a dropped connection is a real early close and its
meaning (never reached, or in doubt) is the transport's mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.pipeline import load_desired
from reconciler.sandbox.base import Faults
from reconciler.sandbox.registry import simulators
from reconciler.sandbox.serve import ServedSimulators, environment_for
from reconciler.transport import TRANSPORT_ENV, TRANSPORTS
from tests.e2e.reliability import (
    FAULT_PROFILES,
    duplicated_changes,
    fast_example,
    providers_with_examples,
)

MAX_ROUNDS = 6
PROVIDERS = providers_with_examples()


def converges(desired: str, cli: Callable[..., Result], *extra: str,
              env: dict[str, str] | None = None) -> None:
    for _ in range(MAX_ROUNDS):
        if cli("apply", desired, *extra, "--auto-approve", env=env).exit_code == 0:
            break
    final = cli("plan", desired, *extra, "--output", "json", env=env)
    assert final.exit_code == 0, final.output
    assert json.loads(final.stdout)["actions"] == [], "did not converge"


def check_log(log: list[dict[str, Any]], journal: Path) -> None:
    assert any(not isinstance(e["status"], int) or e["status"] >= 400 for e in log), \
        "the fault profile injected nothing"
    assert duplicated_changes(log, journal) == []


def over_the_network(provider: str, profile: str, transport: str, workspace: Path,
                     cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, transport)
    desired = str(fast_example(workspace, provider))
    simulator = simulators()[provider]()
    simulator.set_faults(Faults.model_validate(FAULT_PROFILES[profile]))
    with ServedSimulators({provider: simulator}) as served:
        env = environment_for(load_desired([desired]), served.urls)
        converges(desired, cli, env=env)
        log = list(simulator.requests)
    check_log(log, workspace / ".reconciler" / "journal.db")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_apply_over_the_network_converges_on_every_transport(
        provider, transport, workspace, cli, monkeypatch):
    """Dropped connections and lost responses (what a transport must map), every
    provider, every transport: no one-shot change made twice."""
    over_the_network(provider, "dropped", transport, workspace, cli, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("profile", sorted(set(FAULT_PROFILES) - {"dropped"}))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_apply_over_the_network_converges_under_every_other_fault(
        provider, profile, transport, workspace, cli, monkeypatch):
    """The rest of the product (stalls cost seconds each over sockets); read timeouts
    per transport are covered fast in tests/providers/test_transport.py."""
    over_the_network(provider, profile, transport, workspace, cli, monkeypatch)
