"""What a LicenseSpring read knows: each license under the name the YAML uses for it.

Parsed from the Management API's `GET /api/v1/licenses/` rows. Only what planning
needs is kept (typed, frozen), so `check` and `actions` are pure functions of these
facts and can be tested without HTTP.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LicenseFacts:
    """One license as planning sees it.

    `license_key` is set for a key-based license; a user-based one has `users`
    (plain addresses, sorted) instead. `capacity` is None when activations are
    unlimited. Dates are ISO `YYYY-MM-DD` (the vendor sends date-times too).
    """

    id: int
    product: str
    license_key: str | None = None
    users: tuple[str, ...] = ()
    enabled: bool = True
    validity_period: str | None = None
    start_date: str | None = None
    capacity: int | None = None

    @property
    def user_based(self) -> bool:
        return not self.license_key


@dataclass(frozen=True, slots=True)
class LicenseSpringFacts:
    """Every license read, by YAML name (see `license_names`)."""

    licenses: Mapping[str, LicenseFacts] = field(default_factory=dict)


def license_users(row: Mapping[str, Any]) -> list[str]:
    """A license's users by plain address, sorted. The Management API tags `email`
    (`<address>|<tag>`); `true_email` is the address the user signs in with."""
    users = row.get("license_users") or []
    return sorted(
        str(u.get("true_email") or str(u.get("email", "")).split("|")[0]) for u in users
    )


def product_code(row: Mapping[str, Any]) -> str:
    """The product's short code: the reference nests it (`product.short_code`); a bare
    string is accepted too, since some list views serialize the product flat."""
    product = row.get("product")
    if isinstance(product, Mapping):
        return str(product.get("short_code", ""))
    return str(product or "")


def capacity(row: Mapping[str, Any]) -> int | None:
    """Max activations, or None (no limit) when the license allows unlimited ones."""
    if row.get("allow_unlimited_activations"):
        return None
    return int(row.get("max_activations") or 0)


def _day(value: Any) -> str | None:
    return str(value)[:10] if value else None


def parse_license(row: Mapping[str, Any]) -> LicenseFacts:
    """One `GET /licenses/` row as facts. Raises KeyError/ValueError on a row without
    an id (the caller reports that as a vendor answer it cannot use)."""
    key = row.get("license_key")
    return LicenseFacts(
        id=int(row["id"]),
        product=product_code(row),
        license_key=str(key) if key else None,
        users=tuple(license_users(row)) if not key else (),
        enabled=bool(row.get("enabled", True)),
        validity_period=_day(row.get("validity_period")),
        start_date=_day(row.get("start_date")),
        capacity=capacity(row),
    )


def license_names(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """How YAML names each license (the pool id): the one naming rule.

    A key-based license is its license key. A user-based license is
    `<product>/<user>` (`<product>/<user>+<user>` when it has several users), which reads
    naturally and stays apart across products. Should two licenses still share a name
    (one user holding two licenses of one product), each gets `#<license id>` appended.
    """
    named: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("license_key"):
            named[str(row["license_key"])].append(row)
        else:
            users = "+".join(license_users(row)) or f"#{row['id']}"
            named[f"{product_code(row)}/{users}"].append(row)
    names: dict[str, Mapping[str, Any]] = {}
    for name, found in named.items():
        if len(found) == 1:
            names[name] = found[0]
        else:
            names.update({f"{name}#{row['id']}": row for row in found})
    return names
