"""`--target` limits reads and actions to a part of the estate; `show` renders a saved plan."""

from __future__ import annotations

import json

from tests.e2e.conftest import changing, request_log
from tests.e2e.reliability import fast_example


def test_target_provider_reads_and_plans_only_that_provider(workspace, cli):
    for provider in ("yext", "commvault"):
        fast_example(workspace, provider)
    desired = str(workspace / "desired")
    planned = cli("plan", desired, "--sandbox", "--target", "yext", "--output", "json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert {a["provider"] for a in plan["actions"]} == {"yext"}
    assert plan["targets"] == ["yext"]
    assert request_log(workspace, "yext")
    assert request_log(workspace, "commvault") == []


def test_target_pool_leaves_the_subjects_other_pools_alone(workspace, cli):
    desired = str(fast_example(workspace, "yext"))
    whole = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    assert {a["pool"] for a in whole["actions"]} == {"knowledge-pro", "listings-basic"}
    narrowed = cli("apply", desired, "--sandbox", "--auto-approve",
                   "--target", "yext/knowledge-pro")
    assert narrowed.exit_code == 0, narrowed.output
    sent = changing(request_log(workspace, "yext"))
    assert sent and all("/license-packs/knowledge-pro/" in e["path"] for e in sent)
    rest = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    assert {a["pool"] for a in rest["actions"]} == {"listings-basic"}


def test_saved_plan_keeps_its_target_and_refuses_another(workspace, cli):
    desired = str(fast_example(workspace, "yext"))
    made = cli("plan", desired, "--sandbox", "--target", "yext/knowledge-pro", "--out",
               "plan.json")
    assert made.exit_code == 0
    other = cli("apply", "plan.json", "--sandbox", "--target", "yext")
    assert other.exit_code == 1 and "made for --target yext/knowledge-pro" in other.output
    assert changing(request_log(workspace, "yext")) == []
    applied = cli("apply", "plan.json", "--sandbox")
    assert applied.exit_code == 0, applied.output
    assert all("/knowledge-pro/" in e["path"] for e in changing(request_log(workspace, "yext")))


def test_sandbox_plan_is_not_applied_to_real_vendors(workspace, cli):
    desired = str(fast_example(workspace, "yext"))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    env = {"YEXT_API_KEY": "real-key", "YEXT_BASE_URL": "http://127.0.0.1:9"}
    refused = cli("apply", "plan.json", env=env)
    assert refused.exit_code == 1
    assert "made against the sandbox" in refused.output


def test_unknown_target_is_a_clear_error(workspace, cli):
    desired = str(fast_example(workspace, "yext"))
    refused = cli("plan", desired, "--sandbox", "--target", "nosuch")
    assert refused.exit_code == 1
    assert "--target names nosuch" in refused.output
    assert request_log(workspace, "yext") == []


def test_show_renders_a_saved_plan_in_every_format(workspace, cli):
    desired = str(fast_example(workspace, "yext"))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    before = len(request_log(workspace, "yext"))
    text = cli("show", "plan.json")
    assert text.exit_code == 0 and text.output.startswith("yext:")
    assert "- remove   yext/knowledge-pro  entity:store-003  - knowledge-pro" in text.output
    markdown = cli("show", "plan.json", "--output", "markdown")
    assert markdown.output.startswith("**4 changes: 2 grants added, 🔴 2 removed**\n")
    shown = json.loads(cli("show", "plan.json", "--output", "json").stdout)
    assert shown == json.loads((workspace / "plan.json").read_text())
    assert len(request_log(workspace, "yext")) == before


def test_target_naming_an_unknown_pool_is_refused_listing_the_pools(workspace, cli):
    desired = str(fast_example(workspace, "yext"))
    refused = cli("plan", desired, "--sandbox", "--target", "yext/nopool",
                  "--detailed-exitcode")
    assert refused.exit_code == 1, refused.output
    assert "--target yext/nopool: 'yext' has no pool 'nopool'" in refused.stderr
    assert "knowledge-pro" in refused.stderr and "listings-basic" in refused.stderr
    assert "No changes" not in refused.output
    for command in ("apply", "drift"):
        again = cli(command, desired, "--sandbox", "--target", "yext/nopool",
                    *(["--auto-approve"] if command == "apply" else []))
        assert again.exit_code == 1 and "has no pool 'nopool'" in again.stderr, again.output
    assert changing(request_log(workspace, "yext")) == []


def test_target_pool_known_only_from_the_vendor_is_accepted(workspace, cli):
    """A pool the YAML never names can still be targeted (e.g. to see what it holds)."""
    (workspace / "desired").mkdir()
    (workspace / "desired" / "yext.yaml").write_text(
        "providers:\n  yext:\n    connection: {api_key_env: YEXT_API_KEY}\n"
        "    subjects:\n      - entity: store-001\n        licenses: [knowledge-pro]\n")
    planned = cli("plan", str(workspace / "desired"), "--sandbox", "--target",
                  "yext/reviews-plus", "--output", "json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["targets"] == ["yext/reviews-plus"]
    refused = cli("plan", str(workspace / "desired"), "--sandbox", "--target", "yext/nopool")
    assert "(its pools: knowledge-pro, listings-basic, reviews-plus)" in refused.stderr
