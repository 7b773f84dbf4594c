"""ADManager end to end: pending workflow requests across plan and apply runs."""

from __future__ import annotations

import asyncio
import json

import httpx
import yaml

from reconciler.pipeline import load_desired
from reconciler.sandbox.admanager import ADManagerSimulator
from reconciler.sandbox.base import Faults
from reconciler.sandbox.runtime import InProcessSandbox
from reconciler.sandbox.serve import ServedSimulators, environment_for
from tests.e2e.conftest import copy_example, request_log

TOKEN = "sandbox-admanager-authtoken"


def created(workspace) -> list[dict]:
    return [e for e in request_log(workspace, "admanager")
            if e["path"] == "/RestAPI/CreateWorkFlowRequest" and e["status"] == 200]


def decide(workspace, decision: str) -> None:
    """The approver acts on every pending request, through the sandbox admin endpoint."""
    sandbox = InProcessSandbox(workspace / ".reconciler" / "sandbox")

    async def run() -> None:
        async with httpx.AsyncClient(transport=sandbox.transport("admanager"),
                                     base_url=sandbox.base_url("admanager")) as client:
            state = (await client.get("/_sandbox/state")).json()
            waiting = [i for i, e in state["requests"].items() if e["status"] == "pending"]
            assert waiting, "nothing to decide"
            for request_id in waiting:
                answer = await client.post(f"/_sandbox/workflow/{request_id}/{decision}")
                assert answer.status_code == 200, answer.text

    asyncio.run(run())


