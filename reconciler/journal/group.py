"""Journal writes of concurrent actions, coalesced into one durable transaction."""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.journal.core import Journal
from reconciler.model import Action, Outcome


class GroupCommit:
    """Journal writes of concurrent actions, coalesced into one durable transaction.

    A durable commit per row caps an apply at a few hundred calls a second (an fsync
    on SQLite, a WAL flush and a round trip on PostgreSQL). Here every writer waits
    until *its* row is durable, as with `Journal.started`, but rows written while a
    commit is in flight share the next one. The commit runs in a worker thread so the
    event loop keeps the network busy meanwhile. A failed commit (a dropped database
    connection, a lost lock) raises in every writer of that batch: none of their calls
    is sent.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def started(self, action: Action) -> None:
        """Returns once the row announcing the call is durable: only then send it."""
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
                # Writers queued meanwhile must not wait forever for a flusher that
                # is gone: they fail the same way (the next batch would too).
                pending, self._queue = self._queue, []
                for _, done in pending:
                    if not done.done():
                        done.set_exception(error)
                return
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
