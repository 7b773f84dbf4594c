"""The GitHub Actions templates: schema-valid, zizmor-clean, and the apply step refuses
a stale plan exactly as written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.pipeline import load_desired
from reconciler.sandbox.serve import ServedSimulators, environment_for
from reconciler.sandbox.yext import YextSimulator
from tests.e2e.conftest import EXAMPLES, REPO

TEMPLATES = sorted((REPO / "examples" / "github-actions").glob("*.yml"))
WORKFLOWS = [*TEMPLATES, REPO / ".github" / "workflows" / "ci.yml"]


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is installed by the dev extras"
    return found


def test_there_are_three_templates():
    assert [t.name for t in TEMPLATES] == [
        "reconciler-apply.yml", "reconciler-drift.yml", "reconciler-plan.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_workflow_matches_the_github_workflow_schema(workflow):
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(workflow)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_medium_or_high():
    result = subprocess.run([tool("zizmor"), "--offline", "--format", "json",
                             *map(str, WORKFLOWS)], capture_output=True, text=True, check=False)
    findings = json.loads(result.stdout or "[]")
    serious = [(f["ident"], f["determinations"]["severity"]) for f in findings
               if f["determinations"]["severity"] in {"Medium", "High"}]
    assert serious == []


def test_secrets_reach_reconciler_only_through_env_and_actions_are_pinned():
    for template in TEMPLATES:
        text = template.read_text()
        for line in text.splitlines():
            if "uses:" in line:
                ref = line.split("@", 1)[1].split()[0]
                assert len(ref) == 40, f"{template.name}: {line.strip()} is not pinned"
        document = yaml.safe_load(text)
        for job in document["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), f"{template.name}: template injection"


def _apply_step() -> str:
    document = yaml.safe_load((REPO / "examples" / "github-actions" /
                               "reconciler-apply.yml").read_text())
    steps = document["jobs"]["apply"]["steps"]
    step = next(s for s in steps if s.get("name") == "Apply exactly the reviewed plan")
    assert step["env"]["PLANFILE"] == "reviewed/plan.json"
    return str(step["run"])


def test_the_apply_step_fails_the_job_on_a_stale_plan(workspace, cli):
    desired = workspace / "licenses"
    desired.mkdir()
    shutil.copy(EXAMPLES / "yext.yaml", desired / "yext.yaml")
    simulator = YextSimulator()
    with ServedSimulators({"yext": simulator}) as served:
        env = environment_for(load_desired([str(desired)]), served.urls)
        assert cli("plan", "licenses", "--out", "reviewed/plan.json", env=env).exit_code == 0
        simulator.state["accounts"]["me"]["assignments"]["knowledge-pro"]["hq"] = None
        job = subprocess.run(
            ["bash", "-e", "-c", _apply_step()], cwd=workspace, capture_output=True, text=True,
            env={**os.environ, **env, "PLANFILE": "reviewed/plan.json",
                 "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}, check=False)
    assert job.returncode == 1
    assert "stale plan" in job.stderr + job.stdout
