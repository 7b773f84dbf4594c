"""Locks per (provider, pool): on SQLite (flock per scope) and PostgreSQL (advisory locks)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import LockedError
from reconciler.journal import Journal
from reconciler.lock import lock_scopes
from tests.journal.pgserver import PgServer

REPO = Path(__file__).resolve().parents[2]


class Contender:
    """A run in its own process (tests/journal/contender.py), driven line by line."""

    def __init__(self, target: str | Path, scopes: list[tuple[str, str]], ledger: Path,
                 timeout: float = 0.0, hold: bool = False) -> None:
        spec = {"target": str(target), "scopes": scopes, "ledger": str(ledger),
                "timeout": timeout, "hold": hold}
        self.scopes = scopes
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.journal.contender", json.dumps(spec)], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"contender exited early ({self.process.wait()})"
        return dict(json.loads(line))

    def send(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        assert self.process.wait(timeout=120) == 0


def race(contenders: list[Contender]) -> None:
    """Every contender has its journal open; then all are told to go at once."""
    for contender in contenders:
        assert contender.read()["state"] == "ready"
    for contender in contenders:
        contender.send("go")


def twenty_runs(target: str | Path, ledger: Path, timeout: float, hold: bool
                ) -> list[Contender]:
    """16 runs over 6 shared pools of two providers (each takes two neighbours) and 4
    runs over pools of their own."""
    pools = [("yext", "listings"), ("yext", "knowledge"), ("yext", "reviews"),
             ("uipath", "robots"), ("uipath", "studio"), ("uipath", "orchestrator")]
    runs = [[pools[i % 6], pools[(i + 1) % 6]] for i in range(16)]
    runs += [[("commvault", f"commcell-{i}")] for i in range(4)]
    return [Contender(target, scopes, ledger, timeout, hold) for scopes in runs]


def ledger_lines(ledger: Path, kind: str) -> list[list[str]]:
    return [line.split() for line in ledger.read_text().splitlines() if line.startswith(kind)]


def assert_no_double_holders(ledger: Path) -> None:
    intervals: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for _, scope, pid, entered, left in ledger_lines(ledger, "hold"):
        intervals[scope].append((int(entered), int(left), pid))
    for scope, spans in intervals.items():
        spans.sort()
        for (_, left, first), (entered, _, second) in itertools.pairwise(spans):
            assert left <= entered, f"{scope} held by {first} and {second} at once"


def test_twenty_concurrent_runs_without_waiting_hold_disjoint_pools_or_are_refused_by_name(
        target, tmp_path):
    ledger = tmp_path / "vendor.log"
    runs = twenty_runs(target, ledger, timeout=0.0, hold=True)
    race(runs)
    results = [run.read() for run in runs]  # every run holds (and waits) or was refused
    holders = [run for run, result in zip(runs, results, strict=True)
               if result["state"] == "held"]
    refused = [(run, result) for run, result in zip(runs, results, strict=True)
               if result["state"] == "refused"]
    held_scopes = [scope for run in holders for scope in run.scopes]
    assert len(held_scopes) == len(set(held_scopes)), "a pool had two holders"
    assert all(len(run.scopes) == 1 for run in runs[16:]) and set(runs[16:]) <= set(holders)
    assert refused, "overlapping runs raced and none was refused"
    pids = {run.process.pid: run for run in runs}
    for run, result in refused:
        assert "another run holds the lock on" in result["message"]
        named = int(result["message"].split(" (pid ")[1].split()[0])
        assert named in pids and named != result["pid"]
        assert set(pids[named].scopes) & set(run.scopes), result["message"]
        assert " since " in result["message"]
    for run in holders:
        run.send("release")
    for run in runs:
        run.finish()
    assert_no_double_holders(ledger)
    calls = [line[1] for line in ledger_lines(ledger, "call")]
    assert len(calls) == len(set(calls)), "a vendor call was sent twice"


def test_twenty_concurrent_runs_that_wait_all_apply_with_no_duplicate_vendor_call(
        target, tmp_path):
    ledger = tmp_path / "vendor.log"
    runs = twenty_runs(target, ledger, timeout=120.0, hold=False)
    race(runs)
    results = [run.read() for run in runs]
    for run in runs:
        run.finish()
    assert {r["state"] for r in results} == {"applied"}
    assert_no_double_holders(ledger)
    calls = [line[1] for line in ledger_lines(ledger, "call")]
    every_pool = {f"{p}:assign:{s}:store-001" for run in runs for p, s in run.scopes}
    assert sorted(calls) == sorted(every_pool)  # each seat assigned once, by one run
    with Journal(target) as journal:
        assert journal.in_doubt() == []


def refusal(journal: Journal, scopes: list[tuple[str, str]], timeout: float = 0.0) -> str:
    """The message of the LockedError that taking `scopes` raises."""
    with pytest.raises(LockedError) as refused, lock_scopes(journal, scopes, timeout):
        pass
    return str(refused.value)


def test_killed_holder_releases_its_lock(target, tmp_path):
    holder = Contender(target, [("yext", "listings")], tmp_path / "vendor.log", hold=True)
    race([holder])
    assert holder.read()["state"] == "held"
    with Journal(target) as journal:
        assert f"pid {holder.process.pid} on " in refusal(journal, [("yext", "listings")])
        os.kill(holder.process.pid, signal.SIGKILL)
        holder.process.wait()
        started = time.monotonic()
        # The server (or the kernel) notices the dead client: no manual clean-up.
        with lock_scopes(journal, [("yext", "listings")], timeout=30):
            pass
        assert time.monotonic() - started < 30


def test_disjoint_pools_proceed_together_and_a_shared_pool_is_refused(target):
    with (Journal(target) as first, Journal(target) as second,
          lock_scopes(first, [("yext", "listings"), ("yext", "reviews")])):
        with lock_scopes(second, [("yext", "knowledge"), ("uipath", "listings")]):
            pass
        message = refusal(second, [("yext", "knowledge"), ("yext", "reviews")])
        assert "yext/reviews" in message and f"pid {os.getpid()} on " in message
        # the refused run kept nothing: knowledge is free again
        with lock_scopes(second, [("yext", "knowledge")]):
            pass


def test_a_waiting_run_is_refused_after_its_timeout(target):
    with (Journal(target) as first, Journal(target) as second,
          lock_scopes(first, [("yext", "listings")])):
        started = time.monotonic()
        assert "waited 0.3s" in refusal(second, [("yext", "listings")], timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 10


def test_journal_url_password_never_appears_in_a_refusal(pg_server: PgServer):
    url = pg_server.url(pg_server.create_database(), password="hunter2-secret")
    with Journal(url) as first, Journal(url) as second, lock_scopes(first, [("yext", "a")]):
        message = refusal(second, [("yext", "a")])
    assert "hunter2-secret" not in message and "another run holds" in message
