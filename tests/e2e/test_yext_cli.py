"""The whole pipeline through the CLI, on the Yext example and its simulator."""

from __future__ import annotations

import json

from reconciler.sandbox.runtime import InProcessSandbox
from tests.e2e.conftest import changing, copy_example, request_log


def test_plan_apply_then_plan_shows_no_changes(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    first = cli("plan", desired, "--sandbox", "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert "remove   yext/knowledge-pro  entity:store-003" in first.output
    applied = cli("apply", desired, "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    again = cli("plan", desired, "--sandbox", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes" in again.output


def test_saved_plan_applies_exactly_and_is_journaled(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    saved = json.loads((workspace / "plan.json").read_text())
    assert saved["format_version"] == 1
    assert {"config_digest", "fingerprints", "summary", "actions"} <= set(saved)
    for action in saved["actions"]:
        assert {
            "id",
            "verb",
            "provider",
            "pool",
            "subject",
            "license",
            "phase",
            "depends_on",
            "reason",
            "request",
        } <= set(action)
    applied = cli("apply", "plan.json", "--sandbox")
    assert applied.exit_code == 0, applied.output
    sent = [
        (e["method"], e["path"].rsplit("/", 3)[-3], e["path"].rsplit("/", 1)[-1])
        for e in changing(request_log(workspace, "yext"))
    ]
    planned = [(a["request"]["method"], a["pool"], a["subject"]["id"]) for a in saved["actions"]]
    assert sent == planned
    journal = cli("journal")
    assert journal.output.count("started") == len(planned)
    assert journal.output.count("finished succeeded") == len(planned)


def assign_directly(workspace, pack: str, entity: str) -> None:
    """A change made at the vendor behind reconciler's back."""
    sandbox = InProcessSandbox(workspace / ".reconciler" / "sandbox")
    sandbox.simulator("yext").state["accounts"]["me"]["assignments"][pack][entity] = None
    sandbox.simulator("yext").save()


def test_stale_plan_is_refused_naming_the_scope(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    assign_directly(workspace, "knowledge-pro", "hq")
    refused = cli("apply", "plan.json", "--sandbox")
    assert refused.exit_code == 1
    # hq's new seat makes knowledge-pro tight: store-005's assign must now wait for the
    # free, so the rebuilt plan differs from the reviewed one and nothing is sent.
    assert "refusing the saved plan" in refused.output
    assert "yext:knowledge-pro:entity:store-005:assign: depends_on differ" in refused.output
    assert changing(request_log(workspace, "yext")) == []


def test_change_in_a_pool_the_plan_does_not_touch_is_not_stale(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    assign_directly(workspace, "reviews-plus", "hq")
    applied = cli("apply", "plan.json", "--sandbox")
    assert applied.exit_code == 0, applied.output


def test_plan_is_refused_when_the_yaml_changed_since(workspace, cli):
    desired = copy_example(workspace, "yext.yaml")
    assert cli("plan", str(desired), "--sandbox", "--out", "plan.json").exit_code == 0
    text = (desired / "yext.yaml").read_text().replace("max_removals: 10", "max_removals: 11")
    (desired / "yext.yaml").write_text(text)
    refused = cli("apply", "plan.json", "--sandbox")
    assert refused.exit_code == 1 and "desired state (YAML) changed" in refused.output


def test_drift_exits_2_after_a_change_made_directly_at_the_vendor(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    assert cli("drift", desired, "--sandbox").exit_code == 0
    sandbox = InProcessSandbox(workspace / ".reconciler" / "sandbox")
    del sandbox.simulator("yext").state["accounts"]["me"]["assignments"]["reviews-plus"][
        "store-001"
    ]
    sandbox.simulator("yext").save()
    drifted = cli("drift", desired, "--sandbox")
    assert drifted.exit_code == 2
    assert "assign   yext/reviews-plus  entity:store-001" in drifted.output


def test_dry_run_prints_requests_and_sends_nothing_that_changes(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    dry = cli("apply", desired, "--sandbox", "--dry-run")
    assert dry.exit_code == 0
    assert (
        "DELETE http://yext.sandbox/v2/accounts/me/license-packs/knowledge-pro/"
        "assigned-entities/store-003?v=20240101\n" in dry.output
    )
    assert "sandbox-yext-api-key" not in dry.output
    log = request_log(workspace, "yext")
    assert log and changing(log) == []


def test_apply_refuses_without_auto_approve_when_stdin_is_not_a_terminal(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    refused = cli("apply", desired, "--sandbox", input="yes\n")
    assert refused.exit_code == 1
    assert "--auto-approve" in refused.output
    assert changing(request_log(workspace, "yext")) == []


def test_max_removals_refuses_a_large_plan(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    refused = cli("plan", desired, "--sandbox", "--max-removals", "1")
    assert refused.exit_code == 1
    assert "would remove 2 grants (limit 1)" in refused.output
    assert cli("plan", desired, "--sandbox", "--max-removals", "2").exit_code == 0


def test_json_and_markdown_outputs_hold_only_the_document(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    as_json = cli("plan", desired, "--sandbox", "--output", "json")
    document = json.loads(as_json.stdout)
    assert "read yext: 11 grant(s), 3 pool(s)" in as_json.stderr, "progress goes to stderr"
    assert document["summary"]["counts"]["assign"] == 2
    markdown = cli("plan", desired, "--sandbox", "--output", "markdown")
    assert markdown.stdout.startswith("**4 changes: 2 grants added, 🔴 2 removed**\n")


def test_sandbox_reset_restores_the_seed(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    assert cli("sandbox", "reset").exit_code == 0
    assert cli("plan", desired, "--sandbox", "--detailed-exitcode").exit_code == 2
