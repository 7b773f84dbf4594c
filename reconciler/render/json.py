"""The JSON plan: a contract read by `apply`, CI and other tools (format_version 1)."""

from __future__ import annotations

import json
from typing import Any

from reconciler.model import Plan
from reconciler.sealing import PLAN_FORMAT_VERSION
from reconciler.secrets import REDACTOR


def plan_document(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = plan.model_dump(mode="json")
    masked = REDACTOR.data(data)
    assert isinstance(masked, dict)
    return masked


def render_json(plan: Plan) -> str:
    """Deterministic bytes: same plan, same text (keys sorted, no timestamps)."""
    return json.dumps(plan_document(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_plan(text: str) -> Plan:
    """A saved plan, refused (ValueError) unless it is a format this version reads.

    The version is checked before the model, so a newer file gets a clear message
    instead of a list of validation errors (or worse, a lenient parse).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("format_version")
    if version != PLAN_FORMAT_VERSION:
        raise ValueError(
            f"unsupported plan format_version {version!r} (this reconciler reads "
            f"{PLAN_FORMAT_VERSION}); make the plan again with this version"
        )
    return Plan.model_validate(data)
