"""`reconciler journal` on either backend: filters, JSON-lines export, retention."""

from __future__ import annotations

import json

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.journal import Journal
from tests.journal.actions import seat_action


def seed(target) -> None:
    with Journal(target) as journal:
        rows = []
        for day, provider in [("2026-01-10", "yext"), ("2026-02-10", "uipath"),
                              ("2026-03-10", "yext")]:
            row = journal.row(seat_action(provider, f"pool-{day}"), "finished", "succeeded")
            rows.append((f"{day}T12:00:00.000+00:00", *row[1:]))
        journal.write_rows(rows)


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["journal", *args], env=env, catch_exceptions=False)


def test_export_filters_by_time_and_provider_as_json_lines(target):
    seed(target)
    result = run("--journal", str(target), "--json", "--since", "2026-02-01",
                 "--provider", "yext")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["provider"], r["pool"], r["subject"]) for r in records] == [
        ("yext", "pool-2026-03-10", "entity:store-001")]
    assert {"git_commit", "ci_run", "actor", "plan_digest", "run_id"} <= set(records[0])


def test_journal_url_from_the_environment_and_prune(target):
    seed(target)
    env = {"RECONCILER_JOURNAL_URL": str(target)}
    pruned = run("--prune-before", "2026-03-01", env=env)
    assert pruned.exit_code == 0, pruned.output
    assert "pruned 2 entries" in pruned.output
    listed = run("--until", "2026-12-31", env=env)
    assert [line.split()[4] for line in listed.output.splitlines()] == [
        "yext:assign:pool-2026-03-10:store-001"]


def test_bad_date_is_a_clear_error(target):
    seed(target)
    result = run("--journal", str(target), "--since", "last tuesday")
    assert result.exit_code == 1
    assert "cannot read 'last tuesday' as a date" in result.output


def test_unreachable_database_names_it_without_the_password(pg_server):
    url = f"postgresql://reconciler:pw-not-printed@127.0.0.1:{pg_server.port}/missing"
    result = run("--journal", url)
    assert result.exit_code == 1
    assert "pw-not-printed" not in result.output and "reconciler:***@" in result.output


def left_in_doubt(target) -> list[str]:
    """Three calls a crash left in doubt (two yext, one uipath); returns their ids."""
    actions = [seat_action("yext", "pack-a"), seat_action("yext", "pack-b"),
               seat_action("uipath", "org-a")]
    with Journal(target) as journal:
        for action in actions:
            journal.started(action)
    return [action.id for action in actions]


def verdicts(target) -> dict[str, str | None]:
    """Action id → the outcome of its latest row (None: still in doubt)."""
    with Journal(target) as journal:
        return {e.action_id: e.outcome for e in journal.latest_per_action().values()}


def test_resolve_settles_several_ids_in_one_run(target):
    first, second, third = left_in_doubt(target)
    result = run("--journal", str(target), "--resolve", first, "done",
                 "--resolve", second, "not-done")
    assert result.exit_code == 0, result.output
    assert f"{first}: recorded as done" in result.output
    assert verdicts(target) == {first: "succeeded", second: "not-done", third: None}


def test_resolve_all_in_doubt_settles_every_call_of_the_chosen_provider(target):
    first, second, third = left_in_doubt(target)
    result = run("--journal", str(target), "--resolve-all-in-doubt", "not-done",
                 "--provider", "yext")
    assert result.exit_code == 0, result.output
    assert verdicts(target) == {first: "not-done", second: "not-done", third: None}
    everything = run("--journal", str(target), "--resolve-all-in-doubt", "done")
    assert everything.exit_code == 0, everything.output
    assert verdicts(target)[third] == "succeeded"
    with Journal(target) as journal:
        assert journal.in_doubt() == []
    again = run("--journal", str(target), "--resolve-all-in-doubt", "done")
    assert again.exit_code == 0 and "nothing in doubt to settle" in again.output


def test_one_unknown_id_settles_none_of_the_others(target):
    first, second, third = left_in_doubt(target)
    result = run("--journal", str(target), "--resolve", first, "done",
                 "--resolve", "yext:assign:no-such:store-001", "done")
    assert result.exit_code == 1
    assert "yext:assign:no-such:store-001 is neither in doubt nor pending" in result.output
    assert verdicts(target) == {first: None, second: None, third: None}


def test_contradicting_verdicts_are_refused(target):
    first, _, _ = left_in_doubt(target)
    result = run("--journal", str(target), "--resolve-all-in-doubt", "done",
                 "--resolve", first, "not-done")
    assert result.exit_code == 1
    assert f"{first} is given both `done` and `not-done`" in result.output
    with Journal(target) as journal:
        assert len(journal.in_doubt()) == 3
