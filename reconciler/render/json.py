"""The JSON plan: a contract read by `apply`, CI and other tools (format_version 1)."""

from __future__ import annotations

import json
from typing import Any

from reconciler.model import Plan
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
    return Plan.model_validate_json(text)
