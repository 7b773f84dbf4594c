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
