"""The JSON plan: a contract read by `apply`, CI and other tools (format_version 1)."""

from __future__ import annotations

import json
from typing import Any

from reconciler.model import Plan
from reconciler.sealing import PLAN_FORMAT_VERSION
from reconciler.secrets import REDACTOR

MAX_PLAN_DEPTH = 64
"""A plan nests a handful of levels (a call body a few more); anything deeper is not
a plan, and would exhaust Python's recursion limit in the digest or the comparison."""


def _depth(data: Any) -> int:
    """How deep `data` nests, counted without recursion (the input is untrusted)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_PLAN_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


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
    except RecursionError:
        raise ValueError("nested too deeply to be a plan") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if _depth(data) > MAX_PLAN_DEPTH:
        raise ValueError(f"nested more than {MAX_PLAN_DEPTH} levels deep")
    version = data.get("format_version")
    if version != PLAN_FORMAT_VERSION:
        raise ValueError(
            f"unsupported plan format_version {version!r} (this reconciler reads "
            f"{PLAN_FORMAT_VERSION}); make the plan again with this version"
        )
    return Plan.model_validate(data)
