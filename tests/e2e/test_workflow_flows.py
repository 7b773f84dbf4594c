"""The GitHub Actions templates, run step by step against served simulators.

Each test plays a repository's life through the templates as written (see
`workflow_runner.py` for what is executed and what is stood in for): pull-request plans
and their one comment, the apply on merge, the `workflow_dispatch` retry after a stale
plan, and the drift schedule's one issue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox.serve import ServedSimulators
from tests.e2e.ci_repository import served_vendors, write_licenses
from tests.e2e.conftest import REPO
from tests.e2e.workflow_runner import Environment, JobResult, Repository, run_workflow

HEADLINE = re.compile(r"\*\*\d+ changes?: ")
"""The first line of a plan's Markdown: its one-line headline."""

TEMPLATES = REPO / "examples" / "github-actions"
PLAN, APPLY, DRIFT = (TEMPLATES / f"reconciler-{verb}.yml" for verb in ("plan", "apply", "drift"))
MARKER = "<!-- reconciler-plan -->\n"


@pytest.fixture
def served() -> Iterator[ServedSimulators]:
    with served_vendors() as running:
        yield running


@pytest.fixture
def repo(tmp_path: Path, served: ServedSimulators) -> Repository:
    """A repository holding licenses/ (the examples, retry limits shortened for tests)."""
    source = tmp_path / "source"
    exports = write_licenses(source, served)
    urls = {k: v for k, v in exports.items() if k.endswith("_BASE_URL")}
    secrets = {k: v for k, v in exports.items() if k not in urls}
    # As the templates document: read-only and write credentials in two environments
    # (the sandbox has one set of both), the apply one for `main` only.
    environments = {"reconciler-plan": Environment(secrets, urls),
                    "reconciler-apply": Environment(dict(secrets), dict(urls), ("main",))}
    return Repository(source=source, storage=tmp_path / "github", environments=environments)


def pull_request(repo: Repository, head: str, number: int = 7) -> JobResult:
    event = {"pull_request": {"number": number, "head": {"sha": head}}}
    return run_workflow(PLAN, repo, event_name="pull_request", event=event, sha=head,
                        branch="change")


def merge(repo: Repository, head: str, merge_sha: str, number: int = 7) -> JobResult:
    repo.world["pulls"].append({"number": number, "merged_at": "2026-12-04T10:00:00Z",
                                "base": {"ref": "main"}, "head": {"sha": head},
                                "commits": [merge_sha]})
    return run_workflow(APPLY, repo, event_name="push", sha=merge_sha)


def drift(repo: Repository) -> JobResult:
    return run_workflow(DRIFT, repo, event_name="schedule", sha="main")


def edit(repo: Repository, provider: str, old: str, new: str) -> None:
    path = repo.source / "licenses" / f"{provider}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def plan_comment(repo: Repository) -> str:
    (comment,) = repo.bot_comments(7)
    body: str = comment["body"]
    assert body.startswith(MARKER)
    return body.removeprefix(MARKER)


def test_a_pull_request_plan_posts_one_comment_updated_and_replaced_by_an_error(repo):
    first = pull_request(repo, "c1")
    assert first.succeeded, first.log
    assert HEADLINE.match(plan_comment(repo))
    assert "store-005" in plan_comment(repo)
    assert len(HEADLINE.findall(first.summary)) == 1
    assert [a.name for a in repo.artifacts] == ["reconciler-plan-c1"]

    edit(repo, "yext", "  - entity: store-001\n", "  - entity: store-001x\n")
    second = pull_request(repo, "c2")
    assert second.succeeded, second.log
    assert "store-001x" in plan_comment(repo), "the same comment, updated"

    edit(repo, "yext", "    limits:\n", "    limitz:\n")
    broken = pull_request(repo, "c3")
    assert not broken.succeeded
    assert broken.step("Fail when the plan failed").outcome == "failure"
    assert broken.step("Keep the reviewed plan").outcome == "skipped"
    body = plan_comment(repo)
    assert body.startswith("### reconciler plan failed\n"), "yesterday's plan is gone"
    lines = (repo.source / "licenses" / "yext.yaml").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "limitz" in text)
    assert f"```text\nlicenses/yext.yaml:{line}: unknown key 'limitz'" in body
    assert "store-001x" not in body
    assert [a.name for a in repo.artifacts] == ["reconciler-plan-c1", "reconciler-plan-c2"]


def test_merge_applies_the_reviewed_plan_and_the_schedule_then_finds_no_drift(repo):
    assert pull_request(repo, "c1").succeeded
    applied = merge(repo, "c1", "m1")
    assert applied.succeeded, applied.log
    assert applied.step("Plan the current main and apply that plan").outcome == "skipped"
    reviewed = (applied.workspace / "reviewed" / "plan.json").read_text()
    first_artifact = repo.artifacts[0].folder / "plan.json"
    assert reviewed == first_artifact.read_text(), "the plan of the merged head commit"
    assert HEADLINE.search(applied.summary)
    assert [a.name for a in repo.artifacts][-1] == "reconciler-journal"

    checked = drift(repo)
    assert checked.succeeded, checked.log
    assert checked.step("Check for drift").outputs == {"code": "0"}
    assert repo.world["issues"] == []


