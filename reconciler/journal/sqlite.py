"""The embedded backend: one SQLite file beside the run, no set-up.

WAL mode with `synchronous=FULL`, so a committed row is on disk before the call it
announces is sent. Safe to open from several processes on one machine (SQLite's own
locking); it does not span machines — that is what the PostgreSQL backend is for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from reconciler.errors import JournalError
from reconciler.journal.store import Rows, Store, Tx
from reconciler.secrets import REDACTOR


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)


class SqliteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.description = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Used from one thread at a time: the event loop's, or GroupCommit's worker.
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                       check_same_thread=False)
            # Switching a new file to WAL takes an exclusive lock that SQLite's busy
            # timeout does not wait for: two runs opening a fresh journal at once
            # would see "database is locked". One opener at a time does it.
            with FileLock(str(path) + ".open.lock", timeout=30.0):
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as error:
            raise self._error(error) from None
        except Timeout:
            raise JournalError(f"journal {path}: another process keeps it locked") from None

    def _error(self, error: sqlite3.Error) -> JournalError:
        return JournalError(REDACTOR.text(f"journal {self.path}: {error}"))

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as error:
            raise self._error(error) from None

    @contextmanager
    def write(self) -> Iterator[Tx]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise self._error(error) from None
        try:
            tx = _SqliteTx(self._db)
            for guard in self.guards:
                guard(tx)
            yield tx
            self._db.execute("COMMIT")
        except BaseException as error:
            self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise self._error(error) from None
            raise

    def migration(self) -> AbstractContextManager[Tx]:
        return self.write()  # BEGIN IMMEDIATE already excludes other writers

    def has_table(self, name: str) -> bool:
        rows = self.read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)

    def close(self) -> None:
        self._db.close()
