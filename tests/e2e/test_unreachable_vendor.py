"""One vendor down fails the run, naming its host and variable, and stops no other vendor.

Every simulator is served over real HTTP; one provider's base URL points at a loopback
port that refuses connections. The other providers are still read, planned and shown
(text and the JSON plan's `errors`), and a plan with errors is never applied.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reconciler.envnames import url_settings
from reconciler.pipeline import load_desired
from reconciler.sandbox.registry import simulators
from reconciler.sandbox.serve import ServedSimulators, environment_for
from tests.e2e.conftest import EXAMPLES

PROVIDERS = sorted(path.stem for path in EXAMPLES.glob("*.yaml"))
"""The providers of the example estate (a vendor installed from its own package has
its example elsewhere, and the kit checks it)."""


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    """Every simulator over HTTP; tests here only read (plan, drift, refused applies)."""
    running = {name: cls() for name, cls in simulators().items()}
    with ServedSimulators(running) as servers:
        yield dict(servers.urls)


@pytest.fixture
def closed_ports() -> Iterator[list[int]]:
    """Loopback ports that are bound but never listen: connecting is refused at once."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    try:
        yield [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def desired_with_one_down(workspace: Path, down: str) -> Path:
    """The examples, the provider that is down retrying once (a refused port is retried:
    the vendor certainly did not act) so the test does not wait out the backoff."""
    target = workspace / "desired"
    shutil.copytree(EXAMPLES, target)
    for path in target.glob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        if down in document.get("providers", {}):
            document["providers"][down]["limits"] = {
                **document["providers"][down].get("limits", {}),
                "retries": 1, "backoff_initial": 0.0}
            path.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def environment(desired: Path, urls: dict[str, str], down: str,
                ports: list[int]) -> tuple[dict[str, str], dict[str, int]]:
    """The served sandbox's environment with every URL variable of `down` (its base URL,
    and a second host's if it has one) at a closed port of its own."""
    loaded = load_desired([str(desired)])
    env = environment_for(loaded, urls)
    variables = url_settings(loaded.providers[down].connection).values()
    closed = dict(zip(sorted(variables), ports, strict=False))
    env.update({variable: f"http://127.0.0.1:{port}" for variable, port in closed.items()})
    return env, closed


@pytest.mark.parametrize("down", PROVIDERS)
def test_a_vendor_down_names_host_and_variable_and_the_others_are_planned(
        workspace, cli, served, closed_ports, down):
    desired = desired_with_one_down(workspace, down)
    env, closed = environment(desired, served, down, closed_ports)
    result = cli("plan", str(desired), "--out", "plan.json", env=env)
    assert result.exit_code == 1, result.output
    named = [(variable, port) for variable, port in closed.items()
             if f"error: {down}: cannot reach http://127.0.0.1:{port} (from {variable}): "
                "connection refused (" in result.stderr]
    assert len(named) == 1, result.stderr
    closed_port = named[0][1]
    assert "Traceback" not in result.output
    others = [name for name in PROVIDERS if name != down]
    for other in others:
        assert f"  {other}/" in result.stdout, f"{other}'s plan is missing:\n{result.stdout}"
    saved = json.loads((workspace / "plan.json").read_text())
    assert [e["provider"] for e in saved["errors"]] == [down]
    assert f"127.0.0.1:{closed_port}" in saved["errors"][0]["message"]
    assert sorted(saved["fingerprints"]) == others
    for secret in ("sandbox-", "Bearer"):
        assert secret not in saved["errors"][0]["message"]


def test_a_plan_with_errors_is_never_applied_and_drift_fails(workspace, cli, served,
                                                             closed_ports):
    desired = desired_with_one_down(workspace, "yext")
    env, _ = environment(desired, served, "yext", closed_ports)
    assert cli("plan", str(desired), "--out", "plan.json", env=env).exit_code == 1
    planned = json.loads((workspace / "plan.json").read_text())["actions"]
    assert planned, "the other providers have changes to make"

    refused = cli("apply", "plan.json", env=env)
    assert refused.exit_code == 1
    assert "refusing to apply: the plan file could not read every provider (yext: " \
        in refused.stderr
    markdown = cli("drift", str(desired), "--output", "markdown", env=env)
    assert markdown.exit_code == 1, "drift shows what it could check, and fails"
    assert "**Not read: 1 provider failed**" in markdown.stdout
    assert "commvault" in markdown.stdout
    both = cli("apply", str(desired), "--auto-approve", env=env)
    assert both.exit_code == 1 and "refusing to apply: the plan could not read" in both.stderr
    again = cli("plan", str(desired), "--output", "json", env=env)
    assert json.loads(again.stdout)["actions"] == planned, "nothing was changed anywhere"


def test_a_plan_file_stripped_of_its_errors_is_still_refused(workspace, cli, served,
                                                             closed_ports):
    """Deleting `errors` from the file does not make an incomplete plan applicable: the
    rebuilt plan fails the same way (and, were the vendor back, would hold its actions)."""
    desired = desired_with_one_down(workspace, "yext")
    env, _ = environment(desired, served, "yext", closed_ports)
    assert cli("plan", str(desired), "--out", "plan.json", env=env).exit_code == 1
    document = json.loads((workspace / "plan.json").read_text())
    document["errors"] = []
    (workspace / "plan.json").write_text(json.dumps(document))
    refused = cli("apply", "plan.json", env=env)
    assert refused.exit_code == 1
    assert "refusing to apply: rebuilding the plan could not read every provider" \
        in refused.stderr
