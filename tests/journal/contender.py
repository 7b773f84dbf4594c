"""One run competing for locks, in its own process: `python -m tests.journal.contender`.

It opens the journal, says `ready`, waits for `go` on stdin (so all contenders race
at once), takes its scopes, and applies one seat per scope the way an apply does:
skip what the journal shows done, journal `started`, "call the vendor" (a line in a
shared ledger file), journal `finished`. With `hold`, it keeps its locks until the
parent says `release`, so the parent sees who held what at the same moment. The last
stdout line is a JSON result.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from reconciler.errors import LockedError
from reconciler.journal import Journal, journal_target
from reconciler.lock import lock_scopes
from reconciler.model import Outcome, OutcomeStatus
from tests.journal.actions import seat_action


def _say(**what: object) -> None:
    sys.stdout.write(json.dumps(what) + "\n")
    sys.stdout.flush()


def _ledger(path: Path, line: str) -> None:
    """One O_APPEND write per line: lines of concurrent writers never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def main() -> None:
    spec = json.loads(sys.argv[1])
    scopes = [(p, s) for p, s in spec["scopes"]]
    ledger = Path(spec["ledger"])
    with Journal(journal_target(spec["target"])) as journal:
        _say(state="ready")
        if sys.stdin.readline().strip() != "go":
            return
        try:
            with lock_scopes(journal, scopes, timeout=spec["timeout"]):
                entered = time.monotonic_ns()
                done = {a for a, e in journal.latest_per_action().items()
                        if e.outcome == "succeeded"}
                calls = []
                for provider, pool in scopes:
                    action = seat_action(provider, pool)
                    if action.id in done:
                        continue
                    journal.started(action)
                    _ledger(ledger, f"call {action.id} {os.getpid()}")
                    calls.append(action.id)
                    journal.finished(action, Outcome(status=OutcomeStatus.SUCCEEDED))
                if spec.get("hold"):
                    _say(state="held")
                    sys.stdin.readline()
                for provider, pool in scopes:
                    _ledger(ledger, f"hold {provider}/{pool} {os.getpid()} {entered} "
                                    f"{time.monotonic_ns()}")
        except LockedError as refused:
            _say(state="refused", message=str(refused), pid=os.getpid())
            return
        _say(state="applied", calls=calls, pid=os.getpid())


if __name__ == "__main__":
    main()
