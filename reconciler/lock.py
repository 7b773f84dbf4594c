"""Locks that keep two runs off the same pool, and name the holder when they refuse.

`lock_scopes(journal, scopes, timeout)` locks (provider, pool-or-scope) pairs, so runs
over disjoint pools proceed at once and runs over a shared pool take turns:

- with a PostgreSQL journal, one session advisory lock per scope on a connection of
  its own: they span machines, and a holder that dies (kill -9, a lost runner) loses
  them with its connection, so no stale lock ever needs removing by hand. Every
  journal write then first checks, in its own transaction, that those locks are still
  held: a run whose lock connection dropped stops before sending anything more;
- with a SQLite journal, one flock'd file per scope beside it (one machine; the kernel
  releases a dead process's locks).

Every contender takes its scopes in one global order, so waiting runs never deadlock.
A refusal names the holder: host, pid, CI run URL when there is one, since when.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.errors import JournalError, LockedError, LockLostError
from reconciler.journal import Journal
from reconciler.journal.entries import ci_run
from reconciler.journal.store import Tx, mask_dsn
from reconciler.secrets import REDACTOR

Scope = tuple[str, str]
"""(provider, pool-or-scope): the unit two runs may not change at once."""

_HOLDER_WAIT = 2.0
"""How long a refused run waits for a brand-new holder to finish writing its name."""


def holder_info() -> dict[str, Any]:
    """Who we are, as a refused run will read it."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "ci_run": ci_run(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def describe_holder(holder: dict[str, Any]) -> str:
    run = f", CI run {holder['ci_run']}" if holder.get("ci_run") else ""
    return f"pid {holder['pid']} on {holder['host']}{run}, since {holder['since']}"


def _refusal(scope: Scope, who: str, timeout: float) -> LockedError:
    waited = f"waited {timeout:g}s; " if timeout > 0 else ""
    return LockedError(REDACTOR.text(
        f"another run holds the lock on {scope[0]}/{scope[1]} ({who}); {waited}wait for it "
        "to finish or pass --lock-timeout"
    ))


@contextmanager
def lock_scopes(journal: Journal, scopes: Iterable[Scope], timeout: float = 0.0) -> Iterator[None]:
    """Holds every scope for the block: waits up to `timeout` seconds (0: not at all),
    then raises LockedError naming a holder. Nothing is held after a refusal."""
    wanted = sorted(set(scopes))
    if not wanted:
        yield
        return
    if journal.url is not None:
        with _advisory_locks(journal, journal.url, wanted, timeout):
            yield
    else:
        assert journal.path is not None
        with _file_locks(journal.path, wanted, timeout):
            yield


# --- one machine: a flock'd file per scope -------------------------------------------


def scope_file(journal_path: Path, scope: Scope) -> Path:
    digest = hashlib.sha256(f"{scope[0]}\0{scope[1]}".encode()).hexdigest()[:24]
    return journal_path.with_name(journal_path.name + ".locks") / f"{digest}.lock"


@contextmanager
def _file_locks(journal_path: Path, scopes: list[Scope], timeout: float) -> Iterator[None]:
    import fcntl

    deadline = time.monotonic() + timeout
    held: list[int] = []
    try:
        for scope in scopes:
            path = scope_file(journal_path, scope)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            grace = None
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    now = time.monotonic()
                    if now >= deadline:
                        who = _file_holder(path)
                        # An unnamed holder is one just taking or just leaving the
                        # lock: try again for a moment rather than refuse for nothing.
                        grace = grace or now + _HOLDER_WAIT
                        if who is not None or now >= grace:
                            os.close(fd)
                            raise _refusal(scope, who or _UNNAMED, timeout) from None
                    time.sleep(0.01)  # flock cannot wait with a timeout; poll
            held.append(fd)
            record = json.dumps({**holder_info(), "provider": scope[0], "scope": scope[1]})
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
        yield
    finally:
        for fd in reversed(held):
            os.ftruncate(fd, 0)  # before unlocking: the file never names a past holder
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


_UNNAMED = "another process, which has not recorded its name"


def _file_holder(path: Path) -> str | None:
    """The holder named in a scope's lock file; None while it has not written its name
    (it does so right after taking the lock)."""
    try:
        return describe_holder(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError):
        return None


# --- across machines: PostgreSQL advisory locks ---------------------------------------


