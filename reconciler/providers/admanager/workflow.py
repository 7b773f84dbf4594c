"""Building ADManager workflow requests: changes in, one typed `Call` per request out.

Pure functions of the changes and the connection settings, so the request a
reviewer sees in the plan is the request `execute` sends, byte for byte.

Removals always name the SKUs they remove (`isRemoveAllO365License: "false"`).
The remove-all form removes whatever the user holds *when an approver executes
it*, in any order relative to other requests for that user: an assignment
approved first would be taken away again. Knowing that no other request is
waiting needs the journal's pending requests at planning time, which `actions`
does not receive, so the form is never used.

Each request's `Description` carries `reconciler <digest>`, a digest of the request
itself: after a lost answer, the request can be found again by that marker
(`requests_path`, inferred) instead of being filed twice.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from reconciler.model import Call, Change, ChangeKind, Grant, literal_path

REMOVE = "REMOVE_O365_LICENSES"
CREATE_PATH = "/RestAPI/CreateWorkFlowRequest"
MARKER = "reconciler"

Kind = Literal["assign", "update", "remove"]


class SkuInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    plans: tuple[str, ...] = ()


def selection(grant: Grant, skus: Mapping[str, SkuInfo], *, for_removal: bool = False,
              also: Sequence[str] = ()) -> dict[str, Any]:
    """The SKU entry of `selectedO365Licenses`, service plans as the seed page shows them.

    Assigning lists every plan, disabled ones unselected; `also` adds plans the
    settings do not know but the user has disabled now, selected so they are
    enabled again. A removal lists the enabled plans (the vendor's sample).
    """
    info = skus.get(grant.license, SkuInfo(name=grant.license))
    disabled = set(grant.attrs.get("disabled_plans", []))
    names = [*info.plans, *sorted(set(also) - set(info.plans))]
    plans = [{"SERVICE_NAME": plan, "IS_SELECTED": plan not in disabled, "TYPE": "User",
              "SERVICE_NAME_DISP_VAL": plan}
             for plan in names if not (for_removal and plan in disabled)]
    return {"ACCOUNT_SKU_ID": grant.license, "ACCOUNT_SKU_DISP_VAL": info.name,
            "IS_SELECTED": True, "ServicePlans": plans}


def domain_of(grant: Grant) -> str:
    return str(grant.attrs["domain"])


def group(changes: Sequence[Change], skus: Mapping[str, SkuInfo]
          ) -> list[tuple[Kind, str, dict[str, Any], list[Change]]]:
    """Changes sharing (kind, domain, SKU selection) go in one request, in a stable order."""
    groups: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        grant = change.grant
        kind: Kind
        if change.kind is ChangeKind.REMOVE:
            kind, chosen = "remove", selection(grant, skus, for_removal=True)
        else:
            kind = "update" if change.kind is ChangeKind.UPDATE else "assign"
            also = change.before.attrs.get("disabled_plans", []) if change.before else []
            chosen = selection(grant, skus, also=also)
        groups[json.dumps([kind, domain_of(grant), chosen])].append(change)
    result: list[tuple[Kind, str, dict[str, Any], list[Change]]] = []
    for key, members in sorted(groups.items()):
        kind, domain, chosen = json.loads(key)
        result.append((kind, domain, chosen, members))
    return result


def account(user: str, upn_key: str) -> dict[str, str]:
    """How a request names a user: by UPN when reconciler knows them by UPN."""
    if "@" in user:
        return {upn_key: user}
    return {"displayName": user}


def request_item(kind: Kind, chosen: dict[str, Any], users: Sequence[str], *,
                 action_name: str, upn_key: str) -> dict[str, Any]:
    """One element of `inputData` (without its Description marker)."""
    accounts = [account(user, upn_key) for user in users]
    if kind == "remove":
        return {"RequestAction": REMOVE, "Subject": "Remove O365 licenses",
                "accounts": accounts, "isRemoveAllO365License": "false",
                "selectedO365Licenses": {"accountSKUDetailsList": [chosen]}}
    return {"RequestAction": action_name, "Subject": "Assign O365 licenses",
            "accounts": accounts,
            "selectedO365Licenses": {"accountSKUDetailsList": [chosen]}}


def digest_of(item: dict[str, Any], domain: str) -> str:
    encoded = json.dumps([domain, item], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:12]


def marker(digest: str) -> str:
    return f"{MARKER} {digest}"


def create_call(item: dict[str, Any], domain: str, product_name: str) -> Call:
    """`POST /RestAPI/CreateWorkFlowRequest`, `inputData` as a form field (a JSON array).

    The AuthToken is not here: it is added as a query parameter when the call is sent.
    """
    input_data = json.dumps([item], separators=(", ", ":"))
    return Call.to("POST", *literal_path(CREATE_PATH),
                   query={"domainName": domain, "PRODUCT_NAME": product_name},
                   form={"inputData": input_data})


def item_of(call: Call) -> dict[str, Any]:
    """The request item a create call carries (execute and confirm read it back)."""
    form = dict(call.form or ())
    items = json.loads(form["inputData"])
    assert isinstance(items, list) and isinstance(items[0], dict)
    return items[0]
