"""One apply at a time per journal: a file lock beside it that names its holder."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from reconciler.errors import LockedError


@contextmanager
def apply_lock(journal_path: Path, timeout: float = 0.0) -> Iterator[None]:
    """Holds `<journal>.lock` for a whole plan or apply, reading included.

    Waits up to `timeout` seconds (0: not at all), then raises LockedError naming
    whoever holds it now.
    """
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = journal_path.with_name(journal_path.name + ".lock")
    holder_path = journal_path.with_name(journal_path.name + ".holder")
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        try:
            holder = json.loads(holder_path.read_text(encoding="utf-8"))
            who = f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
        except (OSError, ValueError, KeyError):
            who = "another process"
        raise LockedError(
            f"another run holds {lock_path} ({who}); wait for it to finish "
            "or pass --lock-timeout"
        ) from None
    try:
        holder_path.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                }
            ),
            encoding="utf-8",
        )
        yield
    finally:
        holder_path.unlink(missing_ok=True)
        lock.release()