def advisory_key(scope: Scope) -> int:
    """A non-negative 63-bit key, so pg_locks' (classid << 32 | objid) gives it back."""
    digest = hashlib.sha256(f"reconciler\0{scope[0]}\0{scope[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND objsubid = 1 AND pid = ? "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((classid::bigint << 32) | objid::bigint) = ANY(?)"
)
_HOLDER = (
    "SELECT l.pid, h.host, h.pid, h.ci_run, h.since, a.application_name, "
    "a.client_addr::text, a.backend_start "
    "FROM pg_locks l LEFT JOIN lock_holders h ON h.backend_pid = l.pid AND h.key = ? "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = ?"
)


@contextmanager
def _advisory_locks(journal: Journal, url: str, scopes: list[Scope], timeout: float
                    ) -> Iterator[None]:
    import psycopg

    from reconciler.journal.postgres import connect

    keyed = sorted((advisory_key(s), s) for s in scopes)
    keys = [key for key, _ in keyed]
    conn = connect(url, "lock")
    try:
        try:
            _acquire(conn, keyed, timeout)
        except psycopg.Error as error:
            raise JournalError(REDACTOR.text(
                f"lock on {mask_dsn(url)} failed: {str(error).strip()}")) from None
        remove_guard = journal.guard_writes(_still_held(conn, conn.info.backend_pid, keys, keyed))
        try:
            yield
        finally:
            remove_guard()
    finally:
        _release(conn)


def _acquire(conn: Any, keyed: list[tuple[int, Scope]], timeout: float) -> None:
    import psycopg

    backend = conn.info.backend_pid
    me = holder_info()
    with conn.transaction():
        # Our names go in before we take anything: whoever finds a key held can
        # always join pg_locks to the holder's row. Rows of dead backends go.
        conn.execute("DELETE FROM lock_holders WHERE backend_pid NOT IN "
                     "(SELECT pid FROM pg_stat_activity)")
        conn.cursor().executemany(
            "INSERT INTO lock_holders (key, backend_pid, provider, scope, host, pid, "
            "ci_run, since) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (key, backend_pid) DO NOTHING",
            [(key, backend, scope[0], scope[1], me["host"], me["pid"], me["ci_run"],
              me["since"]) for key, scope in keyed],
        )
    deadline = time.monotonic() + timeout
    for key, scope in keyed:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            ok = bool(got and got[0])
        else:
            conn.execute("SELECT set_config('lock_timeout', %s, false)",
                         (f"{max(1, int(remaining * 1000))}ms",))
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                ok = True
            except psycopg.errors.LockNotAvailable:
                ok = False
        for _ in range(5):
            if ok:
                break
            who = _advisory_holder(conn, key)
            if who is not None:
                raise _refusal(scope, who, timeout)
            # Nobody holds it now: its holder was a run that just gave up or finished.
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            ok = bool(got and got[0])
        if not ok:
            raise _refusal(scope, "a run that has just released it", timeout)
    conn.execute("SELECT set_config('lock_timeout', '0', false)")


def _still_held(conn: Any, backend: int, keys: list[int], keyed: list[tuple[int, Scope]]) -> Any:
    """The write guard: this run's locks are all still granted to its lock connection."""

    def guard(tx: Tx) -> None:
        row = tx.execute(_HELD, (backend, keys)).fetchone()
        if conn.closed or row is None or int(row[0]) != len(keys):
            names = ", ".join(f"{p}/{s}" for _, (p, s) in keyed)
            raise LockLostError(
                f"the lock on {names} is no longer held (its database connection ended); "
                "stopping before sending anything else. Run again: the next run sees "
                "what was journaled."
            )

    return guard


def _advisory_holder(conn: Any, key: int) -> str | None:
    """Who holds `key` now; None when nobody does any more."""
    rows = conn.execute(_HOLDER.replace("?", "%s"), (key, key)).fetchall()
    if not rows:
        return None
    backend, host, pid, run, since, application, address, started = rows[0]
    if host is not None:
        return describe_holder({"host": host, "pid": pid, "ci_run": run, "since": since})
    where = f" from {address}" if address else ""
    return f"database session {backend} ({application or 'unnamed'}{where}, since {started})"


def _release(conn: Any) -> None:
    """Unlocks and forgets our names; on a dead connection the server already did."""
    import psycopg

    try:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock_all()")
            conn.execute("DELETE FROM lock_holders WHERE backend_pid = pg_backend_pid()")
    except psycopg.Error:
        pass  # the locks die with the session either way
    finally:
        conn.close()
