"""Commvault end to end through the CLI and the in-process simulator."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.e2e.conftest import changing, copy_example, request_log


def test_dry_run_shows_the_seed_release_request_and_sends_nothing(workspace, cli):
    desired = str(copy_example(workspace, "commvault.yaml"))
    dry = cli("apply", desired, "--sandbox", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "POST http://commvault.sandbox/commandcenter/api/Client/License/Release" in dry.output
    assert json.dumps({"clientEntity": {"clientId": 5}, "isClientLevelOperation": False,
                       "licensesInfo": [{"license": {
        "appType": 81, "licenseName": "SQL Server", "licenseType": 30}, "platformType": 1}]},
        sort_keys=True) in dry.output
    assert changing(request_log(workspace, "commvault")) == [
        e for e in request_log(workspace, "commvault") if e["path"].endswith("/Login")]


def test_apply_twice_changes_nothing_the_second_time(workspace, cli):
    desired = str(copy_example(workspace, "commvault.yaml"))
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    before = len(changing(request_log(workspace, "commvault")))
    second = cli("apply", desired, "--sandbox", "--auto-approve")
    assert second.exit_code == 0 and "No changes" in second.output
    after = changing(request_log(workspace, "commvault"))[before:]
    assert all(e["path"].endswith("/Login") for e in after)


def test_over_capacity_is_refused_before_any_change(workspace, cli):
    desired = copy_example(workspace, "commvault.yaml")
    document = yaml.safe_load((desired / "commvault.yaml").read_text())
    for subject in document["providers"]["commvault"]["subjects"]:
        if subject["client"] in {"fs-01", "fs-02"}:
            subject["licenses"] = ["Server File System", "Exchange Mailbox"]
    document["providers"]["commvault"]["connection"]["agent_licenses"] = {
        "File System": ["Server File System", "Exchange Mailbox"]}
    (desired / "commvault.yaml").write_text(yaml.safe_dump(document))
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1
    assert "pool 'Exchange Mailbox' would hold 3 seats but has 2" in refused.output
    log = request_log(workspace, "commvault")
    assert all(e["method"] == "GET" or e["path"].endswith("/Login") for e in log)


def test_mixed_target_plans_reapply_then_release_in_that_order(workspace, cli):
    desired = str(copy_example(workspace, "commvault.yaml"))
    planned = cli("plan", desired, "--sandbox", "--output", "json")
    assert planned.exit_code == 0, planned.output
    steps = [(a["verb"], a["subject"]["id"], a["license"], a["request"]["url"].rsplit("/", 1)[1])
             for a in json.loads(planned.stdout)["actions"] if a["provider"] == "commvault"]
    mail = [s for s in steps if s[1] == "mail-01"]
    assert mail == [("assign", "mail-01", "Exchange Mailbox", "Reconfigure"),
                    ("release", "mail-01", "SQL Server", "Release")]
    assert steps.index(("release", "vsa-01", "SQL Server", "Release")) < steps.index(mail[0])
    applied = cli("apply", desired, "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    sent = [e["path"].rsplit("/", 1)[1] for e in changing(request_log(workspace, "commvault"))
            if not e["path"].endswith("/Login")]
    assert sent.count("Reconfigure") == 1 and sent.index("Reconfigure") < len(sent) - 1


def test_reapply_peak_over_capacity_is_refused_before_any_change(workspace, cli):
    desired = copy_example(workspace, "commvault.yaml")
    document = yaml.safe_load((desired / "commvault.yaml").read_text())
    for subject in document["providers"]["commvault"]["subjects"]:
        if subject["client"] == "vsa-01":
            subject["licenses"].append("SQL Server")  # keeps its SQL seat: none is freed
    (desired / "commvault.yaml").write_text(yaml.safe_dump(document))
    refused = cli("plan", str(desired), "--sandbox")
    assert refused.exit_code == 1
    assert "re-applying licenses on mail-01 needs 3 seats of 'SQL Server'" in refused.output
    assert all(e["method"] == "GET" or e["path"].endswith("/Login")
               for e in request_log(workspace, "commvault"))


HOSTILE_CLIENT_NAMES = ["a/b", "..", "fs-01?x=1", "fs-01#frag", "fs%2D01", "fs 01", "fs-01\u00e9"]


@pytest.mark.parametrize("name", HOSTILE_CLIENT_NAMES)
def test_hostile_client_name_is_refused_with_file_line_and_reaches_no_url(workspace, cli, name):
    # Client names never go into a URL (calls carry the numeric clientId), so a hostile
    # name can only name a client that does not exist: refused at validate (the loader's
    # id rules) or at plan (check), with file:line, before any change.
    desired = copy_example(workspace, "commvault.yaml")
    path = desired / "commvault.yaml"
    document = yaml.safe_load(path.read_text())
    document["providers"]["commvault"]["subjects"] = [
        {"client": name, "licenses": ["Server File System"]}]
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    lines = path.read_text().splitlines()
    first = next(i for i, text in enumerate(lines, 1) if "client:" in text)
    validated = cli("validate", str(desired))
    result = validated if validated.exit_code != 0 else cli("plan", str(desired), "--sandbox")
    assert result.exit_code == 1, result.output
    where = re.search(r"commvault\.yaml:(\d+): ", result.output)
    assert where is not None, result.output
    assert first <= int(where.group(1)) <= len(lines), "the subject's own lines"
    log = request_log(workspace, "commvault")
    assert [e for e in changing(log) if not e["path"].endswith("/Login")] == []
    paths = {e["path"] for e in log} | {e["query"] for e in log}
    assert not any(name in text or name.replace(" ", "%20") in text for text in paths)
