"""Append-only record of every vendor-changing call, written before and after it runs.

SQLite in WAL mode with `synchronous=FULL`, so a row is on disk before the call
it announces is sent: after a crash, a `started` row without a matching
`finished` row is exactly the set of calls whose fate is unknown. Rows are never
updated; a later row supersedes an earlier one for the same action.

Rows hold no secrets: the request digest is a hash of the (already redacted)
preview, and messages pass through the redactor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.model import Action, Outcome
from reconciler.secrets import REDACTOR

DEFAULT_PATH = Path(".reconciler") / "journal.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    event TEXT NOT NULL,           -- started | finished | resolved
    outcome TEXT,                  -- succeeded | already | pending | failed | executed | rejected
    request_digest TEXT NOT NULL,
    vendor_request_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    action_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_action ON entries(action_id, seq);
CREATE TABLE IF NOT EXISTS applied_plans (
    digest TEXT PRIMARY KEY,       -- plan_digest() of a saved plan file
    at TEXT NOT NULL,
    run_id TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    run_id: str
    action_id: str
    provider: str
    event: str
    outcome: str | None
    request_digest: str
    vendor_request_id: str | None
    message: str
    action_json: str

    def action(self) -> Action:
        return Action.model_validate_json(self.action_json)


def request_digest(action: Action) -> str:
    encoded = json.dumps(action.request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


class Journal:
    """One journal file; safe to open from several processes (SQLite locking)."""

    def __init__(self, path: Path = DEFAULT_PATH) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Used from one thread at a time: the event loop's, or GroupCommit's worker.
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.run_id = uuid.uuid4().hex[:12]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def row(
        self,
        action: Action,
        event: str,
        outcome: str | None,
        message: str = "",
        vendor_request_id: str | None = None,
    ) -> tuple[Any, ...]:
        """One entry as it will be stored (secrets masked)."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        return (
            now,
            self.run_id,
            action.id,
            action.provider,
            event,
            outcome,
            request_digest(action),
            vendor_request_id,
            REDACTOR.text(message),
            REDACTOR.text(action.model_dump_json()),
        )

    def write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Appends rows in one transaction: durable (fsync'd) when this returns."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO entries (at, run_id, action_id, provider, event, outcome, "
                "request_digest, vendor_request_id, message, action_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

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

    def applied_at(self, digest: str) -> str | None:
        """When a saved plan with this digest was applied, or None if it never was."""
        row = self._db.execute("SELECT at FROM applied_plans WHERE digest = ?",
                               (digest,)).fetchone()
        return None if row is None else str(row[0])

    def claim_plan(self, digest: str) -> str | None:
        """Records that a saved plan is being applied; None on success.

        A plan applies once: when `digest` was claimed before, nothing is written and
        the time of that earlier apply comes back, so a re-run CI job cannot send a
        one-shot call (an ADManager workflow request) a second time.
        """
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._write() as db:
            row = db.execute("SELECT at FROM applied_plans WHERE digest = ?", (digest,)).fetchone()
            if row is not None:
                return str(row[0])
            db.execute("INSERT INTO applied_plans (digest, at, run_id) VALUES (?, ?, ?)",
                       (digest, now, self.run_id))
        return None

    def recent(self, limit: int = 50) -> list[Entry]:
        rows = self._db.execute(
            "SELECT * FROM entries ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Entry(*row) for row in reversed(rows)]

    def latest_per_action(self) -> dict[str, Entry]:
        """The newest row of every action ever journaled."""
        rows = self._db.execute(
            "SELECT e.* FROM entries e JOIN (SELECT action_id, MAX(seq) AS seq FROM entries "
            "GROUP BY action_id) last ON e.seq = last.seq ORDER BY e.seq"
        ).fetchall()
        return {row[3]: Entry(*row) for row in rows}

    def in_doubt(self) -> list[Entry]:
        """Calls that started but never finished: a crash hit them mid-flight."""
        return [e for e in self.latest_per_action().values() if e.event == "started"]

    def pending(self) -> list[Entry]:
        """Calls an async vendor accepted and has not yet carried out or rejected."""
        return [e for e in self.latest_per_action().values() if e.outcome == "pending"]

    def rows(self) -> list[dict[str, Any]]:
        cursor = self._db.execute("SELECT * FROM entries ORDER BY seq")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class GroupCommit:
    """Journal writes of concurrent actions, coalesced into one fsync'd transaction.

    An fsync per row caps an apply at a few hundred calls a second. Here every
    writer waits until *its* row is durable, as with `Journal.started`, but rows
    written while a commit is in flight share the next one. The commit runs in a
    worker thread so the event loop keeps the network busy meanwhile.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def started(self, action: Action) -> None:
        """Returns once the row announcing the call is on disk: only then send it."""
        await self._write(self.journal.row(action, "started", None))

    async def finished(self, action: Action, outcome: Outcome) -> None:
        await self._write(self.journal.row(action, "finished", outcome.status.value,
                                           outcome.message, outcome.vendor_request_id))

    async def _write(self, row: tuple[Any, ...]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((row, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self.journal.write_rows, [row for row, _ in batch])
            except BaseException as error:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                raise
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
