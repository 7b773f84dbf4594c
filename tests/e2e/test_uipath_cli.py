"""UiPath end to end: hierarchy order in the JSON plan, swap, refusal, failures journaled,
and the API guide's own tenant example as the dry run shows it."""

from __future__ import annotations

import json

import yaml

from reconciler.sandbox.runtime import InProcessSandbox
from tests.e2e.conftest import changing, copy_example, request_log


def test_plan_orders_shrinks_bottom_up_then_grows_top_down(workspace, cli):
    desired = str(copy_example(workspace, "uipath.yaml"))
    plan = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    steps = [(a["subject"]["kind"], a["frees"]) for a in plan["actions"]]
    assert steps == [("user", True), ("tenant", True), ("organization", False),
                     ("tenant", False), ("user", False)]
    assert all(a["verb"] == "allocate" for a in plan["actions"])
    phases = [a["phase"] for a in plan["actions"]]
    assert phases == sorted(phases)


def test_apply_swaps_robots_between_tenants_then_nothing_is_left(workspace, cli):
    desired = str(copy_example(workspace, "uipath.yaml"))
    applied = cli("apply", desired, "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert cli("plan", desired, "--sandbox", "--detailed-exitcode").exit_code == 0


def test_dry_run_sends_nothing_that_changes(workspace, cli):
    desired = str(copy_example(workspace, "uipath.yaml"))
    assert cli("apply", desired, "--sandbox", "--dry-run").exit_code == 0
    log = request_log(workspace, "uipath")
    assert log and [e["path"] for e in changing(log)] == [
        "/api/account/authenticate", "/identity_/connect/token"]


def test_tenants_beyond_the_organization_are_refused_with_zero_calls(workspace, cli):
    desired = copy_example(workspace, "uipath.yaml")
    document = yaml.safe_load((desired / "uipath.yaml").read_text())
    for subject in document["providers"]["uipath"]["subjects"]:
        if subject.get("tenant") == "acme-prod":
            subject["licenses"] = [{"id": "orchestrator/UNATT", "quantity": 9}]
    (desired / "uipath.yaml").write_text(yaml.safe_dump(document))
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1
    assert "UNATT: tenants, groups and users of organization 'acme' would hold 11 but the " \
           "organization has 10 (tenant acme-dev 2, tenant acme-prod 9; declared in " in \
           refused.output
    assert [e for e in changing(request_log(workspace, "uipath")) if e["method"] == "PUT"] == []


def test_a_409_is_a_failed_action_recorded_in_the_journal(workspace, cli):
    desired = str(copy_example(workspace, "uipath.yaml"))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    sandbox = InProcessSandbox(workspace / ".reconciler" / "sandbox")
    sandbox.simulator("uipath").state["host"]["RPADEVPRONU"] = 5
    sandbox.simulator("uipath").save()
    applied = cli("apply", "plan.json", "--sandbox")
    assert applied.exit_code == 1
    [failed] = [line for line in applied.output.splitlines() if "failed:" in line]
    assert "allocate uipath/host/RPADEVPRONU" in failed and "organization:acme" in failed
    assert "HTTP 409" in applied.output
    journal = cli("journal").output
    assert "finished failed    uipath:organization:acme:grow" in journal


GUIDE_EXAMPLE = """\
# yaml-language-server: $schema=../../reconciler.schema.json
# "Allocate Licenses to a Tenant", the API guide's example: 5 UNATT, 4 NONPR, 2 TIE on
# tenant y1968 of account y-y-y-delilah (the sandbox seed holds that account).
providers:
  uipath:
    connection:
      host_username_env: UIPATH_HOST_USERNAME
      host_password_env: UIPATH_HOST_PASSWORD
      client_id_env: UIPATH_CLIENT_ID
      client_secret_env: UIPATH_CLIENT_SECRET
      ids: { delilah: y-y-y-delilah }
    subjects:
      - organization: delilah
        licenses: [{id: UNATT, quantity: 5}, {id: NONPR, quantity: 4}, {id: TIE, quantity: 2}]
      - tenant: y1968
        attrs: { organization: delilah }
        licenses:
          - { id: orchestrator/UNATT, quantity: 5 }
          - { id: orchestrator/NONPR, quantity: 4 }
          - { id: orchestrator/TIE, quantity: 2 }
"""


def test_the_guides_tenant_example_previews_the_documented_put(workspace, cli):
    desired = workspace / "delilah.yaml"
    desired.write_text(GUIDE_EXAMPLE)
    dry = cli("apply", str(desired), "--sandbox", "--dry-run")
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    put = ("PUT http://uipath.sandbox/lrm/api/account/y-y-y-delilah/service-license/y1968/"
           "orchestrator")
    [at] = [i for i, line in enumerate(lines) if line.rstrip().endswith(put)]
    body = json.loads(lines[at + 1])
    assert body["tenantName"] == "y1968"
    assert {p["code"]: p["quantity"] for p in body["products"]} == {
        "UNATT": 5, "NONPR": 4, "TIE": 2}
    assert "productQuantities" not in body and "?????" not in dry.output
    assert [e for e in changing(request_log(workspace, "uipath")) if e["method"] == "PUT"] == []
    applied = cli("apply", str(desired), "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert cli("plan", str(desired), "--sandbox", "--detailed-exitcode").exit_code == 0


HOSTILE = """\
providers:
  uipath:
    connection:
      host_username_env: UIPATH_HOST_USERNAME
      host_password_env: UIPATH_HOST_PASSWORD
      client_id_env: UIPATH_CLIENT_ID
      client_secret_env: UIPATH_CLIENT_SECRET
      ids: {{ acme: 6b0c7f55-0000-4000-8000-000000000001 }}
    subjects:
      - tenant: "{tenant}"
        attrs: {{ organization: acme }}
        licenses: [{{ id: orchestrator/UNATT, quantity: 1 }}]
      - group: "{group}"
        attrs: {{ organization: acme }}
        licenses: [RPADEVPRONU]
"""
ORG = "6b0c7f55-0000-4000-8000-000000000001"


def test_hostile_ids_reach_only_their_own_nonexistent_subject(workspace, cli):
    desired = workspace / "hostile.yaml"
    desired.write_text(HOSTILE.format(tenant="acme-prod#frag", group="devs?x=1 %2D ü"))
    planned = cli("plan", str(desired), "--sandbox")
    assert planned.exit_code == 1
    assert "HTTP 404" in planned.output and "not found" in planned.output
    assert "Traceback" not in planned.output
    reads = [(e["path"], e["query"]) for e in request_log(workspace, "uipath")
             if e["method"] == "GET"]
    assert (f"/lrm/api/account/{ORG}/service-license/acme-prod#frag/orchestrator", "") in reads
    assert (f"/lease_/api/account/{ORG}/user-license/group/devs?x=1 %2D ü", "") in reads, \
        "the whole id, decoded once by the server, as one segment; no query string"
    assert not [e for e in request_log(workspace, "uipath") if e["method"] == "PUT"]


def test_ids_a_server_would_fold_are_refused_at_validate_with_file_and_line(workspace, cli):
    desired = workspace / "hostile.yaml"
    desired.write_text(HOSTILE.format(tenant="..", group="../automation-devs"))
    refused = cli("validate", str(desired))
    assert refused.exit_code == 1
    assert f"{desired}:10:" in refused.output and "only dots" in refused.output
    assert f"{desired}:13:" in refused.output and "cannot contain '/'" in refused.output
    assert request_log(workspace, "uipath") == []
