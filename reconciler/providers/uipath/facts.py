"""What a UiPath read found, as typed facts, and the parsers of the vendor's answers.

Parsers are pure (JSON in, values out) so the contract tests can feed them the
documented responses. Only the tenant answer is documented ("Allocate Licenses to a
Tenant" returns the allocated service license); the organization, group and user
list shapes are inferred (see `calls.py`), so their parsers refuse anything else
with a message naming what they expected, rather than reading it as "nothing held".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import VendorError


@dataclass(frozen=True)
class UiPathFacts:
    """Facts `check` and `actions` need beyond the grants: which organization each
    tenant, group and user named in the YAML belongs to."""

    organization_of: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(subject kind, subject name) → its organization's name."""


def organization_quantities(data: Any) -> dict[str, int]:
    """INFERRED shape `{"productQuantities": [{code, quantity}]}` → code → quantity."""
    return _quantities(_object(data, "organization allocation"), "productQuantities",
                       "organization allocation")


def tenant_quantities(data: Any) -> dict[str, int]:
    """Documented shape `{..., "license": {"products": [{code, quantity, ...}]}}`."""
    body = _object(data, "tenant service license")
    license = body.get("license")
    if license is None:
        return {}
    return _quantities(_object(license, "tenant service license `license`"), "products",
                       "tenant service license")


def group_bundles(data: Any) -> list[str]:
    """INFERRED shape `{"userBundleCodes": [...]}` → the group's bundle codes."""
    return _codes(_object(data, "group allocation").get("userBundleCodes"), "group allocation")


def user_bundles(data: Any) -> dict[str, list[str]]:
    """INFERRED shape `{"users": [{"userId", "userBundleCodes"}]}` → user id → codes."""
    rows = _object(data, "user license list").get("users")
    if rows is None:
        return {}
    if not isinstance(rows, list):
        raise VendorError("UiPath user license list: `users` is not a list")
    found: dict[str, list[str]] = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("userId"), str):
            raise VendorError("UiPath user license list: a row has no `userId`")
        found[row["userId"]] = _codes(row.get("userBundleCodes"), "user license list")
    return found


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise VendorError(f"UiPath {what}: expected a JSON object, got {type(data).__name__}")
    return data


def _quantities(body: Mapping[str, Any], key: str, what: str) -> dict[str, int]:
    items = body.get(key)
    if items is None:
        return {}
    if not isinstance(items, list):
        raise VendorError(f"UiPath {what}: `{key}` is not a list")
    found: dict[str, int] = {}
    for item in items:
        code = item.get("code") if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if (not isinstance(code, str) or isinstance(quantity, bool)
                or not isinstance(quantity, int)):
            raise VendorError(f"UiPath {what}: `{key}` items need a code and an integer "
                              f"quantity, got {item!r}")
        found[code] = quantity
    return found


def _codes(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise VendorError(f"UiPath {what}: `userBundleCodes` is not a list of codes")
    return sorted(set(value))
