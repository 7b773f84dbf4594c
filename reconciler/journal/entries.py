"""What one journal row holds, and where a run's provenance (commit, CI run, actor) comes from.

Both backends store exactly these columns, so an entry read from SQLite and one read
from PostgreSQL are the same value, and an auditor's export does not depend on where
the journal lives.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reconciler.durations import parse_duration
from reconciler.model import Action

COLUMNS = (
    "seq", "at", "run_id", "action_id", "provider", "event", "outcome", "request_digest",
    "vendor_request_id", "message", "action_json", "git_commit", "ci_run", "actor",
    "plan_digest",
)
"""Column order of every SELECT: legacy SQLite files gained the last four by ALTER TABLE."""

SELECT_COLUMNS = ", ".join(COLUMNS)
INSERT_COLUMNS = COLUMNS[1:]


@dataclass(frozen=True)
class Entry:
    """One journal row: a call announced (`started`), its outcome, or a later resolution."""

    seq: int
    at: str
    run_id: str
    action_id: str
    provider: str
    event: str
    outcome: str | None
    request_digest: str
    vendor_request_id: str | None
    message: str
    action_json: str
    git_commit: str | None = None
    ci_run: str | None = None
    actor: str | None = None
    plan_digest: str | None = None

    def action(self) -> Action:
        return Action.model_validate_json(self.action_json)

    def export(self) -> dict[str, Any]:
        """The audit record: who changed which seat when, from which commit and plan.

        The action's own JSON is left out (it is large and holds the request preview);
        its seat (provider, pool, subject, license, verb) is spelled out instead.
        """
        record = {k: v for k, v in asdict(self).items() if k != "action_json"}
        try:
            action = json.loads(self.action_json)
        except ValueError:
            return record
        subject = action.get("subject") or {}
        record.update(
            verb=action.get("verb"),
            pool=action.get("pool"),
            license=action.get("license"),
            subject=f"{subject.get('kind')}:{subject.get('id')}" if subject else None,
        )
        return record


def request_digest(action: Action) -> str:
    encoded = json.dumps(action.request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def now_iso() -> str:
    """Timestamps as fixed-width UTC text: they sort the same way as the instants."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def parse_when(text: str, *, end: bool = False, now: dt.datetime | None = None) -> str:
    """`2026-11-30`, `2026-11-30T12:00`, `2026-11-30T12:00+01:00` or an age (`7d`, `12h`,
    `1h30m`: a duration, parsed as `--lock-timeout` is) as a bound comparable with `Entry.at`.

    A bare date given as an end bound means "through that day", so `--since D --until D`
    is the whole of day D. Times without an offset are UTC (CI runners are). Raises
    ValueError with a message fit for a user.
    """
    text = text.strip()
    age = _age(text)
    if age is not None:
        moment = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=age)
    else:
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                moment = dt.datetime.combine(day, dt.time(), dt.UTC)
                if end:
                    moment += dt.timedelta(days=1)
            else:
                moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"cannot read {text!r} as a date or time (try 2026-11-30, "
                "2026-11-30T12:00:00+00:00, or an age such as 30d)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _age(text: str) -> float | None:
    """Seconds of an age with a unit (`30d`); None for anything else (a bare number is
    not an age here: `2026` must not mean 2026 seconds ago)."""
    if text.isdigit():
        return None
    try:
        return parse_duration(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Provenance:
    """Where a run comes from, recorded on each of its rows for the audit trail."""

    git_commit: str | None
    ci_run: str | None
    actor: str | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Provenance:
        env = os.environ if environ is None else environ
        commit = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA") or _git_head(os.getcwd())
        actor = env.get("GITHUB_ACTOR") or env.get("GITLAB_USER_LOGIN") or _login()
        return cls(git_commit=commit, ci_run=ci_run(env), actor=actor)


def ci_run(environ: Mapping[str, str] | None = None) -> str | None:
    """The CI run's URL when the environment gives one (GitHub Actions, GitLab, Jenkins)."""
    env = os.environ if environ is None else environ
    run_id = env.get("GITHUB_RUN_ID")
    if run_id:
        server, repository = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")
        if not (server and repository):
            return f"github-run:{run_id}"
        url = f"{server}/{repository}/actions/runs/{run_id}"
        attempt = env.get("GITHUB_RUN_ATTEMPT")
        return f"{url}/attempts/{attempt}" if attempt and attempt != "1" else url
    return env.get("CI_PIPELINE_URL") or env.get("BUILD_URL") or None


@functools.lru_cache(maxsize=8)
def _git_head(cwd: str) -> str | None:
    """The checked-out commit, when cwd is a git work tree; a few ms, asked once."""
    if not (Path(cwd) / ".git").exists() and not any(
        (parent / ".git").exists() for parent in Path(cwd).parents
    ):
        return None
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    head = done.stdout.strip()
    return head if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", head) else None


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None
