"""SIGKILL `reconciler apply` at random points, on every provider; the next applies converge.

Each vendor is a simulator in its own process, served over real HTTP, so it outlives
the apply we kill, as a real vendor would. The kill comes from the vendor's side: the
vendor process SIGKILLs the apply the moment the N-th changing request arrives (N
random), then handles that request or, in every other run, drops it unhandled;
either way the client dies with calls on the wire.

After each kill, with no manual `journal --resolve`, every run checks:
- convergence within two further applies: the vendor holds exactly what the YAML says
  (read from the simulator's own state), `plan --detailed-exitcode` and `drift` exit 0,
  and the journal holds nothing in doubt;
- no command says "in sync" (exit 0 from `plan --detailed-exitcode`, `drift` or
  `apply`) while the vendor still differs from the YAML;
- no one-shot change made twice (identical successful POSTs of journaled calls);
- no unintended removal: nothing the YAML keeps was ever taken away at the vendor;
- every change the vendor saw was journaled (logins aside).

Applies run with `--wait`, so an async vendor's apply (ADManager requests, approved by
the simulator as soon as the next call arrives) reports whether its requests executed;
without it an apply reports requests filed, by design.

Runs on every network transport offered (`RECONCILER_HTTP_TRANSPORT`, inherited by
the killed apply).

Set RECONCILER_CRASH_REPORT=FILE to append one JSON line per run (the README's figures).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import yaml
from click.testing import Result

from reconciler.journal import Journal
from reconciler.pipeline import load_desired
from reconciler.sandbox.base import CHANGING_METHODS
from reconciler.sandbox.serve import environment_for
from reconciler.transport import TRANSPORT_ENV, TRANSPORTS, chosen_transport
from tests.e2e.conftest import REPO
from tests.e2e.crash_estates import Estate, estate
from tests.e2e.reliability import duplicated_changes, journaled_calls, providers_with_examples

PROVIDERS = providers_with_examples()
FURTHER_APPLIES = 2
LOGIN = re.compile(r"login|logout|authenticate|token|whoami", re.IGNORECASE)
LAUNCH = ("import os, sys; sys.stdin.readline(); "
          "os.execv(sys.executable, [sys.executable, '-m', 'reconciler.cli', *sys.argv[1:]])")
"""Starts the apply only once the vendor is armed with its pid (exec keeps the pid)."""


class Vendor:
    """One provider's simulator, in its own process, seeded with the provider's estate."""

    def __init__(self, provider: str, scratch: Path) -> None:
        self.estate: Estate = estate(provider, random.Random(7))
        seed_file = scratch / f"{provider}-seed.json"
        seed_file.write_text(json.dumps(self.estate.seed))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.crash_vendor", provider, str(seed_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url, f"the {provider} simulator did not start"
        self.root = "/".join(self.url.split("/", 3)[:3])
        self.http = httpx.Client(base_url=self.root, timeout=60)

    def reset(self) -> None:
        self.http.post("/_sandbox/reset").raise_for_status()

    def arm(self, pid: int, after: int, lose: bool = False) -> None:
        order = {"pid": pid, "after": after, "lose": lose}
        self.http.post("/_crash/arm", json=order).raise_for_status()

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get("/_sandbox/state").json()
        return state

    def requests(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self.http.get("/_sandbox/requests").json()
        return log

    def gone(self) -> set[tuple[str, str]]:
        return {(s, lic) for s, lic in self.http.get("/_crash/gone").json()}

    def differs(self) -> bool:
        return self.estate.held(self.state()) != self.estate.desired()

    def stop(self) -> None:
        self.http.close()
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def vendors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Vendor]]:
    """Started on first use, one process per provider for the whole module."""
    started: dict[str, Vendor] = {}
    scratch = tmp_path_factory.mktemp("vendors")

    def get(provider: str) -> Vendor:
        if provider not in started:
            started[provider] = Vendor(provider, scratch)
        return started[provider]

    yield get
    for vendor in started.values():
        vendor.stop()


@dataclass
class CrashRun:
    provider: str
    run: int
    kill_after: int
    request_lost: bool
    transport: str = field(default_factory=chosen_transport)
    killed: bool = False
    in_doubt_after_kill: int = 0
    applies: int = 0
    converged: bool = False
    duplicates: list[Any] = field(default_factory=list)
    unintended_removals: list[Any] = field(default_factory=list)
    false_in_sync: list[str] = field(default_factory=list)
    unjournaled: list[Any] = field(default_factory=list)


def kill_mid_apply(vendor: Vendor, arguments: list[str], env: dict[str, str], cwd: Path,
                   after: int, lose: bool) -> bool:
    """Starts an apply and lets the vendor SIGKILL it at its `after`-th changing request
    (which the vendor then handles, or with `lose` drops unhandled)."""
    process = subprocess.Popen([sys.executable, "-c", LAUNCH, *arguments], cwd=cwd,
                               env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        vendor.arm(process.pid, after, lose)
        assert process.stdin is not None
        process.stdin.write(b"\n")
        process.stdin.close()
        code = process.wait(timeout=300)
    finally:
        vendor.arm(0, 0)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code == -signal.SIGKILL


def crash_run(provider: str, run: int, vendor: Vendor, workspace: Path,
              cli: Callable[..., Result]) -> CrashRun:
    rng = random.Random(f"{provider}:{run}")
    vendor.reset()
    desired_dir = workspace / "desired"
    desired_dir.mkdir()
    (desired_dir / f"{provider}.yaml").write_text(yaml.safe_dump(vendor.estate.document))
    desired, journal = str(desired_dir), str(workspace / "journal.db")
    env = environment_for(load_desired([desired]), {provider: vendor.url})
    changes = len(vendor.estate.desired() ^ vendor.estate.held(vendor.state()))
    record = CrashRun(provider, run, kill_after=rng.randint(1, changes - changes // 10),
                      request_lost=run % 2 == 1)

    def step(*arguments: str) -> int:
        result = cli(*arguments, desired, "--journal", journal, env=env)
        if result.exit_code == 0 and vendor.differs():
            record.false_in_sync.append(f"{arguments[0]} exited 0 while the vendor differs")
        return int(result.exit_code)

    apply = ("apply", "--auto-approve", "--wait", "60")
    record.killed = kill_mid_apply(vendor, [apply[0], desired, *apply[1:], "--journal", journal],
                                   env, workspace, record.kill_after, record.request_lost)
    with Journal(Path(journal)) as opened:
        record.in_doubt_after_kill = len(opened.in_doubt())
    for _ in range(FURTHER_APPLIES):
        step("plan", "--detailed-exitcode")
        step("drift")
        step(*apply)
        record.applies += 1
        if not vendor.differs():
            break
    in_sync = step("plan", "--detailed-exitcode") == 0 and step("drift") == 0
    with Journal(Path(journal)) as opened:
        in_doubt = opened.in_doubt()
    record.converged = in_sync and not in_doubt and not vendor.differs()

    log = vendor.requests()
    record.duplicates = duplicated_changes(log, Path(journal))
    kept = {(s, lic) for s, lic, _ in vendor.estate.desired()}
    record.unintended_removals = sorted(vendor.gone() & kept)
    journaled = {(m, unquote(p)) for m, p in journaled_calls(Path(journal))}
    record.unjournaled = sorted({
        (e["method"], e["path"]) for e in log
        if e["method"] in CHANGING_METHODS and e["status"] in range(200, 300)
        and (e["method"], unquote(urlsplit(e["path"]).path)) not in journaled
        and not LOGIN.search(e["path"])
    })
    report = os.environ.get("RECONCILER_CRASH_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(record), default=str) + "\n")
    return record


def check(record: CrashRun) -> None:
    assert record.killed, f"the apply finished before its {record.kill_after}th change"
    assert record.converged, f"not converged within {FURTHER_APPLIES} applies: {record}"
    assert not record.false_in_sync, record.false_in_sync
    assert not record.duplicates, f"one-shot changes made twice: {record.duplicates}"
    assert not record.unintended_removals, f"removed what the YAML keeps: " \
                                           f"{record.unintended_removals}"
    assert not record.unjournaled, f"changes sent without a journal row: {record.unjournaled}"


DEFAULT_RUNS = [(provider, run, TRANSPORTS[(run + index) % len(TRANSPORTS)])
                for index, provider in enumerate(PROVIDERS) for run in range(2)]
"""Each provider once per transport, and each transport with both a handled and a lost
request (across providers); the full product runs under `-m slow`."""


@pytest.mark.parametrize(("provider", "run", "transport"), DEFAULT_RUNS)
def test_killed_apply_converges(provider, run, transport, vendors, workspace, cli, monkeypatch):
    monkeypatch.setenv(TRANSPORT_ENV, transport)
    check(crash_run(provider, run, vendors(provider), workspace, cli))


@pytest.mark.slow
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("run", range(100, 120))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_killed_apply_converges_many_times(provider, run, transport, vendors, workspace, cli,
                                           monkeypatch):
    monkeypatch.setenv(TRANSPORT_ENV, transport)
    check(crash_run(provider, run, vendors(provider), workspace, cli))