def plan_json(cli, desired) -> dict:
    result = cli("plan", desired, "--sandbox", "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_requests_stay_pending_until_approved_and_are_never_filed_twice(workspace, cli):
    desired = str(copy_example(workspace, "admanager.yaml"))
    first = cli("apply", desired, "--sandbox", "--auto-approve")
    assert first.exit_code == 0, first.output
    assert "pending" in first.output
    filed = len(created(workspace))
    assert filed == 5, "contractor-7 loses E3 and Power BI by name: two requests"
    waiting = plan_json(cli, desired)
    assert waiting["actions"] == [] and len(waiting["pending"]) == 5
    again = cli("apply", desired, "--sandbox", "--auto-approve")
    # Nothing new to send, but the vendor still differs: never "converged" (exit 0).
    assert again.exit_code == 1 and len(created(workspace)) == filed, "no second request"
    assert "Held back: 5 change(s)" in again.output
    decide(workspace, "approve")
    waited = cli("apply", desired, "--sandbox", "--auto-approve", "--wait", "5")
    assert waited.exit_code == 0, waited.output
    assert len(created(workspace)) == filed
    done = cli("plan", desired, "--sandbox", "--detailed-exitcode")
    assert done.exit_code == 0, done.output


def test_rejected_request_is_reported_and_planned_again(workspace, cli):
    desired = str(copy_example(workspace, "admanager.yaml"))
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    decide(workspace, "reject")
    replanned = plan_json(cli, desired)
    assert len(replanned["actions"]) == 5
    assert any("was rejected" in note for note in replanned["notes"])


def test_dry_run_shows_the_seed_sample_and_never_the_authtoken(workspace, cli):
    desired = str(copy_example(workspace, "admanager.yaml"))
    dry = cli("apply", desired, "--sandbox", "--dry-run")
    assert dry.exit_code == 0
    assert ('"isRemoveAllO365License\\":\\"false\\", \\"selectedO365Licenses\\":{\\"account'
            'SKUDetailsList\\":[{\\"ACCOUNT_SKU_ID\\":\\"ENTERPRISEPACK\\"') in dry.output
    outputs = [dry.output, cli("plan", desired, "--sandbox", "-v").output,
               cli("apply", desired, "--sandbox", "--auto-approve", "-v").output,
               cli("journal", "--json").output]
    assert all(TOKEN not in text for text in outputs)
    assert created(workspace) and "domainName=admp.local" in dry.output
    assert "AuthToken" not in dry.output, "the token is added at send time, never previewed"


def test_apply_wait_polls_until_requests_are_executed(workspace, cli):
    desired = copy_example(workspace, "admanager.yaml")
    seed = ADManagerSimulator.default_seed()
    seed["auto_approve_after_s"] = 0
    simulator = ADManagerSimulator(seed=seed)
    with ServedSimulators({"admanager": simulator}) as served:
        env = environment_for(load_desired([str(desired)]), served.urls)
        result = cli("apply", str(desired), "--auto-approve", "--wait", "30", env=env)
        assert result.exit_code == 0, result.output
        assert result.output.count("executed (Request executed.)") == 5
        assert cli("plan", str(desired), "--detailed-exitcode", env=env).exit_code == 0


def test_apply_wait_fails_when_requests_are_still_pending_at_the_deadline(workspace, cli):
    desired = str(copy_example(workspace, "admanager.yaml"))
    result = cli("apply", desired, "--sandbox", "--auto-approve", "--wait", "0")
    assert result.exit_code == 1
    assert "is pending" in result.output


def test_capacity_per_sku_is_refused_before_any_request(workspace, cli):
    desired = copy_example(workspace, "admanager.yaml")
    document = yaml.safe_load((desired / "admanager.yaml").read_text())
    for subject in document["providers"]["admanager"]["subjects"]:
        subject["licenses"] = ["VISIOCLIENT"]
    (desired / "admanager.yaml").write_text(yaml.safe_dump(document))
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1
    assert "pool 'admp.local/VISIOCLIENT' would hold 5 seats but has 2" in refused.output
    assert created(workspace) == []


def with_user(desired, user: str) -> None:
    """Adds one declared user (and a licence for them) to the copied example."""
    path = desired / "admanager.yaml"
    document = yaml.safe_load(path.read_text())
    document["providers"]["admanager"]["subjects"].append(
        {"user": user, "attrs": {"domain": "admp.local"}, "licenses": ["VISIOCLIENT"]})
    path.write_text(yaml.safe_dump(document, allow_unicode=True))


def test_a_half_upn_is_refused_by_validate_with_file_and_line(workspace, cli):
    desired = copy_example(workspace, "admanager.yaml")
    with_user(desired, "x?y=1@")
    refused = cli("validate", str(desired))
    assert refused.exit_code == 1
    assert "admanager.yaml:" in refused.output and "must be a UPN" in refused.output
    assert request_log(workspace, "admanager") == []


def test_a_hostile_display_name_names_only_a_user_that_does_not_exist(workspace, cli):
    """Ids travel inside inputData, never in a URL path: `../a/b?x=1#f` is just a name,
    which ADManager has no user for, so the plan stops before any request is filed."""
    desired = copy_example(workspace, "admanager.yaml")
    with_user(desired, "../a/b?x=1#f %2D Zoë")
    assert cli("validate", str(desired)).exit_code == 0
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1
    assert "admanager.yaml:" in refused.output
    assert "no user '../a/b?x=1#f %2D Zoë' in domain 'admp.local'" in refused.output
    paths = {e["path"] for e in request_log(workspace, "admanager")}
    assert paths == {"/RestAPI/SearchUser"} and created(workspace) == []


def test_dropped_answers_converge_without_filing_twice(workspace, cli):
    """Every create answer is lost on the wire: each request is found again by its
    marker, so it is pending (never filed twice, never held in doubt forever)."""
    desired = copy_example(workspace, "admanager.yaml")
    simulator = ADManagerSimulator()
    with ServedSimulators({"admanager": simulator}) as served:
        env = environment_for(load_desired([str(desired)]), served.urls)
        simulator.set_faults(Faults(drop_response_rate=1.0, only_changes=True))
        first = cli("apply", str(desired), "--auto-approve", env=env)
        simulator.set_faults(Faults())
        assert first.exit_code == 0, first.output
        assert len(simulator.state["requests"]) == 5
        again = cli("apply", str(desired), "--auto-approve", env=env)
        # Held back while pending: not converged, and nothing filed a second time.
        assert again.exit_code == 1 and len(simulator.state["requests"]) == 5
        for request_id in list(simulator.state["requests"]):  # the approver acts
            approved = httpx.post(f"{served.urls['admanager']}/_sandbox/workflow/"
                                  f"{request_id}/approve")
            assert approved.status_code == 200, approved.text
        done = cli("plan", str(desired), "--detailed-exitcode", env=env)
        assert done.exit_code == 0, done.output
