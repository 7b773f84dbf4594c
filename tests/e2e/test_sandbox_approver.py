"""`reconciler sandbox approve|reject PROVIDER`: the sandbox plays the vendor's approver.

In-process (the `--sandbox` state in .reconciler/sandbox/) and served (`--base-url`, or
the provider's base URL variable), through the simulators' `/_sandbox/approvals` API.
"""

from __future__ import annotations

import json
import socket

import pytest

from reconciler.sandbox.admanager import ADManagerSimulator
from reconciler.sandbox.serve import ServedSimulators
from tests.e2e.conftest import copy_example


@pytest.fixture
def filed(workspace, cli) -> str:
    """The ADManager example applied in-process: five requests wait for an approver."""
    desired = str(copy_example(workspace, "admanager.yaml"))
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    return desired


def sandbox_requests(workspace) -> dict[str, dict]:
    state = json.loads((workspace / ".reconciler" / "sandbox" / "admanager.json").read_text())
    requests: dict[str, dict] = state["requests"]
    return requests


def test_approve_all_executes_every_request_and_the_plan_converges(workspace, cli, filed):
    held = cli("plan", filed, "--sandbox", "--detailed-exitcode")
    assert held.exit_code == 2 and "Held back: 5 change(s)" in held.output
    approved = cli("sandbox", "approve", "admanager", "--all", env={"ADMANAGER_BASE_URL": ""})
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.count("executed (Request executed.)") == 5
    assert {e["status"] for e in sandbox_requests(workspace).values()} == {"executed"}
    assert cli("plan", filed, "--sandbox", "--detailed-exitcode").exit_code == 0
    again = cli("sandbox", "approve", "admanager", "--all")
    assert again.exit_code == 0 and "no request waiting for an approver" in again.stdout


def test_reject_by_id_leaves_the_others_waiting_and_the_next_plan_files_it_again(
        workspace, cli, filed):
    first = min(sandbox_requests(workspace), key=int)
    rejected = cli("sandbox", "reject", "admanager", first)
    assert rejected.exit_code == 0, rejected.output
    assert f"request {first} rejected (Rejected by the approver)" in rejected.stdout
    statuses = {i: e["status"] for i, e in sandbox_requests(workspace).items()}
    assert statuses.pop(first) == "rejected" and set(statuses.values()) == {"pending"}
    replanned = json.loads(cli("plan", filed, "--sandbox", "--output", "json").stdout)
    assert len(replanned["actions"]) == 1 and len(replanned["pending"]) == 4


def test_approval_runs_the_vendors_capacity_check_at_execution(workspace, cli, filed):
    """Approving is execution: a request the pool no longer has seats for is refused then,
    as ADManager refuses it, not when it was filed."""
    path = workspace / ".reconciler" / "sandbox" / "admanager.json"
    state = json.loads(path.read_text())
    state["domains"]["admp.local"]["skus"]["ENTERPRISEPACK"]["total"] = 0
    path.write_text(json.dumps(state))
    assign = next(i for i, e in sandbox_requests(workspace).items()
                  if e["action"] == "ASSIGN_O365_LICENSES"
                  and e["skus"][0]["sku"] == "ENTERPRISEPACK")
    answer = cli("sandbox", "approve", "admanager", assign)
    assert answer.exit_code == 0, answer.output
    assert f"request {assign} rejected (Not enough ENTERPRISEPACK licences" in answer.stdout


def test_a_typo_decides_nothing(workspace, cli, filed):
    waiting = sorted(sandbox_requests(workspace), key=int)
    answer = cli("sandbox", "approve", "admanager", waiting[0], "9999")
    assert answer.exit_code == 1
    assert "admanager: no request 9999 waiting for an approver (waiting: " in answer.stderr
    assert {e["status"] for e in sandbox_requests(workspace).values()} == {"pending"}
    both = cli("sandbox", "approve", "admanager", waiting[0], "--all")
    assert both.exit_code == 1 and "not both" in both.stderr


def test_a_vendor_without_approvals_and_an_unknown_provider_are_clear_errors(workspace, cli):
    none = cli("sandbox", "approve", "yext", "--all")
    assert none.exit_code == 1
    assert "the yext simulator has no requests that wait for an approver" in none.stderr
    unknown = cli("sandbox", "reject", "nosuch", "--all")
    assert unknown.exit_code == 1 and "no simulator for 'nosuch'" in unknown.stderr


def test_served_sandbox_is_reached_by_base_url_or_the_providers_variable(workspace, cli):
    simulator = ADManagerSimulator()
    desired = str(copy_example(workspace, "admanager.yaml"))
    with ServedSimulators({"admanager": simulator}) as served:
        url = served.urls["admanager"]
        env = {"ADMANAGER_BASE_URL": url, "ADMANAGER_AUTHTOKEN": "sandbox-admanager-authtoken"}
        assert cli("apply", desired, "--auto-approve", env=env).exit_code == 0
        waiting = sorted(e["requestId"] for e in simulator.state["requests"].values())
        one = cli("sandbox", "reject", "admanager", str(waiting[0]), "--base-url", url)
        assert one.exit_code == 0, one.output
        assert f"the sandbox at {url.rstrip('/')} (from --base-url)" in one.stderr
        rest = cli("sandbox", "approve", "admanager", "--all", env=env)
        assert rest.exit_code == 0, rest.output
        assert "(from ADMANAGER_BASE_URL)" in rest.stderr
        assert rest.stdout.count(" executed ") == len(waiting) - 1
        statuses = sorted(e["status"] for e in simulator.state["requests"].values())
    assert statuses == ["executed"] * (len(waiting) - 1) + ["rejected"]
    assert not (workspace / ".reconciler" / "sandbox" / "admanager.json").exists(), \
        "the in-process sandbox was not touched"


def test_an_unreachable_served_sandbox_names_host_and_variable(workspace, cli):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        answer = cli("sandbox", "approve", "admanager", "--all",
                     env={"ADMANAGER_BASE_URL": f"http://127.0.0.1:{port}"})
    finally:
        sock.close()
    assert answer.exit_code == 1
    assert (f"error: admanager: cannot reach http://127.0.0.1:{port} (from ADMANAGER_BASE_URL): "
            "connection refused") in answer.stderr
