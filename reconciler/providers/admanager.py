"""ManageEngine ADManager Plus: O365 licences of AD users, changed by workflow requests.

A change here is asynchronous: `CreateWorkFlowRequest` files a request that does
nothing until it is approved and executed inside ADManager. So `execute` returns
PENDING with the request id; the journal keeps it; the next plan asks where it
stands (`resolve_pending`) and holds the change back while it is pending. Creating
a request is not repeatable (a second call files a second request), so it is never
retried after an unknown outcome.

Pools are `<domain>/<SKU>`; a user names its domain in `attrs: {domain: ...}`.
Disabled service plans are the grant's `attrs.disabled_plans`.

Inferred (see README, "vendor assumptions"), each in one setting:
- the assign action name (`assign_action`, default ASSIGN_O365_LICENSES);
- the request-status call (`status_path`) and its `requestStatus` field;
- the SearchUser licence column (`licence_column`) and rows key (`users_key`);
- SKU display names and service plans (`skus`), and seats per SKU (`capacity`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.errors import Problem, VendorError
from reconciler.http import RequestSpec
from reconciler.model import (
    Action,
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    Outcome,
    OutcomeStatus,
    PoolState,
    ProviderDesired,
    Subject,
)
from reconciler.providers.base import (
    PHASE_FREE,
    PHASE_TAKE,
    PHASE_UPDATE,
    Connection,
    PendingRequest,
    Provider,
    Resolution,
    fingerprint,
)


class SkuInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    plans: tuple[str, ...] = ()


DEFAULT_SKUS: dict[str, SkuInfo] = {
    "ENTERPRISEPACK": SkuInfo(name="Office 365 Enterprise E3", plans=(
        "KAIZALA_O365_P3", "TEAMS1", "EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE")),
    "POWER_BI_PRO": SkuInfo(name="Power BI Pro", plans=("BI_AZURE_P2",)),
    "VISIOCLIENT": SkuInfo(name="Visio Plan 2", plans=("VISIO_CLIENT_SUBSCRIPTION",)),
}
REMOVE = "REMOVE_O365_LICENSES"


class ADManagerConnection(Connection):
    """How to reach ADManager Plus (base URL without /RestAPI)."""

    base_url_env: str | None = "ADMANAGER_BASE_URL"
    auth_token_env: str
    product_name: str = "RESTAPI"
    assign_action: str = "ASSIGN_O365_LICENSES"
    status_path: str = "/RestAPI/WorkflowRequestStatus"
    licence_column: str = "O365_LICENSES"
    users_key: str = "UsersList"
    page_size: int = Field(default=100, ge=1, le=1000)
    capacity: dict[str, int] = Field(default_factory=dict)
    skus: dict[str, SkuInfo] = Field(default_factory=lambda: dict(DEFAULT_SKUS))


class ADManagerProvider(Provider):
    id = "admanager"
    connection_model = ADManagerConnection
    default_base_url = "http://localhost:8080"
    subject_kinds = frozenset({"user"})

    connection: ADManagerConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._users: dict[tuple[str, str], dict[str, Any]] = {}

    # ---- declarations --------------------------------------------------------------
    @classmethod
    def pool_of(cls, subject: Subject, license: str, attrs: Mapping[str, Any]) -> str:
        domain = attrs.get("domain")
        if not isinstance(domain, str) or not domain:
            raise ValueError("ADManager users need `attrs: {domain: <AD domain>}`")
        return f"{domain}/{license}"

    @classmethod
    def normalize_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Only what ADManager stores counts; plans compare as sets; [] means none."""
        normal = {"domain": attrs["domain"]} if "domain" in attrs else {}
        plans = attrs.get("disabled_plans") or []
        if plans:
            normal["disabled_plans"] = sorted(set(plans))
        return normal

    def _params(self, domain: str, **extra: str) -> dict[str, str]:
        token = self.secrets.get(self.connection.auth_token_env)
        return {"AuthToken": token, "domainName": domain,
                "PRODUCT_NAME": self.connection.product_name, **extra}

    # ---- facts ---------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        domains = sorted({str(s.attrs.get("domain")) for s in desired.subjects
                          if s.attrs.get("domain")}
                         | {p.id.split("/", 1)[0] for p in desired.pools})
        named = {s.subject.id for s in desired.subjects}
        grants: list[Grant] = []
        holders: dict[str, list[str]] = defaultdict(list)
        for domain in domains:
            for row in await self._users_of(domain):
                upn = str(row.get("USER_PRINCIPAL_NAME", ""))
                name = upn if upn in named else str(row.get("DISPLAY_NAME", ""))
                self._users[(domain, name)] = row
                for held in row.get(self.connection.licence_column) or []:
                    sku = str(held["ACCOUNT_SKU_ID"])
                    attrs = self.normalize_attrs({
                        "domain": domain,
                        "disabled_plans": held.get("DISABLED_SERVICE_PLANS") or []})
                    pool = f"{domain}/{sku}"
                    holders[pool].append(name)
                    grants.append(Grant(provider=self.id, pool=pool, license=sku, attrs=attrs,
                                        subject=Subject(kind="user", id=name)))
        pools = [
            PoolState(provider=self.id, id=f"{domain}/{sku}", name=info.name,
                      capacity=self.connection.capacity.get(f"{domain}/{sku}",
                                                            self.connection.capacity.get(sku)),
                      used=len(holders.get(f"{domain}/{sku}", [])))
            for domain in domains
            for sku, info in sorted(self.connection.skus.items())
        ]
        fingerprints = {pool.id: fingerprint(sorted(
            (g.subject.id, g.attrs.get("disabled_plans", [])) for g in grants
            if g.pool == pool.id)) for pool in pools}
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints)

    async def _users_of(self, domain: str) -> list[dict[str, Any]]:
        """Every user of a domain, paged with range/startIndex at the largest page: the
        first page tells `Count`, the others are fetched concurrently."""
        size = self.connection.page_size
        first = await self._user_page(domain, 1)
        starts = range(1 + size, int(first.get("Count", 0)) + 1, size)
        rest = await asyncio.gather(*(self._user_page(domain, start) for start in starts))
        key = self.connection.users_key
        return [row for page in (first, *rest) for row in (page.get(key) or [])]

    async def _user_page(self, domain: str, start: int) -> dict[str, Any]:
        spec = RequestSpec("GET", "/RestAPI/SearchUser", params=self._params(
            domain, range=str(self.connection.page_size), startIndex=str(start)))
        return _status_ok(await self.http.send(spec, repeatable=True), "SearchUser")

    def check(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        problems = []
        for declared in desired.subjects:
            domain = str(declared.attrs.get("domain", ""))
            if (domain, declared.subject.id) not in self._users:
                problems.append(Problem(declared.source, f"admanager: no user "
                                                         f"'{declared.subject.id}' in domain "
                                                         f"'{domain}'"))
        return problems

    # ---- operations ----------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        held: dict[tuple[str, str], set[str]] = defaultdict(set)
        for grant in current.grants:
            held[(str(grant.attrs["domain"]), grant.subject.id)].add(grant.license)
        removing: dict[tuple[str, str], list[Change]] = defaultdict(list)
        groups: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            grant = change.grant
            user = (str(grant.attrs["domain"]), grant.subject.id)
            if change.kind is ChangeKind.REMOVE:
                removing[user].append(change)
            else:
                groups[json.dumps(["assign", user[0], self._selection(grant)])].append(change)
        for user, removals in removing.items():
            if {c.grant.license for c in removals} == held[user] and len(held[user]) > 0:
                groups[json.dumps(["remove-all", user[0]])].extend(removals)
                continue
            for change in removals:
                groups[json.dumps(["remove", user[0], self._selection(change.grant)])].append(
                    change)
        return [self._request(json.loads(key), members)
                for key, members in sorted(groups.items())]

    def _selection(self, grant: Grant, *, for_removal: bool = False) -> dict[str, Any]:
        """The SKU entry of `selectedO365Licenses`, service plans as the seed shows them."""
        info = self.connection.skus.get(grant.license, SkuInfo(name=grant.license))
        disabled = set(grant.attrs.get("disabled_plans", []))
        plans = [{"SERVICE_NAME": plan, "IS_SELECTED": plan not in disabled, "TYPE": "User",
                  "SERVICE_NAME_DISP_VAL": plan}
                 for plan in info.plans if not (for_removal and plan in disabled)]
        return {"ACCOUNT_SKU_ID": grant.license, "ACCOUNT_SKU_DISP_VAL": info.name,
                "IS_SELECTED": True, "ServicePlans": plans}

    def _request(self, key: list[Any], changes: list[Change]) -> Action:
        kind, domain = key[0], key[1]
        users = sorted({c.grant.subject.id for c in changes})
        accounts = [self._account(domain, user) for user in users]
        item: dict[str, Any]
        if kind == "assign":
            item = {"RequestAction": self.connection.assign_action,
                    "Subject": "Assign O365 licenses", "accounts": accounts,
                    "selectedO365Licenses": {"accountSKUDetailsList": [key[2]]}}
            verb: Literal["assign", "update", "remove"] = (
                "update" if changes[0].kind is ChangeKind.UPDATE else "assign")
            phase = PHASE_UPDATE if verb == "update" else PHASE_TAKE
        elif kind == "remove":
            selection = self._selection(changes[0].grant, for_removal=True)
            item = {"RequestAction": REMOVE, "Subject": "Remove O365 licenses",
                    "accounts": accounts, "isRemoveAllO365License": "false",
                    "selectedO365Licenses": {"accountSKUDetailsList": [selection]}}
            verb, phase = "remove", PHASE_FREE
        else:
            item = {"RequestAction": REMOVE, "Subject": "Remove O365 licenses",
                    "accounts": accounts, "isRemoveAllO365License": "true"}
            verb, phase = "remove", PHASE_FREE
        input_data = json.dumps([item], separators=(", ", ":"))
        spec = RequestSpec("POST", "/RestAPI/CreateWorkFlowRequest",
                           params=self._params(domain), data={"inputData": input_data})
        licenses = sorted({c.grant.license for c in changes})
        digest = hashlib.sha256(input_data.encode()).hexdigest()[:10]
        first = changes[0].grant
        who = users[0] if len(users) == 1 else f"{len(users)} users ({', '.join(users)})"
        return Action(
            id=f"admanager:{domain}:{kind}:{digest}", verb=verb, provider=self.id,
            pool=first.pool, subject=Subject(kind="user", id=users[0]),
            license=",".join(licenses), phase=phase, frees=verb == "remove",
            seat_delta=sum(c.seat_delta for c in changes),
            reason=f"{who}: " + "; ".join(sorted({c.reason for c in changes})),
            request=self.http.preview(spec), changes=tuple(changes), repeatable=False,
            params={"domain": domain, "input_data": input_data},
        )

    def _account(self, domain: str, user: str) -> dict[str, str]:
        if "@" in user:
            return {"userPrincipalName": user}
        return {"displayName": user}

    async def execute(self, action: Action) -> Outcome:
        spec = RequestSpec("POST", "/RestAPI/CreateWorkFlowRequest",
                           params=self._params(action.params["domain"]),
                           data={"inputData": action.params["input_data"]})
        response = await self.http.send(spec, repeatable=False)
        try:
            answers = response.json()
        except ValueError:
            return Outcome(status=OutcomeStatus.FAILED,
                           message=f"ADManager answered HTTP {response.status_code}, not JSON")
        answer = answers[0] if isinstance(answers, list) and answers else answers
        if not isinstance(answer, dict) or answer.get("status") != "1":
            message = answer.get("statusMessage") if isinstance(answer, dict) else None
            return Outcome(status=OutcomeStatus.FAILED,
                           message=f"ADManager refused the request: {message or answers}")
        return Outcome(status=OutcomeStatus.PENDING, vendor_request_id=str(answer["requestId"]),
                       message="workflow request created; waiting for approval")

    async def resolve_pending(self, requests: Sequence[PendingRequest]) -> list[Resolution]:
        resolutions = []
        for pending in requests:
            spec = RequestSpec("GET", self.connection.status_path, params=self._params(
                pending.action.params["domain"], requestId=pending.request_id))
            data = _status_ok(await self.http.send(spec, repeatable=True), "request status")
            state = str(data.get("requestStatus", "")).lower()
            status: Literal["pending", "executed", "rejected"] = (
                "executed" if state == "executed" else
                "rejected" if state in {"rejected", "failed"} else "pending")
            resolutions.append(Resolution(request=pending, status=status,
                                          message=str(data.get("statusMessage", ""))))
        return resolutions


def _status_ok(response: Any, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise VendorError(f"ADManager {what}: HTTP {response.status_code}, not JSON") from None
    if not isinstance(data, dict) or data.get("status") != "1":
        message = data.get("statusMessage") if isinstance(data, dict) else data
        raise VendorError(f"ADManager {what} failed: {message}")
    return data
