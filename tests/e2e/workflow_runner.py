"""Runs a GitHub Actions workflow template's job here, step by step, as a runner would.

GitHub Actions itself cannot run in a test, but the templates' logic is in their
steps: `run:` scripts (bash, in order, with the environment files GitHub provides),
`if:` conditions, `${{ }}` expressions, and a few `uses:` actions. This runner executes
exactly those, so a template that is wrong fails a test:

- `run:` steps: bash with `-e` (`shell: bash` adds `--noprofile --norc -o pipefail`),
  `env:` merged workflow < job < GITHUB_ENV < step, `working-directory`, and the files
  GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY read back after each step.
- `${{ }}`: the contexts `secrets`, `vars`, `env`, `steps`, `github`, `inputs` and the
  functions `always()`, `success()`, `failure()`, `cancelled()`, with `==`, `!=`, `&&`,
  `||`, `!` and parentheses. Anything else (another context, another function) raises
  `UnsupportedExpression`: an expression this runner does not know is never passed through.
- `uses:` stand-ins: `actions/checkout` copies the test repository into the workspace;
  this repository's action runs ITS OWN steps from action.yml, except its pip-install
  step (id `install`), which is replaced by checking that this venv's `reconciler` is
  the one on PATH (a real install of the checkout takes a minute and the package index);
  `actions/setup-python` is a no-op (this venv's Python is on PATH);
  `actions/upload-artifact` / `dawidd6/action-download-artifact` use a folder per
  artifact; `actions/github-script` runs the script under Node against the in-memory
  GitHub of `tests/e2e/test_gitops_scripts.py`. Any other action raises.
- deployment `environment:`: its secrets and vars join the repository's; a job on a
  branch the environment does not allow (or from a pull request) fails before any step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import REPO
from tests.e2e.test_gitops_scripts import HARNESS

THIS_ACTION = "license-reconciler/reconciler"
STEP_TIMEOUT = 180


class UnsupportedExpression(Exception):
    """The template uses an expression or action this runner does not evaluate."""


@dataclass
class Artifact:
    workflow: str
    name: str
    commit: str
    branch: str
    folder: Path


@dataclass
class Environment:
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    branches: tuple[str, ...] | None = None
    """Deployment branches allowed (None: any, pull requests included)."""


@dataclass
class Repository:
    """What GitHub keeps between runs: the code, secrets, artifacts, comments and issues."""

    source: Path
    """The repository's files at the commit being run (checkout copies them)."""
    storage: Path
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    """Deployment environments: a job naming one gets its secrets and vars, on its branches."""
    artifacts: list[Artifact] = field(default_factory=list)
    world: dict[str, Any] = field(
        default_factory=lambda: {"comments": [], "issues": [], "pulls": []})
    runs: int = 0

    def bot_comments(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.world["comments"]
                if c["issue_number"] == number and c["user"]["type"] == "Bot"]


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure or skipped
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    steps: list[StepResult]
    workspace: Path
    summary: str

    @property
    def succeeded(self) -> bool:
        return all(step.outcome != "failure" for step in self.steps)

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name}: {s.outcome}\n{s.output}" for s in self.steps)


# ---------------------------------------------------------------- expressions

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))"
                    r"|(?P<num>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*(?:\(\))?))")
STATUS_FUNCTIONS = ("always()", "success()", "failure()", "cancelled()")


