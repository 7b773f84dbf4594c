"""PostgreSQL-only failure modes: the connection under the journal or the lock dies."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.errors import JournalError, LockLostError
from reconciler.journal import GroupCommit, Journal
from reconciler.lock import lock_scopes
from reconciler.model import Action, Outcome, OutcomeStatus
from tests.journal.actions import seat_action
from tests.journal.pgserver import PgServer


def backend_of(journal: Journal) -> int:
    return int(journal.store.read("SELECT pg_backend_pid()")[0][0])


def test_dropped_connection_makes_the_started_write_raise(pg_server: PgServer, pg_url):
    with Journal(pg_url) as journal:
        journal.started(seat_action("yext", "before"))
        pg_server.terminate(backend_of(journal))
        with pytest.raises(JournalError, match="journal database"):
            journal.started(seat_action("yext", "after"))
    with Journal(pg_url) as reopened:
        assert [e.action().pool for e in reopened.entries()] == ["before"]


async def test_no_call_is_sent_once_the_journal_connection_is_gone(
        pg_server: PgServer, pg_url):
    """The applier's contract with the journal: a call leaves only after its `started`
    row returned; every writer of a failed group commit gets the error instead."""
    sent: list[str] = []

    async def send(writer: GroupCommit, action: Action) -> None:
        await writer.started(action)
        sent.append(action.id)  # the request would leave here
        await writer.finished(action, Outcome(status=OutcomeStatus.SUCCEEDED))

    actions = [seat_action("yext", f"pool-{i}") for i in range(6)]
    with Journal(pg_url) as journal:
        writer = GroupCommit(journal)
        await send(writer, actions[0])
        pg_server.terminate(backend_of(journal))
        results = await asyncio.gather(*(send(writer, a) for a in actions[1:]),
                                       return_exceptions=True)
    assert all(isinstance(r, JournalError) for r in results), results
    assert sent == [actions[0].id]


def test_lost_lock_connection_stops_the_next_write(pg_server: PgServer, pg_url):
    with Journal(pg_url) as journal, Journal(pg_url) as other:
        with lock_scopes(journal, [("yext", "listings")]):
            journal.started(seat_action("yext", "listings"))
            lock_backend = next(
                int(pid) for (pid,) in other.store.read(
                    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE "
                    "'reconciler lock%' AND datname = current_database()"))
            pg_server.terminate(lock_backend)
            with pytest.raises(LockLostError, match="yext/listings is no longer held"):
                journal.started(seat_action("yext", "listings", "store-002"))
            # another run may take the pool now: the first one can no longer write
            with lock_scopes(other, [("yext", "listings")]):
                pass
        assert len(journal.entries()) == 1


def test_unreachable_database_is_a_clear_error_without_the_password(pg_server: PgServer):
    url = f"postgresql://reconciler:pw-never-shown@127.0.0.1:{pg_server.port}/no_such_db"
    with pytest.raises(JournalError) as failed:
        Journal(url)
    assert "pw-never-shown" not in str(failed.value)
    assert "reconciler:***@127.0.0.1" in str(failed.value)
