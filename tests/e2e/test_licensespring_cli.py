"""LicenseSpring end to end through the CLI and the in-process simulator."""

from __future__ import annotations

import json

import yaml

from tests.e2e.conftest import changing, copy_example, request_log


def test_dry_run_preview_is_the_documented_deactivate_request(workspace, cli):
    desired = str(copy_example(workspace, "licensespring.yaml"))
    dry = cli("apply", desired, "--sandbox", "--dry-run")
    assert dry.exit_code == 0, dry.output
    first, second = [line for line in dry.output.splitlines() if line.startswith(("1.", "2."))]
    assert "POST http://licensespring.sandbox/api/v4/deactivate_license" in first
    assert "activate_license" in second, "the release runs before the activation"
    assert json.dumps({"hardware_id": "ws-old-laptop", "license_key": "ACAD-7H2K-99QX-4M1P",
                       "product": "acmecad"}, sort_keys=True) in dry.output
    assert changing(request_log(workspace, "licensespring")) == []


def test_swap_applies_and_converges(workspace, cli):
    desired = str(copy_example(workspace, "licensespring.yaml"))
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    assert cli("plan", desired, "--sandbox", "--detailed-exitcode").exit_code == 0


def test_over_max_activations_is_refused_with_zero_calls(workspace, cli):
    desired = copy_example(workspace, "licensespring.yaml")
    document = yaml.safe_load((desired / "licensespring.yaml").read_text())
    for subject in document["providers"]["licensespring"]["subjects"]:
        if subject["device"] == "ws-old-laptop":
            subject["licenses"] = ["ACAD-7H2K-99QX-4M1P"]
    (desired / "licensespring.yaml").write_text(yaml.safe_dump(document))
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1
    assert "pool 'ACAD-7H2K-99QX-4M1P' would hold 4 seats but has 3" in refused.output
    assert changing(request_log(workspace, "licensespring")) == []


def test_user_based_activation_masks_the_password_and_applies(workspace, cli):
    desired = copy_example(workspace, "licensespring.yaml")
    document = yaml.safe_load((desired / "licensespring.yaml").read_text())
    subjects = document["providers"]["licensespring"]["subjects"]
    subjects.append({"device": "render-01",
                     "licenses": ["acmerender/dana@acme.example+lee@acme.example"]})
    (desired / "licensespring.yaml").write_text(yaml.safe_dump(document))
    # The sandbox has fixed keys but no user passwords: the seed documents Dana's.
    env = {"LICENSESPRING_DANA_PASSWORD": "sandbox-dana-password"}
    dry = cli("apply", str(desired), "--sandbox", "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert '"password": "***"' in dry.output and "sandbox-dana-password" not in dry.output
    assert cli("apply", str(desired), "--sandbox", "--auto-approve", env=env).exit_code == 0
    activation = [e for e in changing(request_log(workspace, "licensespring"))
                  if e["body"].get("hardware_id") == "render-01"]
    assert [e["body"]["username"] for e in activation] == ["dana@acme.example"]
    assert cli("plan", str(desired), "--sandbox", "--detailed-exitcode", env=env).exit_code == 0


def test_a_user_based_activation_without_a_password_is_refused_before_any_call(workspace, cli):
    desired = copy_example(workspace, "licensespring.yaml")
    document = yaml.safe_load((desired / "licensespring.yaml").read_text())
    connection = document["providers"]["licensespring"]["connection"]
    connection["user_passwords"] = {}
    document["providers"]["licensespring"]["subjects"].append(
        {"device": "render-01", "licenses": ["acmerender/dana@acme.example+lee@acme.example"]})
    (desired / "licensespring.yaml").write_text(yaml.safe_dump(document))
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1
    assert "needs a user's password to activate" in refused.output
    assert changing(request_log(workspace, "licensespring")) == []


HOSTILE = "ws/../x?y=1#f %2D ü"


def test_a_hostile_hardware_id_reaches_the_vendor_only_as_that_device(workspace, cli):
    desired = copy_example(workspace, "licensespring.yaml")
    document = yaml.safe_load((desired / "licensespring.yaml").read_text())
    document["providers"]["licensespring"]["subjects"].append(
        {"device": HOSTILE, "licenses": ["AVIZ-1QQ3-8TTR-2ZZ9"]})
    (desired / "licensespring.yaml").write_text(yaml.safe_dump(document))
    assert cli("validate", str(desired)).exit_code == 0
    applied = cli("apply", str(desired), "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    sent = [e for e in changing(request_log(workspace, "licensespring"))
            if e["body"].get("product") == "acmeviz"]
    assert [(e["path"], e["query"], e["body"]["hardware_id"]) for e in sent] == [
        ("/api/v4/activate_license", "", HOSTILE)]
    assert cli("plan", str(desired), "--sandbox", "--detailed-exitcode").exit_code == 0
