"""Yext's hourly quota through the CLI over real HTTP: wait for a near reset, or stop.

The simulator is served on a loopback port with its quota turned on (`Rate-Limit-*`
headers, 429 until the reset); the CLI is the one a user runs, with wall-clock time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.http import utc_minute
from reconciler.journal import Journal
from reconciler.sandbox.serve import ServedSimulators
from reconciler.sandbox.yext import YextSimulator
from reconciler.sandbox.yext_quota import QuotaSettings
from tests.e2e.conftest import changing, copy_example

READS = 4  # the pack list and one assignment list per pack


@pytest.fixture
def served() -> Iterator[tuple[YextSimulator, dict[str, str]]]:
    simulator = YextSimulator()
    with ServedSimulators({"yext": simulator}) as running:
        yield simulator, {"YEXT_BASE_URL": running.urls["yext"],
                          "YEXT_API_KEY": "sandbox-yext-api-key"}


def with_budget(desired: Path, seconds: int) -> str:
    path = desired / "yext.yaml"
    path.write_text(path.read_text().replace(
        "    limits:\n", f"    limits:\n      retry_budget: {seconds}\n"))
    return str(desired)


def test_a_used_hour_stops_the_apply_before_sending_more_and_the_next_run_converges(
        workspace, cli, served):
    simulator, env = served
    desired = with_budget(copy_example(workspace, "yext.yaml"), 5)
    simulator.quota.configure(QuotaSettings(limit=READS + 2, window_s=3600))
    stopped = cli("apply", desired, "--auto-approve", env=env)
    assert stopped.exit_code == 1, stopped.output
    resets = simulator.quota.window_end
    assert resets is not None
    message = f"yext: hourly quota used; quota resets at {utc_minute(resets)} (UTC)"
    assert message in stopped.output
    assert "Traceback" not in stopped.output
    sent = changing(simulator.request_log())
    assert len(sent) == 2 and all(e["status"] != 429 for e in sent), \
        "the answer to the second change said nothing is left: no third change is sent"
    with Journal(Path(".reconciler/journal.db")) as journal:
        assert list(journal.in_doubt()) == [], "a 429 did nothing: nothing is in doubt"

    # The hour restarts (the quota is lifted here instead of waiting an hour).
    simulator.quota.configure(QuotaSettings(limit=1000, window_s=3600))
    again = cli("apply", desired, "--auto-approve", env=env)
    assert again.exit_code == 0, again.output
    assert cli("drift", desired, env=env).exit_code == 0


def test_a_reset_within_the_budget_is_waited_for_and_the_apply_completes(
        workspace, cli, served):
    simulator, env = served
    desired = with_budget(copy_example(workspace, "yext.yaml"), 30)
    simulator.quota.configure(QuotaSettings(limit=READS + 1, window_s=1))
    applied = cli("apply", desired, "--auto-approve", env=env)
    assert applied.exit_code == 0, applied.output
    assert "quota used" not in applied.output
    sent = changing(simulator.request_log())
    assert len([e for e in sent if e["status"] != 429]) >= 2
    assert cli("drift", desired, env=env).exit_code == 0
