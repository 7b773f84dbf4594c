"""The seam between the journal and its database: one small interface, two backends.

The journal's SQL is written once (qmark placeholders, portable statements); a store
runs it on SQLite or PostgreSQL and turns that driver's errors into `JournalError`,
with any DSN password masked, so a failed write stops an apply with a message that is
safe to print.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from reconciler.secrets import MASK, REDACTOR

ENV_URL = "RECONCILER_JOURNAL_URL"
DEFAULT_PATH = Path(".reconciler") / "journal.db"
_URL_SCHEMES = ("postgresql://", "postgres://")
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
"""libpq connection parameters that hold a secret when given in the URL's query."""


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(_URL_SCHEMES)


def journal_target(value: str | Path | None) -> str | Path:
    """`--journal` or RECONCILER_JOURNAL_URL as a SQLite path or a PostgreSQL URL.

    None means "not given": the environment variable, else the default SQLite file,
    so the README's commands need no database. The URL stays a string: `Path` would
    fold its `//`.
    """
    if value is None or value == "":
        value = os.environ.get(ENV_URL) or DEFAULT_PATH
    if isinstance(value, Path):
        return value
    return value if is_url(value) else Path(value)


def register_dsn_secret(url: str) -> None:
    """Masks the DSN's password (in the URL or its query) in every later output."""
    parts = urlsplit(url)
    if parts.password:
        REDACTOR.register(unquote(parts.password))
        REDACTOR.register(parts.password)
    for key, value in parse_qsl(parts.query):
        if key in _SECRET_PARAMETERS and value:
            REDACTOR.register(value)


def mask_dsn(url: str) -> str:
    """The URL with its password replaced by the mask, fit for a message."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:{MASK}@{host}"
    query = urlencode(
        [(k, MASK if k in _SECRET_PARAMETERS else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def describe(target: str | Path) -> str:
    return mask_dsn(target) if isinstance(target, str) else str(target)


class Rows(Protocol):
    """What a statement gives back: both drivers' cursors fit."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """Statements inside one write transaction (qmark placeholders on both backends)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


WriteGuard = Callable[[Tx], None]
"""Runs first in every write transaction; raises to refuse it (a lost lock)."""


class Store(ABC):
    """One open journal database."""

    dialect: str
    description: str

    def __init__(self) -> None:
        self.guards: list[WriteGuard] = []

    @abstractmethod
    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query, outside any write transaction."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Tx]:
        """A transaction that is durable when the block exits, or raises JournalError."""

    @abstractmethod
    def migration(self) -> AbstractContextManager[Tx]:
        """A write transaction that excludes every other migrating process."""

    @abstractmethod
    def has_table(self, name: str) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