def _tokens(expression: str) -> list[tuple[str, str]]:
    found, position = [], 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise UnsupportedExpression(f"cannot read {expression!r} at {text[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class Evaluator:
    """The expression language, as far as the templates use it."""

    def __init__(self, contexts: dict[str, Any], job_failed: bool) -> None:
        self.contexts = contexts
        self.job_failed = job_failed

    def value(self, expression: str) -> Any:
        self._tokens = _tokens(expression)
        self._at = 0
        result = self._or()
        if self._at != len(self._tokens):
            raise UnsupportedExpression(f"cannot read {expression!r}")
        return result

    def condition(self, expression: str) -> bool:
        text = expression.strip()
        if text.startswith("${{") and text.endswith("}}"):
            text = text[3:-2]
        if not any(status in text for status in STATUS_FUNCTIONS):
            text = f"success() && ({text})"
        return bool(self.value(text))

    def interpolate(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            value = self.value(match.group(1))
            return "" if value is None else str(value)

        return re.sub(r"\$\{\{(.*?)\}\}", one, text)

    def _peek(self) -> str | None:
        return self._tokens[self._at][1] if self._at < len(self._tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._next()
            right = self._and()
            left = left or right
        return left

    def _and(self) -> Any:
        left = self._compare()
        while self._peek() == "&&":
            self._next()
            right = self._compare()
            left = left and right
        return left

    def _compare(self) -> Any:
        left = self._unary()
        while self._peek() in {"==", "!="}:
            operator = self._next()[1]
            right = self._unary()
            same = _loose(left) == _loose(right)
            left = same if operator == "==" else not same
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._next()
            return not self._unary()
        if self._peek() == "(":
            self._next()
            inner = self._or()
            if self._next()[1] != ")":
                raise UnsupportedExpression("unbalanced parentheses")
            return inner
        kind, text = self._next()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return int(text)
        if text in {"true", "false"}:
            return text == "true"
        if text.endswith("()"):
            return self._function(text)
        return self._lookup(text)

    def _function(self, name: str) -> bool:
        if name == "always()":
            return True
        if name == "success()":
            return not self.job_failed
        if name == "failure()":
            return self.job_failed
        if name == "cancelled()":
            return False
        raise UnsupportedExpression(f"function {name} is not evaluated by this runner")

    def _lookup(self, path: str) -> Any:
        context, *keys = path.split(".")
        if context not in self.contexts:
            raise UnsupportedExpression(f"context {context!r} ({path}) is not evaluated")
        value: Any = self.contexts[context]
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value


def _loose(value: Any) -> Any:
    """GitHub compares strings case-insensitively and null as ''."""
    if value is None:
        return ""
    return value.lower() if isinstance(value, str) else value


# ---------------------------------------------------------------- the runner


class WorkflowRun:
    """One run of a workflow's single job, in a fresh workspace."""

    def __init__(self, template: Path, repo: Repository, *, event_name: str,
                 event: dict[str, Any], sha: str, branch: str = "main") -> None:
        self.document = yaml.safe_load(template.read_text())
        (self.job,) = self.document["jobs"].values()
        self.workflow = template.name
        self.repo = repo
        repo.runs += 1
        self.number = repo.runs
        self.root = repo.storage / f"run-{self.number}"
        self.workspace = self.root / "workspace"
        self.temp = self.root / "temp"
        self.workspace.mkdir(parents=True)
        self.temp.mkdir()
        self.summary = self.root / "summary.md"
        self.summary.touch()
        self.sha, self.branch = sha, branch
        self.github: dict[str, Any] = {"event_name": event_name, "event": event, "sha": sha,
                       "ref": f"refs/heads/{branch}", "workspace": str(self.workspace),
                       "repository": "acme/licenses", "run_id": str(1000 + self.number),
                       "action_path": ""}
        self.exported_env: dict[str, str] = {}
        self.paths: list[str] = []
        self.steps: dict[str, dict[str, Any]] = {}
        self.failed = False
        self.secrets, self.vars = dict(repo.secrets), dict(repo.vars)
        self.refused = ""
        if "environment" in self.job:
            name = str(self.job["environment"])
            environment = repo.environments.get(name, Environment())
            if environment.branches is not None and (
                    event_name.startswith("pull_request") or branch not in environment.branches):
                self.refused = f"Branch {branch!r} is not allowed to deploy to {name}"
            self.secrets.update(environment.secrets)
            self.vars.update(environment.vars)

    def base_env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        return {
            "PATH": os.pathsep.join([*reversed(self.paths), venv_bin,
                                     os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": str(self.root), "LANG": "C.UTF-8", "CI": "true",
            "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_EVENT_NAME": self.github["event_name"], "GITHUB_SHA": self.sha,
            "GITHUB_REF": self.github["ref"], "GITHUB_RUN_ID": self.github["run_id"],
            "GITHUB_REPOSITORY": self.github["repository"],
            "GITHUB_SERVER_URL": "https://github.com", "RUNNER_TEMP": str(self.temp),
            "GITHUB_STEP_SUMMARY": str(self.summary),
        }

    def evaluator(self, inputs: dict[str, Any] | None = None,
                  steps: dict[str, Any] | None = None) -> Evaluator:
        env = {**self.document.get("env", {}), **self.job.get("env", {}), **self.exported_env}
        return Evaluator({"secrets": self.secrets, "vars": self.vars, "env": env,
                          "github": self.github, "steps": self.steps if steps is None else steps,
                          "inputs": inputs or {}}, self.failed)

    def run(self) -> JobResult:
        if self.refused:  # GitHub fails the job before any step when the branch may not deploy
            return JobResult([StepResult("Deployment protection", "failure", self.refused)],
                             self.workspace, "")
        results = []
        for index, step in enumerate(self.job["steps"]):
            results.append(self.step(step, index, self.steps))
        return JobResult(results, self.workspace, self.summary.read_text())

    def step(self, step: dict[str, Any], index: int, record: dict[str, Any],
             inputs: dict[str, Any] | None = None) -> StepResult:
        name = str(step.get("name") or step.get("uses") or f"step {index}")
        evaluator = self.evaluator(inputs, record)
        if not evaluator.condition(str(step.get("if", "success()"))):
            if "id" in step:
                record[step["id"]] = {"outputs": {}, "outcome": "skipped"}
            return StepResult(name, "skipped")
        env = {key: evaluator.interpolate(str(value))
               for key, value in {**self.document.get("env", {}), **self.job.get("env", {})}
               .items()}
        env.update(self.exported_env)
        env.update({key: evaluator.interpolate(str(value))
                    for key, value in (step.get("env") or {}).items()})
        if "run" in step:
            result = self.script(name, step, env)
        else:
            uses = str(step["uses"])
            with_ = {key: evaluator.interpolate(str(value)) if isinstance(value, str) else value
                     for key, value in (step.get("with") or {}).items()}
            result = self.action(name, step, uses, with_, env)
        if result.outcome == "failure":
            self.failed = True
        if "id" in step:
            record[step["id"]] = {"outputs": result.outputs, "outcome": result.outcome}
        return result

    def script(self, name: str, step: dict[str, Any], env: dict[str, str]) -> StepResult:
        files = {kind: self.temp / f"{kind}-{len(self.steps)}-{id(step)}"
                 for kind in ("output", "env", "path")}
        for path in files.values():
            path.write_text("")
        script = self.temp / f"script-{id(step)}.sh"
        script.write_text(str(step["run"]))
        shell = (["bash", "--noprofile", "--norc", "-eo", "pipefail"]
                 if step.get("shell") == "bash" else ["bash", "-e"])
        cwd = self.workspace / str(step.get("working-directory", "."))
        done = subprocess.run(
            [*shell, str(script)], cwd=cwd, capture_output=True, text=True, check=False,
            timeout=STEP_TIMEOUT,
            env={**self.base_env(), **env, "GITHUB_OUTPUT": str(files["output"]),
                 "GITHUB_ENV": str(files["env"]), "GITHUB_PATH": str(files["path"])})
        self.exported_env.update(_environment_file(files["env"].read_text()))
        self.paths += [line for line in files["path"].read_text().splitlines() if line]
        return StepResult(name, "success" if done.returncode == 0 else "failure",
                          done.stdout + done.stderr, _environment_file(files["output"].read_text()))

    def action(self, name: str, step: dict[str, Any], uses: str, with_: dict[str, Any],
               env: dict[str, str]) -> StepResult:
        action = uses.split("@", 1)[0]
        if action == "actions/checkout":
            shutil.copytree(self.repo.source, self.workspace, dirs_exist_ok=True)
            return StepResult(name, "success")
        if action == "actions/setup-python":
            return StepResult(name, "success", f"(stand-in) Python {with_['python-version']}")
        if action == THIS_ACTION:
            return self.composite(name, with_)
        if action == "actions/upload-artifact":
            return self.upload(name, with_)
        if action == "dawidd6/action-download-artifact":
            return self.download(name, with_)
        if action == "actions/github-script":
            return self.github_script(name, with_, env)
        raise UnsupportedExpression(f"no stand-in for the action {uses}")

    def composite(self, name: str, with_: dict[str, Any]) -> StepResult:
        """This repository's action.yml: its own steps, its install step stood in for."""
        action = yaml.safe_load((REPO / "action.yml").read_text())
        inputs = {key: str(with_.get(key, spec.get("default", "")))
                  for key, spec in action["inputs"].items()}
        unknown = set(with_) - set(inputs)
        if unknown:
            return StepResult(name, "failure", f"unexpected inputs {sorted(unknown)}")
        saved_path, self.github["action_path"] = self.github["action_path"], str(REPO)
        inner: dict[str, Any] = {}
        log = []
        try:
            for index, step in enumerate(action["runs"]["steps"]):
                if step.get("id") == "install":
                    result = self.stand_in_install(step)
                else:
                    result = self.step(step, index, inner, inputs)
                log.append(f"[{result.name}: {result.outcome}] {result.output}")
                if result.outcome == "failure":
                    return StepResult(name, "failure", "\n".join(log))
            evaluator = self.evaluator(inputs, inner)
            outputs = {key: evaluator.interpolate(str(spec["value"]))
                       for key, spec in action["outputs"].items()}
        finally:
            self.github["action_path"] = saved_path
        return StepResult(name, "success", "\n".join(log), outputs)

    def stand_in_install(self, step: dict[str, Any]) -> StepResult:
        """`pip install "$ACTION_PATH"` stood in for: this venv already holds this checkout."""
        assert step["env"]["ACTION_PATH"] == "${{ github.action_path }}"
        done = subprocess.run(
            ["python", "-c", "import reconciler, sys; print(reconciler.__file__)"],
            capture_output=True, text=True, check=False, env=self.base_env())
        installed = done.returncode == 0 and done.stdout.startswith(str(REPO / "reconciler"))
        return StepResult(str(step["name"]), "success" if installed else "failure",
                          f"(stand-in) reconciler importable from {done.stdout.strip()}")

    def upload(self, name: str, with_: dict[str, Any]) -> StepResult:
        source = self.workspace / str(with_["path"])
        if not source.exists():
            missing = with_.get("if-no-files-found", "warn")
            return StepResult(name, "failure" if missing == "error" else "success",
                              f"no files at {with_['path']}")
        folder = self.repo.storage / "artifacts" / f"{self.number}-{with_['name']}"
        folder.mkdir(parents=True)
        shutil.copy(source, folder / source.name)
        self.repo.artifacts.append(Artifact(self.workflow, str(with_["name"]), self.sha,
                                            self.branch, folder))
        return StepResult(name, "success", f"uploaded {with_['name']}")

    def download(self, name: str, with_: dict[str, Any]) -> StepResult:
        found = [a for a in self.repo.artifacts
                 if a.workflow == with_["workflow"] and a.name == with_["name"]
                 and (not with_.get("commit") or a.commit == with_["commit"])
                 and (not with_.get("branch") or a.branch == with_["branch"])]
        if not found:
            missing = with_.get("if_no_artifact_found", "fail")
            return StepResult(name, "failure" if missing == "fail" else "success",
                              f"no artifact {with_['name']}")
        target = self.workspace / str(with_.get("path", "."))
        shutil.copytree(found[-1].folder, target, dirs_exist_ok=True)
        return StepResult(name, "success", f"downloaded {with_['name']}")

    def github_script(self, name: str, with_: dict[str, Any],
                      env: dict[str, str]) -> StepResult:
        node = shutil.which("node")
        assert node, "Node.js runs the github-script steps (it is on every GitHub runner)"
        folder = self.temp / f"script-{len(self.repo.world['comments'])}-{id(with_)}"
        folder.mkdir()
        world = {**self.repo.world, "context": {
            "repo": {"owner": "acme", "repo": "licenses"}, "payload": self.github["event"],
            "sha": self.sha, "eventName": self.github["event_name"],
            "serverUrl": "https://github.com", "runId": int(self.github["run_id"])}}
        (folder / "harness.js").write_text(HARNESS)
        (folder / "world.json").write_text(json.dumps(world))
        (folder / "script.js").write_text(str(with_["script"]))
        done = subprocess.run([node, str(folder / "harness.js"), str(folder / "world.json"),
                               str(folder / "script.js")], cwd=self.workspace, text=True,
                              capture_output=True, env=env, check=False, timeout=60)
        if done.returncode != 0:
            return StepResult(name, "failure", done.stderr)
        after = json.loads(done.stdout)
        for key in ("comments", "issues", "pulls"):
            self.repo.world[key] = after[key]
        result = after.get("result")
        if with_.get("result-encoding") != "string":
            result = json.dumps(result)
        outputs = {"result": "" if result is None else str(result)}
        if "failed" in after:
            return StepResult(name, "failure", str(after["failed"]), outputs)
        return StepResult(name, "success", json.dumps(after["calls"]), outputs)


def _environment_file(text: str) -> dict[str, str]:
    """`NAME=value` lines and `NAME<<DELIMITER` blocks, as GITHUB_OUTPUT/GITHUB_ENV hold."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def run_workflow(template: Path, repo: Repository, *, event_name: str,
                 event: dict[str, Any] | None = None, sha: str, branch: str = "main") -> JobResult:
    """Runs the template's job once against `repo`; GitHub's side effects land in `repo`."""
    return WorkflowRun(template, repo, event_name=event_name, event=event or {}, sha=sha,
                       branch=branch).run()
