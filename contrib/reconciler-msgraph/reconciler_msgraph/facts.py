"""What one read of a tenant found: SKUs, users and groups, as typed facts.

`check` and `actions` are pure functions of these facts (the provider keeps nothing
on itself between reading and planning), so every Graph rule the plan enforces is
decided here from data: usageLocation, seats, inherited licences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DISABLED_PLANS = "disabled_plans"
"""The one grant attr: service plans switched off in the licence, by servicePlanName."""


@dataclass(frozen=True)
class Sku:
    """A subscribed SKU: the pool, named by its skuPartNumber in the YAML."""

    sku_id: str
    part_number: str
    enabled: int
    consumed: int
    plans: Mapping[str, str]
    """servicePlanName → servicePlanId."""

    def plan_names(self, ids: Sequence[str]) -> list[str]:
        names = {plan_id: name for name, plan_id in self.plans.items()}
        return sorted(names.get(i, i) for i in ids)


@dataclass(frozen=True)
class Holder:
    """A user or group as Graph answered it, under the id the YAML calls it by."""

    kind: str
    subject_id: str
    object_id: str
    name: str
    usage_location: str | None = None
    direct: Mapping[str, list[str]] = field(default_factory=dict)
    """skuId → disabled servicePlanIds, assigned to this holder itself."""
    inherited: Mapping[str, list[str]] = field(default_factory=dict)
    """skuId → ids of the groups it comes from (users only)."""


@dataclass(frozen=True)
class GraphFacts:
    skus: Mapping[str, Sku]
    """skuPartNumber → SKU."""
    holders: Mapping[tuple[str, str], Holder]
    """(kind, subject id) → holder."""

    def sku_by_id(self) -> dict[str, Sku]:
        return {sku.sku_id: sku for sku in self.skus.values()}


def sku_of(row: Mapping[str, Any]) -> Sku:
    prepaid = row.get("prepaidUnits") or {}
    return Sku(sku_id=str(row["skuId"]), part_number=str(row["skuPartNumber"]),
               enabled=int(prepaid.get("enabled", 0)), consumed=int(row.get("consumedUnits", 0)),
               plans={str(p["servicePlanName"]): str(p["servicePlanId"])
                      for p in row.get("servicePlans") or []})


def user_of(row: Mapping[str, Any], subject_id: str) -> Holder:
    """Direct licences are the states with no `assignedByGroup`; an older answer without
    `licenseAssignmentStates` counts every assigned licence as direct."""
    states = row.get("licenseAssignmentStates")
    direct: dict[str, list[str]] = {}
    inherited: dict[str, list[str]] = {}
    if states is None:
        direct = {str(a["skuId"]): sorted(a.get("disabledPlans") or [])
                  for a in row.get("assignedLicenses") or []}
    for state in states or []:
        sku_id = str(state["skuId"])
        group = state.get("assignedByGroup")
        if group:
            inherited.setdefault(sku_id, []).append(str(group))
        else:
            direct[sku_id] = sorted(state.get("disabledPlans") or [])
    return Holder(kind="user", subject_id=subject_id, object_id=str(row["id"]),
                  name=str(row.get("userPrincipalName") or row["id"]),
                  usage_location=row.get("usageLocation") or None,
                  direct=direct, inherited=inherited)


def group_of(row: Mapping[str, Any]) -> Holder:
    return Holder(kind="group", subject_id=str(row["id"]), object_id=str(row["id"]),
                  name=str(row.get("displayName") or row["id"]),
                  direct={str(a["skuId"]): sorted(a.get("disabledPlans") or [])
                          for a in row.get("assignedLicenses") or []})
