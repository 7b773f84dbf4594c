"""assignLicense requests: one per user or group, carrying all of its adds and removes,
sent on their own or 20 to a JSON `$batch`.

A request's body is also its expected outcome (the adds present with those disabled
plans, the removes absent), so a lost answer or a failed batch item is settled by
reading the holder back, never by guessing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from reconciler.model import Call

BATCH_PATH = ("$batch",)
KIND_PATH = {"user": "users", "group": "groups"}
PATH_KIND = {path: kind for kind, path in KIND_PATH.items()}


@dataclass(frozen=True)
class Assignment:
    """One `POST /{users|groups}/{id}/assignLicense`."""

    kind: str
    object_id: str
    add: Mapping[str, Sequence[str]]
    """skuId → disabled servicePlanIds."""
    remove: Sequence[str]

    def body(self) -> dict[str, Any]:
        return {"addLicenses": [{"disabledPlans": list(plans), "skuId": sku}
                                for sku, plans in sorted(self.add.items())],
                "removeLicenses": sorted(self.remove)}

    def call(self) -> Call:
        return Call.to("POST", KIND_PATH[self.kind], self.object_id, "assignLicense",
                       body=self.body())

    def batch_item(self, item_id: str) -> dict[str, Any]:
        url = f"/{KIND_PATH[self.kind]}/{quote(self.object_id, safe='')}/assignLicense"
        return {"id": item_id, "method": "POST", "url": url,
                "headers": {"Content-Type": "application/json"}, "body": self.body()}

    def holds(self, direct: Mapping[str, Sequence[str]]) -> bool:
        """Whether a holder's direct licences show this request carried out."""
        added = all(sku in direct and sorted(direct[sku]) == sorted(plans)
                    for sku, plans in self.add.items())
        return added and not any(sku in direct for sku in self.remove)


def batch_call(assignments: Sequence[Assignment]) -> Call:
    items = [a.batch_item(str(n)) for n, a in enumerate(assignments, start=1)]
    return Call.to("POST", *BATCH_PATH, body={"requests": items})


def assignments_of(call: Call) -> dict[str, Assignment]:
    """Item id → assignment, for a batch call or a single one (id "1")."""
    if call.path == BATCH_PATH:
        return {str(item["id"]): _parse(item["url"].strip("/").split("/"), item["body"])
                for item in call.body["requests"]}
    return {"1": _parse(list(call.path), call.body, encoded=False)}


def _parse(path: Sequence[str], body: Mapping[str, Any], encoded: bool = True) -> Assignment:
    kind_path, object_id = path[0], path[1]
    return Assignment(
        kind=PATH_KIND[kind_path], object_id=unquote(object_id) if encoded else object_id,
        add={str(e["skuId"]): list(e.get("disabledPlans") or []) for e in body["addLicenses"]},
        remove=[str(s) for s in body["removeLicenses"]])
