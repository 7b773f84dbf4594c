"""The shared backend: one PostgreSQL database for every runner of a team.

A write commits with `synchronous_commit = on` whatever the server's default, so a
row is durable (flushed to the server's WAL) before the call it announces is sent.
A connection that dies is not re-opened behind the caller's back: the write raises
`JournalError`, the apply stops, and nothing unjournaled reaches a vendor. The next
run starts on a fresh connection and its recovery sees whatever did commit.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg

from reconciler.errors import JournalError
from reconciler.journal.store import Rows, Store, Tx, mask_dsn, register_dsn_secret
from reconciler.secrets import REDACTOR

_MIGRATION_LOCK = 0x7265636F6E63  # "reconc": one schema migration at a time, per database


def _sql(statement: str) -> str:
    """The journal's portable qmark SQL in psycopg's placeholder style."""
    return statement.replace("%", "%%").replace("?", "%s")


def connect(url: str, purpose: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection named after this process, so `pg_stat_activity` tells
    an operator which runner it is; raises JournalError with the password masked."""
    register_dsn_secret(url)
    name = f"reconciler {purpose} pid {os.getpid()} on {socket.gethostname()}"[:63]
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10,
                               application_name=name)
    except psycopg.Error as error:
        raise JournalError(
            REDACTOR.text(f"cannot reach the journal database {mask_dsn(url)}: {error}")
        ) from None


class _PostgresTx:
    def __init__(self, cursor: psycopg.Cursor[tuple[Any, ...]]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._cursor.execute(_sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(_sql(sql), rows)


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.description = mask_dsn(url)
        self._conn = connect(url, "journal")
        try:
            self._conn.execute("SET synchronous_commit TO on")
        except psycopg.Error as error:
            self._conn.close()
            raise self._error(error) from None

    @property
    def backend_pid(self) -> int:
        return self._conn.info.backend_pid

    def _error(self, error: psycopg.Error) -> JournalError:
        return JournalError(REDACTOR.text(
            f"journal database {self.description}: {str(error).strip()}"))

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(_sql(sql), tuple(params))
                return cursor.fetchall()
        except psycopg.Error as error:
            raise self._error(error) from None

    @contextmanager
    def _transaction(self, *, guarded: bool, migration: bool = False) -> Iterator[Tx]:
        try:
            with self._conn.transaction(), self._conn.cursor() as cursor:
                tx = _PostgresTx(cursor)
                if migration:
                    # CREATE TABLE IF NOT EXISTS races with itself; the first run
                    # migrates, the others wait here and find the work done.
                    tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
                if guarded:
                    for guard in self.guards:
                        guard(tx)
                yield tx
        except psycopg.Error as error:
            raise self._error(error) from None

    def write(self) -> AbstractContextManager[Tx]:
        return self._transaction(guarded=True)

    def migration(self) -> AbstractContextManager[Tx]:
        return self._transaction(guarded=False, migration=True)

    def has_table(self, name: str) -> bool:
        rows = self.read("SELECT to_regclass(?) IS NOT NULL", (name,))
        return bool(rows and rows[0][0])

    def close(self) -> None:
        self._conn.close()
