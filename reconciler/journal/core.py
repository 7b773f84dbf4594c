"""Append-only record of every vendor-changing call, written before and after it runs.

A row is durable before the call it announces is sent: after a crash, a `started`
row without a later row for the same action is exactly the set of calls whose fate
is unknown. Rows are never updated; a later row supersedes an earlier one for the
same action. Old rows may be pruned (retention), except those of calls still in
doubt or pending.

The same rows and guarantees on both backends (SQLite by default, PostgreSQL for a
team's shared journal): the SQL is written once; `store` runs it.

Rows hold no secrets: the request digest is a hash of the (already redacted)
preview, and messages pass through the redactor.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from reconciler import DISTRIBUTION
from reconciler.errors import JournalError
from reconciler.journal.entries import (
    INSERT_COLUMNS,
    SELECT_COLUMNS,
    Entry,
    Provenance,
    now_iso,
    parse_when,
    request_digest,
)
from reconciler.journal.schema import migrate
from reconciler.journal.store import (
    DEFAULT_PATH,
    Store,
    WriteGuard,
    describe,
    journal_target,
)
from reconciler.model import Action, Outcome
from reconciler.secrets import REDACTOR

ENV_RETENTION_DAYS = "RECONCILER_JOURNAL_RETENTION_DAYS"

_INSERT = (
    f"INSERT INTO entries ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in INSERT_COLUMNS)})"
)
_LATEST = (
    "SELECT e.seq FROM entries e JOIN (SELECT action_id, MAX(seq) AS seq FROM entries "
    "GROUP BY action_id) last ON e.seq = last.seq"
)
_OPEN = f"{_LATEST} WHERE e.event = 'started' OR e.outcome = 'pending'"
"""Latest rows of calls still in doubt or pending: what retention must never drop."""


def open_store(target: str | Path) -> Store:
    if isinstance(target, Path):
        from reconciler.journal.sqlite import SqliteStore

        return SqliteStore(target)
    try:
        from reconciler.journal.postgres import PostgresStore
    except ImportError as error:  # the driver is the optional `postgres` extra
        raise JournalError(
            f"a PostgreSQL journal needs the psycopg driver ({error}): "
            f"pip install '{DISTRIBUTION}[postgres]'") from None
    return PostgresStore(target)


class Journal:
    """One journal: a SQLite file (a Path) or a PostgreSQL database (a postgresql:// URL).

    Safe to open from several processes at once; with PostgreSQL, from several
    machines. Opening creates or migrates the schema and refuses a newer one.
    """

    def __init__(self, target: str | Path = DEFAULT_PATH) -> None:
        self.target = journal_target(target)
        self.store = open_store(self.target)
        try:
            migrate(self.store)
        except BaseException:
            self.store.close()
            raise
        self.run_id = uuid.uuid4().hex[:12]
        self.provenance = Provenance.from_environment()
        self.plan_digest: str | None = None

    @property
    def path(self) -> Path | None:
        """The SQLite file; None for a database journal."""
        return self.target if isinstance(self.target, Path) else None

    @property
    def url(self) -> str | None:
        """The PostgreSQL URL (unmasked: pass `description` to anything printed)."""
        return self.target if isinstance(self.target, str) else None

    @property
    def description(self) -> str:
        return describe(self.target)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def guard_writes(self, guard: WriteGuard) -> Callable[[], None]:
        """Runs `guard` first in every later write transaction (a lock's liveness check);
        returns the function that removes it."""
        self.store.guards.append(guard)
        return lambda: self.store.guards.remove(guard)

    def row(
        self,
        action: Action,
        event: str,
        outcome: str | None,
        message: str = "",
        vendor_request_id: str | None = None,
    ) -> tuple[Any, ...]:
        """One entry as it will be stored (secrets masked), in INSERT_COLUMNS order."""
        return (
            now_iso(),
            self.run_id,
            action.id,
            action.provider,
            event,
            outcome,
            request_digest(action),
            vendor_request_id,
            REDACTOR.text(message),
            REDACTOR.text(action.model_dump_json()),
            self.provenance.git_commit,
            self.provenance.ci_run,
            self.provenance.actor,
            self.plan_digest,
        )

    def write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Appends rows in one transaction: durable when this returns, else it raises."""
        with self.store.write() as tx:
            tx.executemany(_INSERT, rows)

    def _append(
        self,
        action: Action,
        event: str,
        outcome: str | None,
        message: str = "",
        vendor_request_id: str | None = None,
    ) -> None:
        self.write_rows([self.row(action, event, outcome, message, vendor_request_id)])

    def started(self, action: Action) -> None:
        """Must be called (and return) before the call is sent."""
        self._append(action, "started", None)

    def finished(self, action: Action, outcome: Outcome) -> None:
        self._append(
            action, "finished", outcome.status.value, outcome.message, outcome.vendor_request_id
        )

    def resolved(
        self, action: Action, outcome: str, message: str = "", vendor_request_id: str | None = None
    ) -> None:
        """Records what a later check found: an in-doubt or pending call's real fate."""
        self._append(action, "resolved", outcome, message, vendor_request_id)

    def claim_plan(self, digest: str) -> str | None:
        """Records that a saved plan is being applied; None on success.

        A plan applies once: when `digest` was claimed before, nothing is written and
        the time of that earlier apply comes back, so a re-run CI job cannot send a
        one-shot call (an ADManager workflow request) a second time. Two runners
        claiming at once: the database's primary key lets exactly one through. Later
        rows of this run carry the digest (which reviewed plan made the change).
        """
        with self.store.write() as tx:
            inserted = tx.execute(
                "INSERT INTO applied_plans (digest, at, run_id) VALUES (?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING",
                (digest, now_iso(), self.run_id),
            ).rowcount
            if inserted == 1:
                self.plan_digest = digest
                return None
            row = tx.execute("SELECT at FROM applied_plans WHERE digest = ?",
                             (digest,)).fetchone()
        return str(row[0]) if row else "an earlier run"

    def applied_at(self, digest: str) -> str | None:
        """When a plan with this digest was claimed, or None: a read-only early check
        (the claim itself is `claim_plan`, which settles races between runners)."""
        rows = self.store.read("SELECT at FROM applied_plans WHERE digest = ?", (digest,))
        return str(rows[0][0]) if rows else None

    def entries(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        providers: Iterable[str] = (),
        limit: int | None = None,
    ) -> list[Entry]:
        """Rows in order, `since` <= at < `until` (see `parse_when`), the newest `limit`."""
        where, params = [], []
        if since:
            where.append("at >= ?")
            params.append(since)
        if until:
            where.append("at < ?")
            params.append(until)
        chosen = sorted(set(providers))
        if chosen:
            where.append(f"provider IN ({', '.join('?' for _ in chosen)})")
            params.extend(chosen)
        sql = f"SELECT {SELECT_COLUMNS} FROM entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is None:
            rows = self.store.read(sql + " ORDER BY seq", params)
        else:
            rows = self.store.read(sql + " ORDER BY seq DESC LIMIT ?", [*params, limit])
            rows.reverse()
        return [Entry(*row) for row in rows]

    def recent(self, limit: int = 50) -> list[Entry]:
        return self.entries(limit=limit)

    def latest_per_action(self) -> dict[str, Entry]:
        """The newest row of every action ever journaled."""
        rows = self.store.read(
            f"SELECT {SELECT_COLUMNS} FROM entries WHERE seq IN ({_LATEST}) ORDER BY seq"
        )
        return {row[3]: Entry(*row) for row in rows}

    def in_doubt(self) -> list[Entry]:
        """Calls that started but never finished: a crash hit them mid-flight."""
        return self._latest_where("e.event = 'started'")

    def pending(self) -> list[Entry]:
        """Calls an async vendor accepted and has not yet carried out or rejected."""
        return self._latest_where("e.outcome = 'pending'")

    def _latest_where(self, condition: str) -> list[Entry]:
        """Newest rows per action that meet `condition`, in order: the database picks
        them, so every plan does not load the latest row of every action ever run."""
        rows = self.store.read(f"SELECT {SELECT_COLUMNS} FROM entries WHERE seq IN "
                               f"({_LATEST} WHERE {condition}) ORDER BY seq")
        return [Entry(*row) for row in rows]

    def rows(self) -> list[dict[str, Any]]:
        rows = self.store.read(f"SELECT {SELECT_COLUMNS} FROM entries ORDER BY seq")
        names = SELECT_COLUMNS.split(", ")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def prune(self, before: str) -> int:
        """Deletes rows older than `before` (an `at` bound); returns how many went.

        Every row of a call still in doubt or pending stays, however old: recovery and
        pending tracking read them, and dropping them would let the next apply send a
        one-shot call again.
        """
        with self.store.write() as tx:
            return tx.execute(
                "DELETE FROM entries WHERE at < ? AND action_id NOT IN "
                f"(SELECT action_id FROM entries WHERE seq IN ({_OPEN}))",
                (before,),
            ).rowcount


def open_journal(target: str | Path | None = None) -> Journal:
    """The journal a command uses: `--journal`, else RECONCILER_JOURNAL_URL, else
    `.reconciler/journal.db`; with RECONCILER_JOURNAL_RETENTION_DAYS set, rows older
    than that many days are pruned on opening (calls in doubt or pending are kept)."""
    journal = Journal(journal_target(target))
    days = os.environ.get(ENV_RETENTION_DAYS, "").strip()
    if days:
        try:
            cutoff = parse_when(f"{int(days)}d")
        except ValueError:
            journal.close()
            raise JournalError(
                f"{ENV_RETENTION_DAYS} must be a whole number of days, not {days!r}"
            ) from None
        try:
            journal.prune(cutoff)
        except BaseException:
            journal.close()
            raise
    return journal
