"""Running the real CLI in a scratch directory and reading what the simulator saw."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from click.testing import CliRunner, Result

from reconciler.model import Action
from reconciler.sandbox.base import CHANGING_METHODS

JOURNAL = Path(".reconciler") / "journal.db"


def cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """`reconciler ARGS` in this process, in the current directory; exceptions propagate
    (a traceback is a failure of the property, never an answer)."""
    from reconciler.cli import main

    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def request_log(workspace: Path, provider: str) -> list[dict[str, Any]]:
    """What the in-process simulator saw across every CLI run in `workspace`."""
    path = workspace / ".reconciler" / "sandbox" / f"{provider}.requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def changing(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["method"] in CHANGING_METHODS]


def journaled_calls(journal: Path, *, one_shot: bool = False) -> set[tuple[str, str]]:
    """(method, path) of every vendor-changing call reconciler journaled.

    `one_shot`: only calls their provider does not mark repeatable. A repeatable one
    (a Commvault release: a second one answers "not consumed") may be sent again
    after a dropped response, by design.
    """
    from reconciler.journal import Journal

    with Journal(journal) as opened:
        actions = [Action.model_validate_json(row["action_json"]) for row in opened.rows()]
    return {(a.request.method, urlsplit(a.request.url).path) for a in actions
            if not (one_shot and a.repeatable)}


def duplicated_changes(log: list[dict[str, Any]], journal: Path) -> list[tuple[str, str, str]]:
    """Identical successful POSTs of journaled one-shot changes: a change made twice.

    Only calls reconciler journals count (a login POST is not a change).
    """
    changes = journaled_calls(journal, one_shot=True)
    seen = Counter(
        (entry["method"], entry["path"] + "?" + _without_secrets(entry["query"]),
         json.dumps(entry["body"], sort_keys=True))
        for entry in log
        if entry["method"] == "POST" and (entry["method"], entry["path"]) in changes
        and isinstance(entry["status"], int) and 200 <= entry["status"] < 300
    )
    return [key for key, count in seen.items() if count > 1]


def _without_secrets(query: str) -> str:
    return "&".join(p for p in query.split("&") if not p.lower().startswith(("authtoken", "api")))
