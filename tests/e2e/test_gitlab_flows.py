"""The GitLab CI template, its jobs' scripts run as written against served simulators and
a local stand-in for the GitLab API (see `gitlab_runner.py` for what is stood in for)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox.serve import ServedSimulators
from tests.e2e.ci_repository import served_vendors, write_licenses
from tests.e2e.conftest import REPO
from tests.e2e.gitlab_runner import (
    TOKEN,
    FakeGitLab,
    JobResult,
    Project,
    Served,
    Variable,
    glob_matches,
    pip_calls,
    rule_matches,
    run_pipeline,
)

HEADLINE = re.compile(r"\*\*\d+ changes?: ")
"""The first line of a plan's Markdown: its one-line headline."""

TEMPLATE = REPO / "examples" / "gitlab-ci" / "reconciler.gitlab-ci.yml"
MARKER = "<!-- reconciler-plan -->\n"


@pytest.fixture
def served() -> Iterator[ServedSimulators]:
    with served_vendors() as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, served: ServedSimulators) -> Iterator[Project]:
    source = tmp_path / "source"
    exports = write_licenses(source, served)
    # Read and write credentials are the same sandbox values, scoped as the README says.
    variables = [Variable("RECONCILER_GITLAB_TOKEN", TOKEN),
                 Variable("RECONCILER_JOURNAL_URL", str(tmp_path / "shared-journal.db"))]
    for key, value in exports.items():
        variables.append(Variable(key, value, scope="reconciler-plan"))
        variables.append(Variable(key, value, scope="reconciler-apply", protected=True))
    gitlab = FakeGitLab()
    with Served(gitlab) as api:
        yield Project(source=source, storage=tmp_path / "gitlab", api_url=api.url,
                      gitlab=gitlab, variables=variables)


def merge_request(project: Project, head: str, mr: int = 3) -> JobResult:
    jobs = run_pipeline(TEMPLATE, project, source="merge_request_event", sha=head,
                        branch="change", mr=mr)
    assert list(jobs) == ["reconciler-plan"]
    return jobs["reconciler-plan"]


def merge(project: Project, head: str, merge_sha: str, mr: int = 3) -> JobResult:
    project.gitlab.merge_requests.append({"iid": mr, "state": "merged", "sha": head,
                                          "target_branch": "main",
                                          "merge_commit_sha": merge_sha})
    jobs = run_pipeline(TEMPLATE, project, source="push", sha=merge_sha, branch="main")
    assert list(jobs) == ["reconciler-apply"]
    return jobs["reconciler-apply"]


def by_hand(project: Project) -> JobResult:
    jobs = run_pipeline(TEMPLATE, project, source="web", sha="main-sha", branch="main")
    assert list(jobs) == ["reconciler-replan-apply"]
    return jobs["reconciler-replan-apply"]


def drift(project: Project) -> tuple[JobResult, str]:
    jobs = run_pipeline(TEMPLATE, project, source="schedule", sha="main-sha", branch="main")
    assert list(jobs) == ["reconciler-drift"]
    return jobs["reconciler-drift"], jobs["reconciler-drift"].output


def the_note(project: Project) -> str:
    (note,) = project.gitlab.notes[3]
    body: str = note["body"]
    assert body.startswith(MARKER)
    return body.removeprefix(MARKER)


