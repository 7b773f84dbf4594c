"""SIGKILL an apply at random points; the next plan + apply must converge cleanly.

The vendor (a Yext simulator) runs in this test process over real HTTP, so it
outlives the killed apply, as a real vendor would. After each kill we check:
the estate converges, no entity was assigned twice, nothing that should stay was
removed, and every change the vendor saw was journaled before it was sent.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from reconciler.journal import Journal
from reconciler.sandbox.base import Faults
from reconciler.sandbox.serve import ServedSimulators
from reconciler.sandbox.yext import YextSimulator

ENTITIES = [f"e{i:03}" for i in range(80)]
HELD = ENTITIES[:40]          # live before the apply
WANTED = ENTITIES[20:]        # desired: 20 removals, 40 assignments
KEY = "sandbox-yext-api-key"


def seed() -> dict:
    return {
        "api_keys": [KEY],
        "max_page_size": 50,
        "accounts": {"me": {
            "packs": [{"id": "big", "name": "Big pack", "total": 60}],
            "entities": ENTITIES,
            "assignments": {"big": dict.fromkeys(HELD)},
        }},
    }


def write_desired(directory: Path) -> Path:
    document = {"providers": {"yext": {
        "connection": {"base_url_env": "YEXT_BASE_URL", "api_key_env": "YEXT_API_KEY"},
        "limits": {"max_removals": 100, "rate_limit": 10_000, "concurrency": 4,
                   "backoff_initial": 0.001, "backoff_max": 0.01},
        "pools": {"big": {"prune": True}},
        "subjects": [{"entity": e, "licenses": ["big"]} for e in WANTED],
    }}}
    directory.mkdir()
    (directory / "yext.yaml").write_text(yaml.safe_dump(document))
    return directory


def kill_mid_apply(desired: Path, journal: Path, env: dict[str, str], simulator: YextSimulator,
                   after_changes: int) -> int:
    """Starts an apply, SIGKILLs it the moment the vendor has seen `after_changes` changes.

    The simulator signals an event from its request log, so the kill lands right after a
    given vendor-side change, wherever the client is in its journal/send sequence.
    """
    reached = threading.Event()
    seen = 0
    record = simulator.record

    def counting(entry: dict) -> None:
        nonlocal seen
        record(entry)
        if entry["method"] in {"POST", "DELETE"}:
            seen += 1
            if seen >= after_changes:
                reached.set()

    simulator.record = counting  # type: ignore[method-assign]
    if after_changes == 0:
        reached.set()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "apply", str(desired), "--auto-approve",
         "--journal", str(journal)],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if reached.wait(timeout=0.05):
            process.send_signal(signal.SIGKILL)
            break
    try:
        return process.wait(timeout=30)
    finally:
        simulator.record = record  # type: ignore[method-assign]


def check_run(run: int, tmp_path: Path, cli) -> None:
    rng = random.Random(run)
    simulator = YextSimulator(seed=seed())
    simulator.set_faults(Faults(latency_ms=rng.choice([2, 5, 10])))
    desired = write_desired(tmp_path / "desired")
    journal_path = tmp_path / "journal.db"
    with ServedSimulators({"yext": simulator}) as served:
        env = {"YEXT_BASE_URL": served.urls["yext"], "YEXT_API_KEY": KEY}
        kill_mid_apply(desired, journal_path, env, simulator, rng.randint(0, 59))
        for _ in range(3):
            applied = cli("apply", str(desired), "--auto-approve", "--journal", str(journal_path),
                          env=env)
            if applied.exit_code == 0:
                break
        final = cli("plan", str(desired), "--detailed-exitcode", "--journal", str(journal_path),
                    env=env)
        assert final.exit_code == 0, final.output

    holders = simulator.state["accounts"]["me"]["assignments"]["big"]
    assert sorted(holders) == WANTED
    changes = [e for e in simulator.requests if e["method"] in {"POST", "DELETE"}]
    entity = lambda e: e["path"].rsplit("/", 1)[-1]  # noqa: E731
    assigned = [entity(e) for e in changes if e["method"] == "POST" and e["status"] == 200]
    assert len(assigned) == len(set(assigned)), "an entity was assigned twice"
    removed = {entity(e) for e in changes if e["method"] == "DELETE" and e["status"] == 200}
    assert removed.isdisjoint(WANTED), "removed a seat that should stay"
    with Journal(journal_path) as journal:
        started = {row["action_id"] for row in journal.rows() if row["event"] == "started"}
        assert not journal.in_doubt(), "an interrupted call was left unresolved"
    verbs = {"POST": "assign", "DELETE": "remove"}
    for entry in changes:
        action_id = f"yext:big:entity:{entity(entry)}:{verbs[entry['method']]}"
        assert action_id in started, f"{entry['method']} {entity(entry)} sent without a journal row"


@pytest.mark.parametrize("run", range(4))
def test_killed_apply_recovers(run, tmp_path, cli, workspace):
    check_run(run, tmp_path, cli)


@pytest.mark.slow
@pytest.mark.parametrize("run", range(100, 124))
def test_killed_apply_recovers_many_times(run, tmp_path, cli, workspace):
    check_run(run, tmp_path, cli)
