"""`reconciler import` writes the live state as YAML; planning it shows no changes."""

from __future__ import annotations

import pytest
import yaml

from reconciler.providers import registry
from tests.e2e.conftest import EXAMPLES, changing, request_log

PROVIDERS = sorted(registry())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_import_then_plan_shows_no_changes(provider, workspace, cli):
    example = EXAMPLES / f"{provider}.yaml"
    imported = cli("import", provider, "--sandbox", "--from", str(example))
    assert imported.exit_code == 0, imported.output
    (workspace / "imported.yaml").write_text(imported.stdout)
    document = yaml.safe_load(imported.stdout)
    assert document["providers"][provider]["subjects"], "the estate is not empty"
    planned = cli("plan", "imported.yaml", "--sandbox", "--detailed-exitcode")
    assert planned.exit_code == 0, planned.output
    assert changing([e for e in request_log(workspace, provider)
                     if "token" not in e["path"] and "Login" not in e["path"]
                     and "authenticate" not in e["path"]]) == []


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
