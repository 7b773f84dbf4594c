"""`--json` results of the commands that are not a plan: `validate` and `apply`.

A pipeline reads these instead of parsing the text lines, so each shape is a
documented contract (README: "JSON results"): keys are only ever added, never
renamed. Every string goes through the redactor: an outcome's message can quote a
vendor's answer, and a vendor may echo a credential back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from reconciler.errors import Problem
from reconciler.model import Action, Outcome, PendingChange
from reconciler.providers.base import Resolution
from reconciler.secrets import REDACTOR


def validation_json(files: Sequence[str], problems: Sequence[Problem], *, providers: int = 0,
                    grants: int = 0) -> str:
    """`{"valid", "files", "providers", "grants", "errors": [{"file", "line", "message"}]}`."""
    return _dump({
        "valid": not problems,
        "files": list(files),
        "providers": providers,
        "grants": grants,
        "errors": [
            {
                "file": problem.location.file if problem.location else None,
                "line": problem.location.line if problem.location else None,
                "message": problem.message,
            }
            for problem in problems
        ],
    })


def apply_json(
    results: Iterable[tuple[Action, Outcome]],
    held_back: Iterable[PendingChange],
    settled: Iterable[Resolution],
    *,
    notes: Iterable[str] = (),
    exit_code: int,
    would_send: Iterable[Action] = (),
    dry_run: bool = False,
) -> str:
    """What ran (one entry per action, with its outcome), what is held back, what --wait saw.

    `failed` counts the actions whose outcome is `failed` or `skipped` (a dependency
    failed); a `pending` outcome is a request the vendor accepted and has yet to carry
    out, so it is not a failure but shows again under `held_back` on the next plan.
    With `--dry-run` nothing runs: `would_send` lists each request instead.
    """
    applied = [_action(action, outcome) for action, outcome in results]
    return _dump({
        "dry_run": dry_run,
        "applied": applied,
        "would_send": [
            {**_action(action, None), "method": action.request.method,
             "url": action.request.url, "body": action.request.body}
            for action in would_send
        ],
        "held_back": [_held(change) for change in held_back],
        "settled": [
            {
                "id": resolution.request.action.id,
                "request_id": resolution.request.request_id,
                "status": resolution.status,
                "detail": resolution.message,
            }
            for resolution in settled
        ],
        "notes": list(notes),
        "failed": sum(1 for entry in applied if entry["outcome"] in {"failed", "skipped"}),
        "exit_code": exit_code,
    })


def _action(action: Action, outcome: Outcome | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": action.id,
        "provider": action.provider,
        "verb": action.verb,
        "pool": action.pool,
        "subject": str(action.subject),
        "license": action.license,
    }
    if outcome is not None:
        entry |= {"outcome": outcome.status.value, "detail": outcome.message,
                  "vendor_request_id": outcome.vendor_request_id}
    return entry


def _held(change: PendingChange) -> dict[str, Any]:
    _, pool, kind, subject, license = change.key
    return {
        "provider": change.provider,
        "pool": pool,
        "subject": f"{kind}:{subject}",
        "license": license,
        "direction": change.direction,
        "request_id": change.request_id,
        "reason": change.description,
    }


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(REDACTOR.data(document), indent=2, sort_keys=True) + "\n"
