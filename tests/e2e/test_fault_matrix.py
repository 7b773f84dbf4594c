"""Every provider converges under every fault profile, with no duplicated change.

Parametrized over the provider registry: a provider added later, with an example
file, is covered without touching this test.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import request_log
from tests.e2e.reliability import (
    FAULT_PROFILES,
    duplicated_changes,
    fast_example,
    providers_with_examples,
)

MAX_ROUNDS = 6


@pytest.mark.parametrize("profile", sorted(FAULT_PROFILES))
@pytest.mark.parametrize("provider", providers_with_examples())
def test_apply_converges_under_faults_without_duplicates(provider, profile, workspace, cli):
    desired = str(fast_example(workspace, provider))
    assert cli("sandbox", "faults", provider, "--set",
               json.dumps(FAULT_PROFILES[profile])).exit_code == 0
    for _ in range(MAX_ROUNDS):
        if cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0:
            break
    final = cli("plan", desired, "--sandbox", "--output", "json")
    assert final.exit_code == 0, final.output
    assert json.loads(final.stdout)["actions"] == [], "did not converge"
    log = request_log(workspace, provider)
    assert any(not isinstance(e["status"], int) or e["status"] >= 400 for e in log), \
        "the fault profile injected nothing"
    assert duplicated_changes(log, workspace / ".reconciler" / "journal.db") == []
