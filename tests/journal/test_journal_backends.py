"""The journal's contract, run unchanged on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from reconciler.errors import JournalSchemaError
from reconciler.journal import GroupCommit, Journal, open_journal, parse_when
from reconciler.model import Outcome, OutcomeStatus
from tests.journal.actions import seat_action


def test_started_row_is_visible_to_another_run_as_in_doubt(target):
    action = seat_action("yext", "listings-basic")
    with Journal(target) as first:
        first.started(action)  # as if the process died right after sending
        with Journal(target) as second:
            assert [e.action_id for e in second.in_doubt()] == [action.id]
            assert second.run_id != first.run_id


def test_finished_settles_a_call_and_pending_stays_open_until_resolved(target):
    done, waiting = seat_action("yext", "a"), seat_action("admanager", "E3", "ann")
    with Journal(target) as journal:
        for action in (done, waiting):
            journal.started(action)
        journal.finished(done, Outcome(status=OutcomeStatus.SUCCEEDED))
        journal.finished(waiting, Outcome(status=OutcomeStatus.PENDING, vendor_request_id="7"))
        assert journal.in_doubt() == []
        assert [(e.action_id, e.vendor_request_id) for e in journal.pending()] == [
            (waiting.id, "7")]
        journal.resolved(journal.pending()[0].action(), "executed", "approved")
        assert journal.pending() == []
        latest = journal.latest_per_action()
        assert latest[waiting.id].event == "resolved"
        assert latest[waiting.id].action() == waiting
        assert [r["event"] for r in journal.rows()] == [
            "started", "started", "finished", "finished", "resolved"]


async def test_group_commit_writes_every_row_of_concurrent_actions(target):
    actions = [seat_action("yext", f"pool-{i % 5}", f"store-{i:03}") for i in range(60)]
    with Journal(target) as journal:
        writer = GroupCommit(journal)
        await asyncio.gather(*(writer.started(a) for a in actions))
        await asyncio.gather(*(writer.finished(a, Outcome(status=OutcomeStatus.SUCCEEDED))
                               for a in actions))
    with Journal(target) as reopened:
        latest = reopened.latest_per_action()
        assert len(latest) == 60
        assert {e.event for e in latest.values()} == {"finished"}


def test_a_plan_applies_once_whichever_runner_claims_it(target):
    with Journal(target) as first, Journal(target) as second:
        assert first.applied_at("digest-1") is None
        assert first.claim_plan("digest-1") is None
        earlier = second.claim_plan("digest-1")
        assert earlier is not None and earlier == second.applied_at("digest-1")
        assert second.claim_plan("digest-2") is None


def test_rows_say_which_commit_ci_run_actor_and_plan_made_the_change(target, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/licenses")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    action = seat_action("yext", "listings-basic")
    with Journal(target) as journal:
        journal.claim_plan("plan-digest")
        journal.started(action)
        (entry,) = journal.recent()
    record = entry.export()
    assert record["git_commit"] == "a" * 40
    assert record["ci_run"] == "https://github.com/acme/licenses/actions/runs/4242"
    assert record["actor"] == "octocat"
    assert record["plan_digest"] == "plan-digest"
    assert (record["pool"], record["subject"], record["verb"]) == (
        "listings-basic", "entity:store-001", "assign")
    assert "action_json" not in record
    json.dumps(record)  # one JSON line as exported


def test_entries_filter_by_time_range_and_provider(target):
    with Journal(target) as journal:
        rows = []
        for day, provider in [("2026-01-10", "yext"), ("2026-02-10", "uipath"),
                              ("2026-03-10", "yext")]:
            row = list(journal.row(seat_action(provider, day), "finished", "succeeded"))
            row[0] = f"{day}T12:00:00.000+00:00"
            rows.append(tuple(row))
        journal.write_rows(rows)
        since = parse_when("2026-02-01")
        assert [e.action().pool for e in journal.entries(since=since)] == [
            "2026-02-10", "2026-03-10"]
        assert [e.action().pool for e in journal.entries(
            since=since, until=parse_when("2026-02-10", end=True))] == ["2026-02-10"]
        assert [e.action().pool for e in journal.entries(providers=["yext"])] == [
            "2026-01-10", "2026-03-10"]
        assert [e.action().pool for e in journal.entries(limit=1)] == ["2026-03-10"]


def test_prune_keeps_calls_still_in_doubt_or_pending(target):
    old = "2020-01-01T00:00:00.000+00:00"
    settled, doubtful, waiting = (seat_action("yext", p) for p in ("settled", "doubt", "wait"))
    with Journal(target) as journal:
        rows = [journal.row(settled, "started", None),
                journal.row(settled, "finished", "succeeded"),
                journal.row(doubtful, "started", None),
                journal.row(waiting, "started", None),
                journal.row(waiting, "finished", "pending", vendor_request_id="9")]
        journal.write_rows([(old, *row[1:]) for row in rows])
        journal.started(seat_action("yext", "recent"))
        assert journal.prune(parse_when("30d")) == 2
        assert {e.action().pool for e in journal.entries()} == {"doubt", "wait", "recent"}
        assert [e.action().pool for e in journal.in_doubt()] == ["doubt", "recent"]
        assert [e.action().pool for e in journal.pending()] == ["wait"]


def test_retention_setting_prunes_on_open(target, monkeypatch):
    with Journal(target) as journal:
        row = journal.row(seat_action("yext", "old"), "finished", "succeeded")
        journal.write_rows([("2020-01-01T00:00:00.000+00:00", *row[1:])])
        journal.finished(seat_action("yext", "new"), Outcome(status=OutcomeStatus.SUCCEEDED))
    monkeypatch.setenv("RECONCILER_JOURNAL_RETENTION_DAYS", "90")
    with open_journal(target) as journal:
        assert [e.action().pool for e in journal.entries()] == ["new"]


def test_open_journal_takes_the_url_from_the_environment(target, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_JOURNAL_URL", str(target))
    with open_journal(None) as journal:
        assert journal.target == target
        assert (journal.url or journal.path) == target


def test_a_newer_schema_is_refused_with_a_clear_message(target):
    with Journal(target) as journal, journal.store.write() as tx:
        tx.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(JournalSchemaError, match=r"schema version 99, newer than .* Upgrade"):
        Journal(target)


def test_default_journal_is_a_sqlite_file_needing_no_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILER_JOURNAL_URL", raising=False)
    with open_journal() as journal:
        assert journal.path == Path(".reconciler/journal.db") and journal.url is None
    assert (tmp_path / ".reconciler" / "journal.db").exists()
