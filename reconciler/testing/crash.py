"""The SIGKILL property: kill `reconciler apply` mid-flight; the next applies converge.

The vendor is its simulator in its own process, served over real HTTP, so it outlives
the apply we kill, as a real vendor would. The kill comes from the vendor's side
(`crash_vendor`): it SIGKILLs the apply the moment the N-th changing request arrives
(N random, at most the plan's action count), then handles that request or, in every
other run, drops it unhandled; either way the client dies with calls on the wire.
Runs alternate the network transport (`RECONCILER_HTTP_TRANSPORT`), so every transport
offered is killed on every vendor.

After each kill, with no manual `journal --resolve`, a run checks:
- convergence within two further applies: the vendor holds exactly what the YAML says
  (read from the simulator's own state by the estate's holdings function, never by the
  provider under test), `plan --detailed-exitcode` and `drift` exit 0, and the journal
  holds nothing in doubt;
- no command says "in sync" (exit 0) while the vendor still differs from the YAML;
- no one-shot change made twice (identical successful POSTs of journaled calls);
- no unintended removal: nothing the YAML keeps was ever taken away at the vendor;
- every change the vendor saw was journaled (logins aside).

Set RECONCILER_CRASH_REPORT=FILE to append one JSON line per run.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import yaml

from reconciler.config.document import SUBJECT_FIELDS
from reconciler.journal import Journal
from reconciler.pipeline import load_desired
from reconciler.sandbox.base import CHANGING_METHODS
from reconciler.sandbox.serve import environment_for
from reconciler.testing.runner import cli, duplicated_changes, journaled_calls
from reconciler.testing.vendor import KitVendor
from reconciler.transport import DEFAULT_TRANSPORT, TRANSPORT_ENV, TRANSPORTS

Holding = tuple[str, str, int | None]
"""(subject id, license id, quantity or None)."""
Holdings = Callable[[dict[str, Any]], Iterable[Holding]]

FURTHER_APPLIES = 2
CRASH_LIMITS = {"concurrency": 4, "rate_limit": 10_000, "max_removals": 10_000,
                "backoff_initial": 0.001, "backoff_max": 0.01, "retries": 15, "timeout": 5.0}
LOGIN = re.compile(r"login|logout|authenticate|token|whoami", re.IGNORECASE)
LAUNCH = ("import os, sys; sys.stdin.readline(); "
          "os.execv(sys.executable, [sys.executable, '-m', 'reconciler.cli', *sys.argv[1:]])")
"""Starts the apply only once the vendor is armed with its pid (exec keeps the pid)."""


def resolve_holdings(spec: str, provider: str) -> Holdings:
    """`module:attr` (dotted attributes allowed) → the holdings reader; a mapping found
    there is indexed by the provider id."""
    module, _, attribute = spec.partition(":")
    found: Any = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    if isinstance(found, Mapping):
        found = found[provider]
    assert callable(found), f"{spec} is not a holdings reader"
    return found  # type: ignore[no-any-return]


@dataclass
class Estate:
    """A seed, a desired state some changes away, and how to read what the vendor holds."""

    provider: str
    seed: dict[str, Any]
    document: dict[str, Any]
    holdings: str
    """`module:attr` of a function (simulator state → holdings), run in the vendor's
    process too: see `resolve_holdings`."""

    @property
    def block(self) -> dict[str, Any]:
        block: dict[str, Any] = self.document["providers"][self.provider]
        return block

    def desired(self) -> set[Holding]:
        """What the YAML says its named subjects hold."""
        held: set[Holding] = set()
        for subject in self.block["subjects"]:
            name = _subject_id(subject)
            for entry in subject.get("licenses") or []:
                if isinstance(entry, str):
                    held.add((name, entry, None))
                else:
                    held.add((name, entry["id"], entry.get("quantity")))
        return held

    def named(self) -> set[str]:
        return {_subject_id(subject) for subject in self.block["subjects"]}

    def held(self, state: dict[str, Any]) -> set[Holding]:
        """What the vendor holds for the subjects the YAML names."""
        named = self.named()
        reader = resolve_holdings(self.holdings, self.provider)
        return {h for h in reader(state) if h[0] in named}


def _subject_id(subject: dict[str, Any]) -> str:
    kinds = [k for k in subject if k not in SUBJECT_FIELDS]
    assert len(kinds) == 1, subject
    return str(subject[kinds[0]])


def default_estate(vendor: KitVendor) -> Estate:
    """The vendor's seed and example; its simulator's `holdings(state)` reads the truth
    (a static method a vendor package adds for the kit)."""
    assert callable(getattr(vendor.simulator, "holdings", None)), (
        f"[crash] the simulator of '{vendor.id}' has no `holdings(state)` static method: "
        "the crash property reads what the vendor holds from the simulator's own state")
    document = vendor.document(**CRASH_LIMITS)
    spec = f"{vendor.simulator.__module__}:{vendor.simulator.__qualname__}.holdings"
    return Estate(vendor.id, vendor.simulator.default_seed(), document, spec)


class VendorProcess:
    """One provider's simulator, in its own process, seeded with the estate."""

    def __init__(self, estate: Estate, scratch: Path) -> None:
        self.estate = estate
        seed_file = scratch / f"{estate.provider}-seed.json"
        seed_file.write_text(json.dumps(estate.seed))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler.testing.crash_vendor", estate.provider,
             str(seed_file), estate.holdings],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_child_env())
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url, f"the {estate.provider} simulator did not start"
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


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: it imports what this process imports."""
    return {**os.environ, **(extra or {}), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


@dataclass
class CrashRun:
    provider: str
    run: int
    kill_after: int
    request_lost: bool
    transport: str = DEFAULT_TRANSPORT
    killed: bool = False
    in_doubt_after_kill: int = 0
    applies: int = 0
    converged: bool = False
    duplicates: list[Any] = field(default_factory=list)
    unintended_removals: list[Any] = field(default_factory=list)
    false_in_sync: list[str] = field(default_factory=list)
    unjournaled: list[Any] = field(default_factory=list)


def kill_mid_apply(vendor: VendorProcess, arguments: list[str], env: dict[str, str], cwd: Path,
                   after: int, lose: bool) -> bool:
    """Starts an apply and lets the vendor SIGKILL it at its `after`-th changing request
    (which the vendor then handles, or with `lose` drops unhandled)."""
    process = subprocess.Popen([sys.executable, "-c", LAUNCH, *arguments], cwd=cwd,
                               env=_child_env(env), stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def crash_run(run: int, vendor: VendorProcess, workspace: Path) -> CrashRun:
    estate = vendor.estate
    provider = estate.provider
    rng = random.Random(f"{provider}:{run}")
    vendor.reset()
    desired_dir = workspace / "desired"
    desired_dir.mkdir()
    (desired_dir / f"{provider}.yaml").write_text(yaml.safe_dump(estate.document))
    desired, journal = str(desired_dir), str(workspace / "journal.db")
    # Every network transport is killed mid-flight: runs 0 and 1 take one each, and
    # any four runs in a row cover each transport with the request lost and not.
    transport = TRANSPORTS[(run + run // 2) % len(TRANSPORTS)]
    env = {**environment_for(load_desired([desired]), {provider: vendor.url}),
           TRANSPORT_ENV: transport}
    planned = cli("plan", desired, "--journal", journal, "--output", "json", env=env)
    assert planned.exit_code == 0, planned.output
    calls = len(json.loads(planned.stdout)["actions"])
    assert calls, f"[crash] the estate of '{provider}' needs no change"
    record = CrashRun(provider, run, kill_after=rng.randint(1, max(1, calls - calls // 10)),
                      request_lost=run % 2 == 1, transport=transport)

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
    kept = {(s, lic) for s, lic, _ in estate.desired()}
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
    assert record.killed, f"[crash] the apply finished before its {record.kill_after}th change"
    assert record.converged, f"[crash] not converged within {FURTHER_APPLIES} applies: {record}"
    assert not record.false_in_sync, f"[crash] {record.false_in_sync}"
    assert not record.duplicates, f"[crash] one-shot changes made twice: {record.duplicates}"
    assert not record.unintended_removals, \
        f"[crash] removed what the YAML keeps: {record.unintended_removals}"
    assert not record.unjournaled, \
        f"[crash] changes sent without a journal row: {record.unjournaled}"
