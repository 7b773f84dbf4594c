"""Graph's rules as the plan enforces them, through the CLI against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import seed, write_desired

from reconciler.testing.runner import changing, cli, request_log


def test_a_user_without_usage_location_is_a_plan_time_error_naming_the_user(workspace):
    desired = write_desired(workspace, [{"user": "isaiah@contoso.com",
                                         "licenses": ["POWER_BI_PRO"]}])
    planned = cli("plan", str(desired), "--sandbox")
    assert planned.exit_code == 1
    assert "user 'isaiah@contoso.com' has no usageLocation" in planned.output
    assert f"{desired / 'msgraph.yaml'}:" in planned.output
    assert "Traceback" not in planned.output
    assert [e for e in changing(request_log(workspace, "msgraph"))
            if "token" not in e["path"]] == []


def test_no_seats_left_is_refused_before_any_call(workspace):
    desired = write_desired(workspace, [
        {"user": upn, "licenses": ["VISIOCLIENT"]}
        for upn in ("adele@contoso.com", "alex@contoso.com", "grady@contoso.com")])
    applied = cli("apply", str(desired), "--sandbox", "--auto-approve")
    assert applied.exit_code == 1
    assert "VISIOCLIENT" in applied.output and "2" in applied.output
    assert [e for e in changing(request_log(workspace, "msgraph"))
            if "assignLicense" in e["path"] or "$batch" in e["path"]] == []


def test_an_inherited_licence_removed_directly_says_the_user_keeps_it(workspace, seeded):
    chosen = seed()
    for user in chosen["users"]:
        if user["userPrincipalName"] == "megan@contoso.com":
            user["licenses"] = {"ENTERPRISEPACK": {}, "POWER_BI_PRO": {}}
    seeded(chosen)
    desired = write_desired(workspace, [{"user": "megan@contoso.com",
                                         "licenses": ["POWER_BI_PRO"]}])
    planned = cli("plan", str(desired), "--sandbox", "--output", "json")
    assert planned.exit_code == 0, planned.output
    reason = json.loads(planned.stdout)["actions"][0]["reason"]
    assert "keeps ENTERPRISEPACK through group 5b08a9ea" in reason
    assert cli("apply", str(desired), "--sandbox", "--auto-approve").exit_code == 0
    assert cli("drift", str(desired), "--sandbox").exit_code == 0


def test_an_unknown_user_and_an_unknown_service_plan_are_named(workspace):
    desired = write_desired(workspace, [
        {"user": "nobody@contoso.com", "licenses": []},
        {"user": "grady@contoso.com",
         "licenses": [{"id": "ENTERPRISEPACK", "attrs": {"disabled_plans": ["NOPE"]}}]}])
    planned = cli("plan", str(desired), "--sandbox")
    assert planned.exit_code == 1
    assert "msgraph has no user 'nobody@contoso.com'" in planned.output
    assert "'ENTERPRISEPACK' has no service plan NOPE" in planned.output


def test_disabled_plans_round_trip_through_import(workspace):
    desired = write_desired(workspace, [{"user": "grady@contoso.com", "licenses": [
        {"id": "ENTERPRISEPACK", "attrs": {"disabled_plans": ["YAMMER_ENTERPRISE"]}}]}])
    assert cli("apply", str(desired), "--sandbox", "--auto-approve").exit_code == 0
    imported = cli("import", "msgraph", "--sandbox")
    assert imported.exit_code == 0
    assert "YAMMER_ENTERPRISE" in imported.stdout
    Path("imported.yaml").write_text(imported.stdout)
    assert cli("plan", "imported.yaml", "--sandbox", "--detailed-exitcode").exit_code == 0


def test_a_direct_licence_for_a_user_who_inherits_it_takes_no_seat(workspace, seeded):
    """Graph consumes one unit per user however many paths license them, so a full SKU
    still takes a direct assignment for a user who inherits it from a group: no
    capacity refusal, no seat or cost in the plan, and the vendor agrees."""
    chosen = seed()
    for sku in chosen["skus"]:
        if sku["skuPartNumber"] == "ENTERPRISEPACK":
            sku["enabled"] = 5  # every unit consumed: alex, adele, diego, megan, nestor
    seeded(chosen)
    desired = write_desired(workspace, [{"user": "megan@contoso.com",
                                         "licenses": ["POWER_BI_PRO", "ENTERPRISEPACK"]}])
    planned = cli("plan", str(desired), "--sandbox", "--output", "json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    (action,) = plan["actions"]
    assert action["seat_delta"] == 0
    assert [c["seats"] for c in action["changes"]] == [0]
    assert [(p["pool"], p["seat_delta"]) for p in plan["summary"]["pools"]] == [
        ("ENTERPRISEPACK", 0)]
    assert cli("apply", str(desired), "--sandbox", "--auto-approve").exit_code == 0
    assert cli("drift", str(desired), "--sandbox").exit_code == 0


def test_a_direct_licence_for_a_user_without_it_still_needs_a_free_seat(workspace, seeded):
    chosen = seed()
    for sku in chosen["skus"]:
        if sku["skuPartNumber"] == "ENTERPRISEPACK":
            sku["enabled"] = 5
    seeded(chosen)
    desired = write_desired(workspace, [{"user": "grady@contoso.com",
                                         "licenses": ["ENTERPRISEPACK"]}])
    planned = cli("plan", str(desired), "--sandbox")
    assert planned.exit_code == 1
    assert "ENTERPRISEPACK" in planned.output


SALES = "5b08a9ea-1568-5211-8792-97d7cc1bff7a"  # members megan and nestor; ENTERPRISEPACK


def _visio(enabled: int) -> dict[str, object]:
    chosen = seed()
    for sku in chosen["skus"]:
        if sku["skuPartNumber"] == "VISIOCLIENT":
            sku["enabled"] = enabled  # diego holds one
    return chosen


def test_a_licence_for_a_group_takes_a_seat_per_member_without_it(workspace, seeded):
    """Graph licenses each direct member of the group: two members without VISIOCLIENT
    need two free units, not one. Refused before any call when they are not there."""
    seeded(_visio(2))
    desired = write_desired(workspace, [{"group": SALES,
                                         "licenses": ["ENTERPRISEPACK", "VISIOCLIENT"]}])
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1 and "VISIOCLIENT" in refused.output, refused.output
    assert [e for e in changing(request_log(workspace, "msgraph"))
            if "assignLicense" in e["path"] or "$batch" in e["path"]] == []
    read = [e["raw_path"] for e in request_log(workspace, "msgraph") if "members" in e["path"]]
    assert read == [f"/v1.0/groups/{SALES}/members"], "members of the gaining group only"

    seeded(_visio(3))
    planned = cli("plan", str(desired), "--sandbox", "--output", "json")
    assert planned.exit_code == 0, planned.output
    (action,) = json.loads(planned.stdout)["actions"]
    assert action["seat_delta"] == 2
    assert cli("apply", str(desired), "--sandbox", "--auto-approve").exit_code == 0
    assert cli("drift", str(desired), "--sandbox").exit_code == 0


def test_a_licence_removed_from_a_group_frees_each_member_holding_it_only_so(workspace):
    desired = write_desired(workspace, [{"group": SALES, "licenses": []}])
    planned = cli("plan", str(desired), "--sandbox", "--output", "json")
    assert planned.exit_code == 0, planned.output
    (action,) = json.loads(planned.stdout)["actions"]
    assert action["seat_delta"] == -2  # megan and nestor hold ENTERPRISEPACK through it alone