def test_the_template_matches_the_gitlab_ci_schema():
    checker = shutil.which("check-jsonschema") or str(Path(sys.executable).parent /
                                                     "check-jsonschema")
    done = subprocess.run([checker, "--builtin-schema", "vendor.gitlab-ci", str(TEMPLATE)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_merge_request_plan_is_one_note_updated_then_replaced_by_the_error(project):
    first = merge_request(project, "c1")
    assert first.status == "success", first.output
    assert HEADLINE.match(the_note(project)) and "store-005" in the_note(project)
    (install,) = set(pip_calls(project))
    assert install.endswith("reconciler/archive/8afe51e87d9d3405750b15c37da74e750f717382"
                            ".tar.gz"), "pinned by commit, never the bare name"

    path = project.source / "licenses" / "yext.yaml"
    path.write_text(path.read_text().replace("entity: store-001\n", "entity: store-001x\n", 1))
    assert merge_request(project, "c2").status == "success"
    assert "store-001x" in the_note(project), "the same note, updated"

    path.write_text(path.read_text().replace("    limits:\n", "    limitz:\n", 1))
    broken = merge_request(project, "c3")
    assert broken.status == "failed"
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "limitz" in text)
    body = the_note(project)
    assert body.startswith("### reconciler plan failed\n")
    assert f"licenses/yext.yaml:{line}: unknown key 'limitz'" in body
    plan_jobs = [job for p in project.gitlab.pipelines for job in p["jobs"]]
    assert [j["status"] for j in plan_jobs] == ["success", "success", "failed"]
    assert plan_jobs[-1]["folder"] is None, "a failed plan leaves no plan to apply"


def test_merge_applies_the_reviewed_plan_and_converges(project):
    assert merge_request(project, "c1").status == "success"
    assert merge_request(project, "c2", mr=4).status == "success"  # another request's plan
    applied = merge(project, "c1", "m1")
    assert applied.status == "success", applied.output
    assert applied.workspace is not None
    reviewed = (applied.workspace / "reviewed" / "plan.json").read_text()
    first_plan = project.gitlab.pipelines[0]["jobs"][0]["folder"] / "plan.json"
    assert reviewed == first_plan.read_text(), "the plan of the merged request's head commit"
    job, output = drift(project)
    assert job.status == "success" and project.gitlab.issues == [], output


def test_the_drift_schedule_opens_one_issue_updates_it_and_closes_it(project):
    # The sandbox's seed differs from the desired state until the first apply.
    for _ in range(2):
        job, output = drift(project)
        assert job.status == "success", output
    (issue,) = project.gitlab.issues
    assert issue["state"] == "opened" and issue["labels"] == ["reconciler-drift"]
    assert "store-005" in issue["description"] and "/pipelines/" in issue["description"]
    assert by_hand(project).status == "success"
    job, output = drift(project)
    assert job.status == "success", output
    (issue,) = project.gitlab.issues
    assert issue["state"] == "closed" and issue["notes"][0].startswith("Back in sync")


def test_a_stale_plan_is_refused_and_a_pipeline_run_by_hand_replans_and_applies(
        project, served):
    assert merge_request(project, "c1").status == "success"
    yext: Any = served.simulators["yext"]
    yext.state["accounts"]["me"]["assignments"]["knowledge-pro"]["hq"] = None
    stale = merge(project, "c1", "m1")
    assert stale.status == "failed" and "refusing the saved plan" in stale.output
    retried = by_hand(project)
    assert retried.status == "success", retried.output


def test_a_commit_no_merge_request_reviewed_applies_nothing(project):
    direct = run_pipeline(TEMPLATE, project, source="push", sha="direct", branch="main")
    assert direct["reconciler-apply"].status == "failed"
    assert "nothing was reviewed, so nothing is applied" in direct["reconciler-apply"].output


def test_merge_request_jobs_never_get_the_protected_apply_credentials(project):
    project.variables = [v for v in project.variables if v.scope != "reconciler-plan"]
    denied = merge_request(project, "c1")
    assert denied.status == "failed"
    assert "YEXT_API_KEY" in the_note(project) or "COMMVAULT" in the_note(project)


def test_rules_this_runner_cannot_read_raise():
    assert rule_matches('$A == "x" && $B == $C', {"A": "x", "B": "1", "C": "1"})
    with pytest.raises(Exception, match="cannot evaluate"):
        rule_matches("$A =~ /x/", {})


def test_a_change_outside_the_desired_state_runs_no_plan_and_no_apply(project):
    """The template's `changes: [licenses/**/*]`, evaluated as GitLab does: a merge request
    or a push touching only other files runs neither job, and posts nothing."""
    assert run_pipeline(TEMPLATE, project, source="merge_request_event", sha="docs",
                        branch="docs", mr=4, changed=("README.md", "docs/licenses.md")) == {}
    assert project.gitlab.notes.get(4) is None
    assert run_pipeline(TEMPLATE, project, source="push", sha="docs-merged", branch="main",
                        changed=("README.md",)) == {}
    nested = run_pipeline(TEMPLATE, project, source="merge_request_event", sha="deep",
                          branch="deep", mr=5, changed=("licenses/team-a/yext.yaml",))
    assert list(nested) == ["reconciler-plan"]


def test_changes_globs_match_as_gitlab_reads_them():
    assert glob_matches("licenses/**/*", "licenses/yext.yaml")
    assert glob_matches("licenses/**/*", "licenses/a/b/c.yaml")
    assert not glob_matches("licenses/**/*", "licenses.yaml")
    assert not glob_matches("licenses/*", "licenses/a/b.yaml")
    assert not glob_matches("licenses/**/*", "other/licenses/x.yaml")