def test_a_push_without_a_merged_pull_request_applies_nothing(repo):
    direct = run_workflow(APPLY, repo, event_name="push", sha="direct-push")
    assert not direct.succeeded
    assert "nothing is applied" in direct.step("Find the merged pull request's head commit").output
    assert direct.step("Download the reviewed plan").outcome == "skipped"
    assert direct.step("Apply exactly the reviewed plan").outcome == "skipped"


def test_a_stale_plan_is_refused_and_workflow_dispatch_replans_and_applies(repo, served):
    assert pull_request(repo, "c1").succeeded
    yext: Any = served.simulators["yext"]
    yext.state["accounts"]["me"]["assignments"]["knowledge-pro"]["hq"] = None
    stale = merge(repo, "c1", "m1")
    assert not stale.succeeded
    refused = stale.step("Apply exactly the reviewed plan")
    assert refused.outcome == "failure" and "refusing the saved plan" in refused.output
    assert stale.step("Keep the journal").outcome == "success"

    retried = run_workflow(APPLY, repo, event_name="workflow_dispatch", sha="m1")
    assert retried.succeeded, retried.log
    assert retried.step("Apply exactly the reviewed plan").outcome == "skipped"
    assert HEADLINE.search(retried.summary), "the fresh plan is shown before applying"
    assert "refusing" not in retried.step("Plan the current main and apply that plan").output


def test_the_drift_schedule_opens_one_issue_updates_it_and_closes_it(repo, served):
    # The sandbox's seed differs from the desired state until the first apply.
    for _ in range(2):
        drifted = drift(repo)
        assert drifted.succeeded, drifted.log
        assert drifted.step("Check for drift").outputs == {"code": "2"}
    (issue,) = repo.world["issues"]
    assert issue["state"] == "open" and "store-005" in issue["body"]
    assert "actions/runs/" in issue["body"]
    assert run_workflow(APPLY, repo, event_name="workflow_dispatch", sha="m1").succeeded
    in_sync = drift(repo)
    assert in_sync.succeeded and in_sync.step("Check for drift").outputs == {"code": "0"}
    (issue,) = repo.world["issues"]
    assert issue["state"] == "closed"


def test_the_apply_environment_is_refused_to_other_branches(repo):
    elsewhere = run_workflow(APPLY, repo, event_name="workflow_dispatch", sha="b1", branch="x")
    assert not elsewhere.succeeded and "not allowed to deploy" in elsewhere.log
    assert not (elsewhere.workspace / "licenses").exists(), "no step ran"


def test_an_error_fails_the_drift_job_and_leaves_the_issue_alone(repo):
    repo.environments["reconciler-plan"].secrets["YEXT_API_KEY"] = "wrong"
    failed = drift(repo)
    assert not failed.succeeded
    assert failed.step("Open, update or close the drift issue").outcome == "skipped"
    assert repo.world["issues"] == []


def test_the_postgresql_variant_plans_applies_and_converges_on_one_shared_journal(repo):
    """Its steps as written; the journal "DSN" is a SQLite file every run shares (the
    `--journal`/RECONCILER_JOURNAL_URL target accepts both), standing in for PostgreSQL."""
    shared = str(repo.storage.parent / "shared-journal.db")
    for environment in repo.environments.values():
        environment.secrets["RECONCILER_JOURNAL_URL"] = shared
    variant = TEMPLATES / "postgresql"
    event = {"pull_request": {"number": 7, "head": {"sha": "c1"}}}
    planned = run_workflow(variant / "reconciler-plan.yml", repo, event_name="pull_request",
                           event=event, sha="c1", branch="change")
    assert planned.succeeded, planned.log
    assert HEADLINE.match(plan_comment(repo))
    repo.world["pulls"].append({"number": 7, "merged_at": "2026-12-04T10:00:00Z",
                                "base": {"ref": "main"}, "head": {"sha": "c1"},
                                "commits": ["m1"]})
    applied = run_workflow(variant / "reconciler-apply.yml", repo, event_name="push", sha="m1")
    assert applied.succeeded, applied.log
    assert [a.name for a in repo.artifacts] == ["reconciler-plan-c1"], "no journal artifact"
    checked = run_workflow(variant / "reconciler-drift.yml", repo, event_name="schedule",
                           sha="m1")
    assert checked.step("Check for drift").outputs == {"code": "0"}, checked.log
    assert Path(shared).stat().st_size > 0
