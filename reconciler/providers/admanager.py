"""ManageEngine ADManager Plus: O365 licences of AD users, changed by workflow requests.

A change here is asynchronous: `CreateWorkFlowRequest` files a request that does
nothing until it is approved and executed inside ADManager. So `execute` returns
PENDING with the request id; the journal keeps it; the next plan asks where it
stands (`resolve_pending`) and holds the change back while it is pending. Creating
a request is not repeatable (a second call files a second request), so it is never
retried after an unknown outcome.

Because approval comes later and in any order, two requests for one user must not
undo each other: `isRemoveAllO365License: "true"` removes whatever the user holds
*when it executes*, so it is used only for a user who gains nothing in this plan
and has no request still pending; otherwise each SKU is removed by name.

Pools are `<domain>/<SKU>`; a user names its domain in `attrs: {domain: ...}`.
Disabled service plans are the grant's `attrs.disabled_plans`.

Inferred (see README, "vendor assumptions"), each in one setting:
- the assign and update action names (`assign_action`, `update_action`);
- the request-status call (`status_path`) and its `requestStatus` field;
- the SearchUser licence column (`licence_column`) and rows key (`users_key`);
- the `accounts` key for a user named by UPN (`upn_account_key`);
- SKU display names and service plans (`skus`), and seats per SKU (`capacity`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter, defaultdict
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
# CreateWorkFlowRequest answers status "1"; SearchUser's page says 'SUCCESS'.
SUCCESS = frozenset({"1", "success"})
RequestState = Literal["pending", "executed", "rejected"]


class ADManagerConnection(Connection):
    """How to reach ADManager Plus (base URL without /RestAPI)."""

    base_url_env: str | None = "ADMANAGER_BASE_URL"
    auth_token_env: str
    product_name: str = "RESTAPI"
    assign_action: str = "ASSIGN_O365_LICENSES"
    update_action: str | None = None
    """RequestAction that changes a held SKU's service plans; unset: `assign_action`."""
    status_path: str = "/RestAPI/WorkflowRequestStatus"
    licence_column: str = "O365_LICENSES"
    users_key: str = "UsersList"
    upn_account_key: str = "userPrincipalName"
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
        self._homonyms: dict[tuple[str, str], list[str]] = {}
        # Requests the last resolve_pending found still waiting for approval.
        self._waiting: dict[str, PendingRequest] = {}

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
        """Every user of each domain the YAML mentions, one paged SearchUser run per domain.

        A user is named by UPN when the YAML names them so, or when their display name
        is shared with another user of the domain (a display name is not unique in AD,
        and a request must never reach the wrong person); by display name otherwise.
        """
        domains = sorted({str(s.attrs.get("domain")) for s in desired.subjects
                          if s.attrs.get("domain")}
                         | {p.id.split("/", 1)[0] for p in desired.pools})
        named = {s.subject.id for s in desired.subjects}
        pages = await asyncio.gather(*(self._users_of(domain) for domain in domains))
        grants: list[Grant] = []
        holders: Counter[str] = Counter()
        self._users.clear()
        self._homonyms.clear()
        for domain, rows in zip(domains, pages, strict=True):
            shared = Counter(str(row.get("DISPLAY_NAME", "")) for row in rows)
            for row in rows:
                upn = str(row.get("USER_PRINCIPAL_NAME", ""))
                display = str(row.get("DISPLAY_NAME", ""))
                if shared[display] > 1:
                    self._homonyms.setdefault((domain, display), []).append(upn)
                name = upn if upn in named or shared[display] > 1 else display
                self._users[(domain, name)] = row
                for held in row.get(self.connection.licence_column) or []:
                    sku = str(held["ACCOUNT_SKU_ID"])
                    attrs = self.normalize_attrs({
                        "domain": domain,
                        "disabled_plans": held.get("DISABLED_SERVICE_PLANS") or []})
                    holders[f"{domain}/{sku}"] += 1
                    grants.append(Grant(provider=self.id, pool=f"{domain}/{sku}", license=sku,
                                        attrs=attrs, subject=Subject(kind="user", id=name)))
        live = {grant.key for grant in grants}
        promised = Counter(change.grant.pool for request in self._waiting.values()
                           for change in request.action.changes
                           if change.kind is ChangeKind.ADD and change.grant.key not in live)
        pools = [
            PoolState(provider=self.id, id=f"{domain}/{sku}", name=info.name,
                      capacity=self.connection.capacity.get(f"{domain}/{sku}",
                                                            self.connection.capacity.get(sku)),
                      used=holders[f"{domain}/{sku}"] + promised[f"{domain}/{sku}"])
            for domain in domains
            for sku, info in sorted(self.connection.skus.items())
        ]
        by_pool: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for grant in grants:
            by_pool[grant.pool].append((grant.subject.id, grant.attrs.get("disabled_plans", [])))
        fingerprints = {pool.id: fingerprint(sorted(by_pool[pool.id])) for pool in pools}
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints)

    async def _users_of(self, domain: str) -> list[dict[str, Any]]:
        """Every user of a domain, paged with range/startIndex at the largest page: the
        first page tells `Count`, the others are fetched concurrently.

        A server that caps `range` below `page_size` answers a short first page; the
        rest is paged at that size. Rows that do not add up to `Count` (the directory
        moved during the read) stop the plan: a user missed is a seat miscounted.
        """
        key = self.connection.users_key
        first = await self._user_page(domain, 1)
        total = int(first.get("Count", 0))
        step = len(first.get(key) or []) or self.connection.page_size
        starts = range(1 + step, total + 1, step)
        rest = await asyncio.gather(*(self._user_page(domain, start) for start in starts))
        rows = [row for page in (first, *rest) for row in (page.get(key) or [])]
        if len(rows) != total:
            raise VendorError(f"ADManager SearchUser in {domain}: read {len(rows)} users but "
                              f"Count says {total}; run the plan again")
        return rows

    async def _user_page(self, domain: str, start: int) -> dict[str, Any]:
        spec = RequestSpec("GET", "/RestAPI/SearchUser", params=self._params(
            domain, range=str(self.connection.page_size), startIndex=str(start)))
        return _status_ok(await self.http.send(spec, repeatable=True), f"SearchUser in {domain}")

    def check(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        """Unknown or ambiguous users, and service plans the SKU settings do not list
        (a request could not disable them, so the plan would ask again forever)."""
        problems = []
        for declared in desired.subjects:
            domain = str(declared.attrs.get("domain", ""))
            name = declared.subject.id
            if (domain, name) in self._homonyms:
                upns = ", ".join(sorted(self._homonyms[(domain, name)]))
                problems.append(Problem(declared.source, f"admanager: display name '{name}' is "
                                        f"shared by several users in '{domain}' ({upns}); "
                                        "name the user by UPN"))
            elif (domain, name) not in self._users:
                problems.append(Problem(declared.source, f"admanager: no user '{name}' in "
                                                         f"domain '{domain}'"))
        for grant in desired.grants:
            info = self.connection.skus.get(grant.license)
            unknown = sorted(set(grant.attrs.get("disabled_plans", []))
                             - set(info.plans if info else ()))
            if unknown:
                problems.append(Problem(grant.source, f"admanager: {grant.license} has no "
                                        f"service plan {', '.join(unknown)} in "
                                        "connection.skus"))
        return problems

    # ---- operations ----------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        """One request per (domain, kind, SKU selection), listing every user it concerns."""
        held: dict[tuple[str, str], set[str]] = defaultdict(set)
        for grant in current.grants:
            held[(str(grant.attrs["domain"]), grant.subject.id)].add(grant.license)
        gaining = {(str(c.grant.attrs["domain"]), c.grant.subject.id) for c in changes
                   if c.kind is not ChangeKind.REMOVE}
        waiting = {(str(c.grant.attrs["domain"]), c.grant.subject.id)
                   for request in self._waiting.values() for c in request.action.changes}
        removing: dict[tuple[str, str], list[Change]] = defaultdict(list)
        groups: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            grant = change.grant
            user = (str(grant.attrs["domain"]), grant.subject.id)
            if change.kind is ChangeKind.REMOVE:
                removing[user].append(change)
                continue
            kind = "update" if change.kind is ChangeKind.UPDATE else "assign"
            also = change.before.attrs.get("disabled_plans", []) if change.before else []
            groups[json.dumps([kind, user[0], self._selection(grant, also=also)])].append(
                change)
        for user, removals in removing.items():
            everything = {c.grant.license for c in removals} == held[user] and held[user]
            if everything and user not in gaining and user not in waiting:
                groups[json.dumps(["remove-all", user[0]])].extend(removals)
                continue
            for change in removals:
                groups[json.dumps(["remove", user[0], self._selection(
                    change.grant, for_removal=True)])].append(change)
        return [self._request(json.loads(key), members)
                for key, members in sorted(groups.items())]

    def _selection(self, grant: Grant, *, for_removal: bool = False,
                   also: Sequence[str] = ()) -> dict[str, Any]:
        """The SKU entry of `selectedO365Licenses`, service plans as the seed shows them.

        Assigning lists every plan, disabled ones unselected; `also` adds plans the
        settings do not know but the user has disabled now, selected so they are
        enabled again. A removal lists the enabled plans (the vendor's sample).
        """
        info = self.connection.skus.get(grant.license, SkuInfo(name=grant.license))
        disabled = set(grant.attrs.get("disabled_plans", []))
        names = [*info.plans, *sorted(set(also) - set(info.plans))]
        plans = [{"SERVICE_NAME": plan, "IS_SELECTED": plan not in disabled, "TYPE": "User",
                  "SERVICE_NAME_DISP_VAL": plan}
                 for plan in names if not (for_removal and plan in disabled)]
        return {"ACCOUNT_SKU_ID": grant.license, "ACCOUNT_SKU_DISP_VAL": info.name,
                "IS_SELECTED": True, "ServicePlans": plans}

    def _request(self, key: list[Any], changes: list[Change]) -> Action:
        kind, domain = key[0], key[1]
        users = sorted({c.grant.subject.id for c in changes})
        accounts = [self._account(user) for user in users]
        item: dict[str, Any]
        verb: Literal["assign", "update", "remove"]
        if kind in ("assign", "update"):
            action = (self.connection.update_action or self.connection.assign_action
                      if kind == "update" else self.connection.assign_action)
            item = {"RequestAction": action,
                    "Subject": "Assign O365 licenses", "accounts": accounts,
                    "selectedO365Licenses": {"accountSKUDetailsList": [key[2]]}}
            verb, phase = (("update", PHASE_UPDATE) if kind == "update"
                           else ("assign", PHASE_TAKE))
        elif kind == "remove":
            item = {"RequestAction": REMOVE, "Subject": "Remove O365 licenses",
                    "accounts": accounts, "isRemoveAllO365License": "false",
                    "selectedO365Licenses": {"accountSKUDetailsList": [key[2]]}}
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

    def _account(self, user: str) -> dict[str, str]:
        if "@" in user:
            return {self.connection.upn_account_key: user}
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
        if not isinstance(answer, dict) or str(answer.get("status")).lower() not in SUCCESS \
                or answer.get("requestId") is None:
            message = answer.get("statusMessage") if isinstance(answer, dict) else None
            return Outcome(status=OutcomeStatus.FAILED,
                           message=f"ADManager refused the request (status "
                                   f"{answer.get('status') if isinstance(answer, dict) else '?'})"
                                   f": {message or answers}")
        return Outcome(status=OutcomeStatus.PENDING, vendor_request_id=str(answer["requestId"]),
                       message="workflow request created; waiting for approval")

    async def resolve_pending(self, requests: Sequence[PendingRequest]) -> list[Resolution]:
        """Asks ADManager where each request stands (concurrently, bounded by the limits).

        Remembers those still waiting: their users get no remove-all request, and the
        seats their assignments will take count as used, until they are settled.
        """
        resolutions = list(await asyncio.gather(*(self._resolve(r) for r in requests)))
        for resolution in resolutions:
            request = resolution.request
            if resolution.status == "pending":
                self._waiting[request.request_id] = request
            else:
                self._waiting.pop(request.request_id, None)
        return resolutions

    async def _resolve(self, pending: PendingRequest) -> Resolution:
        spec = RequestSpec("GET", self.connection.status_path, params=self._params(
            pending.action.params["domain"], requestId=pending.request_id))
        data = _status_ok(await self.http.send(spec, repeatable=True),
                          f"status of workflow request {pending.request_id}")
        state = str(data.get("requestStatus", "")).lower()
        status: RequestState = ("executed" if state == "executed" else
                                "rejected" if state in {"rejected", "failed"} else "pending")
        return Resolution(request=pending, status=status,
                          message=str(data.get("statusMessage", "")))

    async def confirm(self, action: Action) -> bool | None:
        """After a lost answer: True when the users already hold what the request asked.

        Never False: the request may exist and wait for approval, so "not visible yet"
        cannot mean "not filed"; the change stays held back until it shows.
        """
        domain = str(action.params["domain"])
        rows = await self._users_of(domain)
        held: dict[str, dict[str, list[str]]] = {}
        for row in rows:
            licences = {str(h["ACCOUNT_SKU_ID"]): sorted(h.get("DISABLED_SERVICE_PLANS") or [])
                        for h in row.get(self.connection.licence_column) or []}
            held[str(row.get("USER_PRINCIPAL_NAME", ""))] = licences
            held.setdefault(str(row.get("DISPLAY_NAME", "")), licences)
        for change in action.changes:
            grant = change.grant
            now = held.get(grant.subject.id, {})
            if change.kind is ChangeKind.REMOVE:
                done = grant.license not in now
            else:
                done = now.get(grant.license) == sorted(grant.attrs.get("disabled_plans", []))
            if not done:
                return None
        return True


def _status_ok(response: Any, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise VendorError(f"ADManager {what}: HTTP {response.status_code}, not JSON") from None
    if not isinstance(data, dict) or str(data.get("status", "")).lower() not in SUCCESS:
        message = data.get("statusMessage") if isinstance(data, dict) else data
        raise VendorError(f"ADManager {what} failed: {message}")
    return data
