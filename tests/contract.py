"""Shared pieces of the vendor contract tests (tests/providers/test_*_contract.py).

Fixtures are request/response pairs transcribed from each vendor's public reference
(`tests/fixtures/vendors/<vendor>/`); every one names its source.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

VENDOR_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vendors"


def vendor_fixtures(vendor: str) -> Callable[[str], dict[str, Any]]:
    """A loader for one vendor's fixtures that refuses a fixture naming no source."""
    folder = VENDOR_FIXTURES / vendor

    def fixture(name: str) -> dict[str, Any]:
        loaded = json.loads((folder / name).read_text(encoding="utf-8"))
        assert loaded["source"], f"{vendor}/{name} names no source"
        return loaded  # type: ignore[no-any-return]

    return fixture


def json_shape(value: Any) -> Any:
    """Keys and JSON types, recursively (lists by their first item): what a contract
    can hold two answers to. `null` is None, so a documented null fits any value."""
    if isinstance(value, dict):
        return {key: json_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return None if value is None else "string"
