"""`validate --json` and `apply --json`: stdout holds one JSON document, exit codes as ever."""

from __future__ import annotations

import json

from reconciler.model import Outcome, OutcomeStatus
from reconciler.render.results import apply_json
from reconciler.sandbox.base import Faults
from reconciler.sandbox.runtime import InProcessSandbox
from tests.e2e.conftest import copy_example
from tests.e2e.test_admanager_cli import decide


def test_validate_json_of_valid_files(workspace, cli):
    desired = copy_example(workspace, "yext.yaml", "uipath.yaml")
    result = cli("validate", str(desired), "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document == {
        "valid": True, "errors": [], "providers": 2, "grants": document["grants"],
        "files": [f"{desired}/uipath.yaml", f"{desired}/yext.yaml"],
    }
    text = cli("validate", str(desired)).stdout
    assert text == f"valid: 2 file(s), 2 provider(s), {document['grants']} grant(s)\n"


def test_validate_json_names_file_and_line_and_exits_1(workspace, cli):
    desired = copy_example(workspace, "yext.yaml")
    text = (desired / "yext.yaml").read_text().replace("account_id: me", "account_idd: me")
    (desired / "yext.yaml").write_text(text)
    line = text.splitlines().index("      account_idd: me") + 1
    result = cli("validate", str(desired), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["files"] == [f"{desired}/yext.yaml"]
    [error] = document["errors"]
    assert (error["file"], error["line"]) == (f"{desired}/yext.yaml", line)
    assert "account_idd" in error["message"]


def test_apply_json_lists_each_action_with_its_outcome(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    result = cli("apply", desired, "--sandbox", "--auto-approve", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["exit_code"] == 0 and document["failed"] == 0
    assert document["held_back"] == [] and document["would_send"] == []
    ran = {(a["verb"], a["subject"], a["license"], a["outcome"]) for a in document["applied"]}
    assert ran == {
        ("remove", "entity:store-003", "knowledge-pro", "succeeded"),
        ("remove", "entity:hq", "listings-basic", "succeeded"),
        ("assign", "entity:store-005", "knowledge-pro", "succeeded"),
        ("assign", "entity:store-005", "listings-basic", "succeeded"),
    }
    assert {a["provider"] for a in document["applied"]} == {"yext"}
    again = json.loads(cli("apply", desired, "--sandbox", "--auto-approve", "--json").stdout)
    assert again["applied"] == [] and again["exit_code"] == 0


def test_apply_json_reports_failures_and_exit_1(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    simulator = InProcessSandbox(workspace / ".reconciler" / "sandbox").simulator("yext")
    simulator.set_faults(Faults(error_rates={403: 1.0}, only_changes=True), persist=True)
    result = cli("apply", desired, "--sandbox", "--auto-approve", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["exit_code"] == 1
    outcomes = [a["outcome"] for a in document["applied"]]
    assert "failed" in outcomes and document["failed"] == len(
        [o for o in outcomes if o in {"failed", "skipped"}]) > 0
    assert all(a["detail"] for a in document["applied"] if a["outcome"] == "failed")


def test_apply_json_shows_pending_requests_and_what_is_held_back(workspace, cli):
    desired = str(copy_example(workspace, "admanager.yaml"))
    first = json.loads(cli("apply", desired, "--sandbox", "--auto-approve", "--json").stdout)
    pending = [a for a in first["applied"] if a["outcome"] == "pending"]
    assert len(pending) == 5 and all(a["vendor_request_id"] for a in pending)
    again = cli("apply", desired, "--sandbox", "--auto-approve", "--json")
    assert again.exit_code == 1
    held = json.loads(again.stdout)
    assert held["applied"] == [] and held["exit_code"] == 1
    assert sorted(h["request_id"] for h in held["held_back"]) == sorted(
        a["vendor_request_id"] for a in pending)
    decide(workspace, "approve")
    # The approved requests are settled when the next run reads the vendor.
    settled = cli("apply", desired, "--sandbox", "--auto-approve", "--json")
    assert settled.exit_code == 0, settled.output
    assert json.loads(settled.stdout)["held_back"] == []


def test_apply_json_says_what_wait_settled(workspace, cli):
    desired = str(copy_example(workspace, "admanager.yaml"))
    waited = cli("apply", desired, "--sandbox", "--auto-approve", "--json", "--wait", "0")
    assert waited.exit_code == 1, waited.output
    document = json.loads(waited.stdout)
    filed = sorted(a["vendor_request_id"] for a in document["applied"])
    assert len(filed) == 5
    assert sorted(s["request_id"] for s in document["settled"]) == filed
    assert {s["status"] for s in document["settled"]} == {"pending"}


def test_apply_json_dry_run_lists_requests_without_sending(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    result = cli("apply", desired, "--sandbox", "--dry-run", "--json")
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and document["applied"] == []
    assert {(r["method"], r["subject"]) for r in document["would_send"]} >= {
        ("DELETE", "entity:store-003"), ("POST", "entity:store-005")}
    assert cli("plan", desired, "--sandbox", "--detailed-exitcode").exit_code == 2


def test_apply_json_masks_a_secret_a_vendor_echoes(workspace, cli):
    from reconciler.model import Action
    from reconciler.secrets import REDACTOR

    secret = "k-echoed-by-the-vendor-7f3a"
    REDACTOR.register(secret)
    desired = str(copy_example(workspace, "yext.yaml"))
    planned = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    action = Action.model_validate(planned["actions"][0])
    text = apply_json([(action, Outcome(status=OutcomeStatus.FAILED,
                                        message=f"HTTP 401: key {secret} refused"))],
                      [], [], exit_code=1)
    assert secret not in text
    assert json.loads(text)["applied"][0]["detail"].startswith("HTTP 401: key ")
