"""`reconciler import` details; the round trip (import then plan shows no changes) is a
property of the conformance kit, run on every vendor (tests/e2e/test_conformance.py)."""

from __future__ import annotations

import yaml


def test_import_of_one_pool_keeps_whole_subjects(workspace, cli):
    imported = cli("import", "yext", "--sandbox", "--pool", "reviews-plus")
    assert imported.exit_code == 0, imported.output
    subjects = yaml.safe_load(imported.stdout)["providers"]["yext"]["subjects"]
    assert [s["entity"] for s in subjects] == ["store-001", "store-002"]
    assert subjects[0]["licenses"] == ["knowledge-pro", "listings-basic", "reviews-plus"]
    expiring = subjects[1]["licenses"][2]
    assert expiring["id"] == "reviews-plus" and str(expiring["expires"]) == "2027-06-30"
    (workspace / "imported.yaml").write_text(imported.stdout)
    assert cli("plan", "imported.yaml", "--sandbox", "--detailed-exitcode").exit_code == 0


def test_unknown_provider_is_refused(cli):
    result = cli("import", "nope")
    assert result.exit_code == 1 and "unknown provider 'nope'" in result.output
