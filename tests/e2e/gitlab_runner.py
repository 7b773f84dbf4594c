"""Runs the GitLab CI template's jobs here, with a small local stand-in for the GitLab API.

What runs as written: the workflow and job `rules:` (`if:` with `==`, `&&`, `||` over
`$VARIABLES` and "strings"; `changes:` globs matched against the files the pipeline's
push or merge request changed, as GitLab does: `**` spans directories, `*` stays within
one, and a pipeline with no push, a schedule or a manual run, always matches),
`before_script:` + `script:` in one bash (`set -eo pipefail`, as GitLab's bash shell
does), the template's `curl` calls, artifacts (a folder per job, kept on success or
`when: always`), stages in order, CI/CD variables scoped to the job's environment and,
when Protected, only on the default branch. Stood in for: the `pip install` line (a
`python` shim on PATH records it and runs nothing; this venv's `reconciler` is on PATH)
and GitLab itself (`FakeGitLab`, the endpoints the template calls, answering like
GitLab's REST API v4). Unknown rule syntax raises.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

PROJECT = 1
USER = {"id": 99, "username": "reconciler-bot"}
TOKEN = "glpat-test-token"


@dataclass
class Variable:
    key: str
    value: str
    scope: str = "*"
    protected: bool = False


@dataclass
class FakeGitLab:
    """The project's merge requests, notes, pipelines, jobs, artifacts and issues."""

    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    merge_requests: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 500

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def answer(self, method: str, path: str, query: dict[str, list[str]],
               body: dict[str, Any]) -> tuple[int, Any]:
        self.calls.append((method, path))
        if path == "/api/v4/user":
            return 200, USER
        prefix = f"/api/v4/projects/{PROJECT}"
        if not path.startswith(prefix):
            return 404, {"message": "404 Project Not Found"}
        route = path.removeprefix(prefix)
        if match := re.fullmatch(r"/merge_requests/(\d+)/notes(?:/(\d+))?", route):
            notes = self.notes.setdefault(int(match[1]), [])
            if method == "GET":
                return 200, notes
            if method == "POST":
                notes.append({"id": self.new_id(), "body": body["body"], "author": USER})
                return 201, notes[-1]
            note = next(n for n in notes if n["id"] == int(match[2]))
            note["body"] = body["body"]
            return 200, note
        if match := re.fullmatch(r"/repository/commits/(\w+)/merge_requests", route):
            return 200, [m for m in self.merge_requests if m["merge_commit_sha"] == match[1]]
        if match := re.fullmatch(r"/merge_requests/(\d+)/pipelines", route):
            found = [p for p in self.pipelines if p["mr"] == int(match[1])]
            return 200, [{"id": p["id"], "sha": p["sha"]} for p in reversed(found)]
        if match := re.fullmatch(r"/pipelines/(\d+)/jobs", route):
            (pipeline,) = [p for p in self.pipelines if p["id"] == int(match[1])]
            return 200, [{k: v for k, v in job.items() if k != "folder"}
                         for job in pipeline["jobs"]]
        if match := re.fullmatch(r"/jobs/(\d+)/artifacts/(.+)", route):
            for pipeline in self.pipelines:
                for job in pipeline["jobs"]:
                    folder = job["folder"] if job["id"] == int(match[1]) else None
                    if folder is not None and (folder / match[2]).is_file():
                        return 200, (folder / match[2]).read_bytes()
            return 404, {"message": "404 Not found"}
        if route == "/issues" and method == "GET":
            labels, state = query.get("labels", [""])[0], query.get("state", ["all"])[0]
            return 200, [i for i in self.issues if labels in i["labels"]
                         and state in {"all", i["state"]}]
        if route == "/issues" and method == "POST":
            issue = {"iid": len(self.issues) + 1, "title": body["title"], "state": "opened",
                     "description": body.get("description", ""),
                     "labels": str(body.get("labels", "")).split(","), "notes": []}
            self.issues.append(issue)
            return 201, issue
        if match := re.fullmatch(r"/issues/(\d+)(/notes)?", route):
            issue = self.issues[int(match[1]) - 1]
            if match[2]:
                issue["notes"].append(body["body"])
                return 201, {"id": self.new_id()}
            if body.get("state_event") == "close":
                issue["state"] = "closed"
            if "description" in body:
                issue["description"] = body["description"]
            return 200, issue
        return 404, {"message": f"404 {method} {route} not served by FakeGitLab"}


