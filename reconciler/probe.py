"""`reconciler probe PROVIDER`: what a first-time user with real credentials needs.

It runs the provider's read against the vendor, exactly as `plan` would (only read
calls, and the vendor's login), and reports every answer's status and JSON shape,
so an operator can see at once whether their server answers the documented (and
the inferred) shapes before trusting a plan. Values are never printed: only keys
and types, so nothing secret or personal leaves the terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

MAX_KEYS = 12


def shape(value: Any, depth: int = 0) -> str:
    """`{licensePacks: [{id: str, total: int, ...}], nextPageToken: str}`: keys and types."""
    if depth > 5:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())
        inner = ", ".join(f"{key}: {shape(item, depth + 1)}" for key, item in items[:MAX_KEYS])
        more = ", …" if len(items) > MAX_KEYS else ""
        return "{" + inner + more + "}"
    if isinstance(value, list):
        return f"[{shape(value[0], depth + 1)}]" if value else "[]"
    if value is None:
        return "null"
    return type(value).__name__


@dataclass
class Observed:
    """Every answer the vendor gave during one probe, in order."""

    calls: list[str] = field(default_factory=list)

    async def record(self, response: httpx.Response) -> None:
        await response.aread()
        try:
            body = shape(response.json())
        except (ValueError, json.JSONDecodeError):
            body = f"(not JSON: {response.headers.get('content-type', 'no content type')})"
        path = response.request.url.raw_path.decode("ascii", "replace").split("?")[0]
        self.calls.append(f"{response.request.method} {path} → {response.status_code} {body}")