class Served:
    """FakeGitLab over real HTTP on a loopback port, for the template's curl calls."""

    def __init__(self, gitlab: FakeGitLab) -> None:
        self.gitlab = gitlab
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gitlab = self.gitlab

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                    self._send(401, {"message": "401 Unauthorized"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                status, answer = gitlab.answer(self.command, url.path, parse_qs(url.query),
                                               json.loads(raw) if raw else {})
                self._send(status, answer)

            def _send(self, status: int, answer: Any) -> None:
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@dataclass
class JobResult:
    name: str
    status: str  # success, failed or skipped
    output: str = ""
    workspace: Path | None = None


@dataclass
class Project:
    """The GitLab project: its files, CI/CD variables, and what the API holds."""

    source: Path
    storage: Path
    api_url: str
    gitlab: FakeGitLab
    variables: list[Variable] = field(default_factory=list)
    pipelines: int = 0


class UnsupportedRule(Exception):
    """A rule this runner does not evaluate: never silently taken as true or false."""


def rule_matches(expression: str, variables: dict[str, str]) -> bool:
    def term(text: str) -> str:
        text = text.strip()
        if text.startswith("$"):
            return variables.get(text[1:], "")
        if len(text) >= 2 and text[0] == text[-1] == '"':
            return text[1:-1]
        raise UnsupportedRule(f"cannot evaluate {text!r} in rule {expression!r}")

    def comparison(text: str) -> bool:
        if "==" not in text or "!=" in text or "=~" in text:
            raise UnsupportedRule(f"cannot evaluate rule {expression!r}")
        left, right = text.split("==")
        return term(left) == term(right)

    return any(all(comparison(part) for part in alternative.split("&&"))
               for alternative in expression.split("||"))


def glob_matches(pattern: str, path: str) -> bool:
    """GitLab's `changes:` glob (Ruby's fnmatch with FNM_PATHNAME | FNM_EXTGLOB):
    `**/` is any number of directories, `*` and `?` never cross a `/`."""
    regex = ""
    rest = pattern
    while rest:
        if rest.startswith("**/"):
            regex, rest = regex + "(?:.*/)?", rest[3:]
        elif rest.startswith("**"):
            regex, rest = regex + ".*", rest[2:]
        elif rest[0] == "*":
            regex, rest = regex + "[^/]*", rest[1:]
        elif rest[0] == "?":
            regex, rest = regex + "[^/]", rest[1:]
        else:
            regex, rest = regex + re.escape(rest[0]), rest[1:]
    return re.fullmatch(regex, path) is not None


def _rules_pass(rules: list[dict[str, Any]], variables: dict[str, str],
                changed: tuple[str, ...] | None) -> bool:
    """The first rule whose `if:` and `changes:` both hold selects the job (`changed`
    None: a pipeline without a push, where GitLab counts `changes:` as matched)."""
    for rule in rules:
        unknown = set(rule) - {"if", "changes"}
        if unknown:
            raise UnsupportedRule(f"rule keys {sorted(unknown)}")
        if not rule_matches(str(rule.get("if", '"1" == "1"')), variables):
            continue
        globs = rule.get("changes")
        if globs is None or changed is None or any(
                glob_matches(str(g), path) for g in globs for path in changed):
            return True
    return False


def run_pipeline(template: Path, project: Project, *, source: str, sha: str, branch: str,
                 mr: int | None = None,
                 changed: tuple[str, ...] = ("licenses/yext.yaml",)) -> dict[str, JobResult]:
    """Runs every job the rules select, stage by stage; GitLab's records land in `project`.

    `changed`: the files the push or merge request changed (a schedule or a manual run
    has none, and GitLab then takes every `changes:` as matched)."""
    pushed = changed if source in {"push", "merge_request_event"} else None
    document = yaml.safe_load(template.read_text())
    project.pipelines += 1
    pipeline_id = 9000 + project.pipelines
    default_branch = "main"
    predefined = {
        "CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": source, "CI_COMMIT_SHA": sha,
        "CI_DEFAULT_BRANCH": default_branch, "CI_API_V4_URL": project.api_url,
        "CI_PROJECT_ID": str(PROJECT), "CI_PIPELINE_ID": str(pipeline_id),
        "CI_PIPELINE_URL": f"https://gitlab.example.com/acme/licenses/-/pipelines/{pipeline_id}",
    }
    if mr is None:
        predefined["CI_COMMIT_BRANCH"] = branch
    else:
        predefined["CI_MERGE_REQUEST_IID"] = str(mr)
    top = {k: str(v) for k, v in (document.get("variables") or {}).items()}
    if not _rules_pass(document["workflow"]["rules"], {**top, **predefined}, pushed):
        return {}
    record: dict[str, Any] = {"id": pipeline_id, "sha": sha, "mr": mr, "jobs": []}
    project.gitlab.pipelines.append(record)
    reserved = {"variables", "workflow", "stages", "default", "include"}
    jobs = {name: job for name, job in document.items()
            if name not in reserved and not name.startswith(".")}
    results: dict[str, JobResult] = {}
    failed = False
    for stage in document["stages"]:
        for name, job in jobs.items():
            if job["stage"] != stage:
                continue
            variables = {**top, **predefined,
                         **{k: str(v) for k, v in (job.get("variables") or {}).items()}}
            if not _rules_pass(job.get("rules", [{"if": '"1" == "1"'}]), variables, pushed):
                continue
            if failed:
                results[name] = JobResult(name, "skipped")
                continue
            result = _run_job(document, name, job, variables, project, branch, default_branch)
            job_id = project.gitlab.new_id()
            kept = _keep_artifacts(job, result, project, job_id)
            record["jobs"].append({"id": job_id, "name": name, "status": result.status,
                                   "folder": kept})
            results[name] = result
            failed = failed or result.status == "failed"
    return results


def _run_job(document: dict[str, Any], name: str, job: dict[str, Any],
             variables: dict[str, str], project: Project, branch: str,
             default_branch: str) -> JobResult:
    workspace = project.storage / f"job-{project.gitlab.new_id()}-{name}"
    shutil.copytree(project.source, workspace)
    environment = job.get("environment") or {}
    scope = environment.get("name", "") if isinstance(environment, dict) else str(environment)
    protected_ref = branch == default_branch and "CI_MERGE_REQUEST_IID" not in variables
    project_variables = {
        v.key: v.value for v in project.variables
        if v.scope in {"*", scope} and (protected_ref or not v.protected)}
    default = document.get("default") or {}
    lines = [*job.get("before_script", default.get("before_script", [])), *job["script"]]
    script = workspace.parent / f"{workspace.name}.sh"
    script.write_text("set -eo pipefail\n" + "\n".join(str(line) for line in lines) + "\n")
    shims = _python_shim(project)
    env = {"PATH": os.pathsep.join([str(shims), str(Path(sys.executable).parent),
                                    os.environ.get("PATH", "/usr/bin:/bin")]),
           "HOME": str(workspace), "LANG": "C.UTF-8", "CI_PROJECT_DIR": str(workspace),
           **variables, **project_variables}
    done = subprocess.run(["bash", str(script)], cwd=workspace, env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    return JobResult(name, "success" if done.returncode == 0 else "failed",
                     done.stdout + done.stderr, workspace)


def _python_shim(project: Project) -> Path:
    """`python -m pip install ...` is recorded and not run; any other `python` is this one."""
    shims = project.storage / "shims"
    if not shims.exists():
        shims.mkdir(parents=True)
        calls = project.storage / "pip-calls"
        (shims / "python").write_text(
            "#!/bin/bash\n"
            'if [ "$1 $2 $3" = "-m pip install" ]; then\n'
            f'  printf "%s\\n" "$*" >> {calls}\n  exit 0\nfi\n'
            f'exec {sys.executable} "$@"\n')
        (shims / "python").chmod(0o755)
    return shims


def _keep_artifacts(job: dict[str, Any], result: JobResult, project: Project,
                    job_id: int) -> Path | None:
    artifacts = job.get("artifacts")
    if not artifacts or result.workspace is None:
        return None
    if result.status != "success" and artifacts.get("when") != "always":
        return None
    folder = project.storage / "artifacts" / str(job_id)
    for path in artifacts["paths"]:
        source = result.workspace / path
        if source.is_file():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, folder / path)
    return folder


def pip_calls(project: Project) -> list[str]:
    calls = project.storage / "pip-calls"
    return calls.read_text().splitlines() if calls.exists() else []
