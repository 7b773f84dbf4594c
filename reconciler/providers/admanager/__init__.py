"""ManageEngine ADManager Plus: O365 licences of AD users, changed by workflow requests.

A change here is asynchronous: `CreateWorkFlowRequest` files a request that does
nothing until it is approved and executed inside ADManager. So `execute` returns
PENDING with the request id; the journal keeps it; the next plan asks where it
stands (`resolve_pending`) and holds the change back while it is pending. Creating
a request is not repeatable (a second call files a second request), so it is never
retried after an unknown outcome: the request is looked up by the marker in its
Description instead (see `workflow.py`).

Pools are `<domain>/<SKU>`; a user names its domain in `attrs: {domain: ...}`.
Disabled service plans are the grant's `attrs.disabled_plans`.

Inferred (see docs/providers/admanager.md), each in one setting:
- the assign and update action names (`assign_action`, `update_action`);
- the request-status call (`status_path`) and the request search (`requests_path`);
- the SearchUser licence column (`licence_column`) and rows key (`users_key`);
- the `accounts` key for a user named by UPN (`upn_account_key`);
- SKU display names and service plans (`skus`), and seats per SKU (`capacity`).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import Field

from reconciler.errors import Problem, VendorError
from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    Outcome,
    OutcomeStatus,
    PoolState,
    ProviderDesired,
    Subject,
    literal_path,
)
from reconciler.offloop import off_loop
from reconciler.providers.admanager import answers
from reconciler.providers.admanager.workflow import (
    Kind,
    SkuInfo,
    create_call,
    digest_of,
    group,
    item_of,
    marker,
    request_item,
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

__all__ = ["ADManagerConnection", "ADManagerFacts", "ADManagerProvider", "SkuInfo"]

DEFAULT_SKUS: dict[str, SkuInfo] = {
    "ENTERPRISEPACK": SkuInfo(name="Office 365 Enterprise E3", plans=(
        "KAIZALA_O365_P3", "TEAMS1", "EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE")),
    "POWER_BI_PRO": SkuInfo(name="Power BI Pro", plans=("BI_AZURE_P2",)),
    "VISIOCLIENT": SkuInfo(name="Visio Plan 2", plans=("VISIO_CLIENT_SUBSCRIPTION",)),
}
UPN = re.compile(r"[^@\s]+@[^@\s]+")


class ADManagerConnection(Connection):
    """How to reach ADManager Plus (base URL without /RestAPI)."""

    base_url_env: str | None = "ADMANAGER_BASE_URL"
    auth_token_env: str
    product_name: str = "RESTAPI"
    assign_action: str = "ASSIGN_O365_LICENSES"
    update_action: str | None = None
    """RequestAction that changes a held SKU's service plans; unset: `assign_action`."""
    status_path: str = "/RestAPI/WorkflowRequestStatus"
    requests_path: str | None = "/RestAPI/WorkflowRequests"
    """Inferred request search by text (finds a request whose answer was lost); None:
    the server has none, and a lost answer stays in doubt until its effect shows."""
    licence_column: str = "O365_LICENSES"
    users_key: str = "UsersList"
    upn_account_key: str = "userPrincipalName"
    page_size: int = Field(default=100, ge=1, le=1000)
    capacity: dict[str, int] = Field(default_factory=dict)
    skus: dict[str, SkuInfo] = Field(default_factory=lambda: dict(DEFAULT_SKUS))


@dataclass(frozen=True)
class ADManagerFacts:
    """What `check` needs from a read: the users found, and display names shared."""

    users: frozenset[tuple[str, str]] = frozenset()
    """(domain, name) of every user, named as reconciler names them."""
    homonyms: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """(domain, display name) → the UPNs of the users sharing it."""


class ADManagerProvider(Provider):
    id = "admanager"
    connection_model = ADManagerConnection
    default_base_url = "http://localhost:8080"
    subject_kinds = frozenset({"user"})

    connection: ADManagerConnection

    # ---- declarations --------------------------------------------------------------
    @classmethod
    def subject_id_problem(cls, kind: str, subject_id: str) -> str | None:
        """A user is a display name or a UPN; an id with `@` must be a whole UPN."""
        if "@" in subject_id and not UPN.fullmatch(subject_id):
            return "an ADManager user with '@' in its id must be a UPN (name@domain)"
        return super().subject_id_problem(kind, subject_id)

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

    # ---- sending -------------------------------------------------------------------
    def _query(self, domain: str, **extra: str) -> dict[str, str]:
        return {"domainName": domain, "PRODUCT_NAME": self.connection.product_name, **extra}

    async def _send(self, call: Call, *, repeatable: bool) -> httpx.Response:
        """The AuthToken goes in the query at send time; it is never part of a call."""
        token = self.secrets.get(self.connection.auth_token_env)
        return await self.http.send(call, repeatable=repeatable, query={"AuthToken": token})

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
        return await off_loop(self._state, domains, pages, named)

    def _state(self, domains: list[str], pages: list[list[dict[str, Any]]],
               named: set[str]) -> CurrentState:
        """The state the users' rows describe (built off the event loop)."""
        grants: list[Grant] = []
        holders: Counter[str] = Counter()
        users: set[tuple[str, str]] = set()
        homonyms: dict[tuple[str, str], list[str]] = {}
        for domain, rows in zip(domains, pages, strict=True):
            shared = Counter(str(row.get("DISPLAY_NAME", "")) for row in rows)
            for row in rows:
                upn = str(row.get("USER_PRINCIPAL_NAME", ""))
                display = str(row.get("DISPLAY_NAME", ""))
                if shared[display] > 1:
                    homonyms.setdefault((domain, display), []).append(upn)
                name = upn if upn in named or shared[display] > 1 else display
                users.add((domain, name))
                for sku, disabled in answers.licences(row, self.connection.licence_column).items():
                    holders[f"{domain}/{sku}"] += 1
                    attrs = self.normalize_attrs({"domain": domain, "disabled_plans": disabled})
                    grants.append(Grant(provider=self.id, pool=f"{domain}/{sku}", license=sku,
                                        attrs=attrs, subject=Subject(kind="user", id=name)))
        pools = [
            PoolState(provider=self.id, id=f"{domain}/{sku}", name=info.name,
                      capacity=self.connection.capacity.get(f"{domain}/{sku}",
                                                            self.connection.capacity.get(sku)),
                      used=holders[f"{domain}/{sku}"])
            for domain in domains
            for sku, info in sorted(self.connection.skus.items())
        ]
        by_pool: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for grant in grants:
            by_pool[grant.pool].append((grant.subject.id, grant.attrs.get("disabled_plans", [])))
        fingerprints = {pool.id: fingerprint(sorted(by_pool[pool.id])) for pool in pools}
        facts = ADManagerFacts(users=frozenset(users), homonyms={
            key: tuple(sorted(upns)) for key, upns in homonyms.items()})
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints, facts=facts)

    async def _users_of(self, domain: str) -> list[dict[str, Any]]:
        """Every user of a domain, paged with range/startIndex at the largest page.

        With a total (`count`, or `Count`) the other pages are fetched concurrently and
        the rows must add up to it (the directory moved during the read otherwise: a
        user missed is a seat miscounted). Without one, pages follow each other until
        a short page. A server that caps `range` answers a short first page: the rest
        is paged at that size.
        """
        what = f"SearchUser in {domain}"
        first = await self._user_page(domain, 1)
        step = len(first.rows) or self.connection.page_size
        if first.total is None:
            rows = list(first.rows)
            page = first
            while len(page.rows) == step and page.rows:
                page = await self._user_page(domain, len(rows) + 1)
                rows.extend(page.rows)
            return rows
        starts = range(1 + step, first.total + 1, step)
        rest = await asyncio.gather(*(self._user_page(domain, start) for start in starts))
        rows = [row for page in (first, *rest) for row in page.rows]
        if len(rows) != first.total:
            raise VendorError(f"ADManager {what}: read {len(rows)} users but the server "
                              f"counts {first.total}; run the plan again")
        return rows

    async def _user_page(self, domain: str, start: int) -> answers.UserPage:
        call = Call.to("GET", *literal_path("/RestAPI/SearchUser"), query=self._query(
            domain, range=str(self.connection.page_size), startIndex=str(start)))
        response = await self._send(call, repeatable=True)
        return answers.user_page(response, f"SearchUser in {domain}", self.connection.users_key)

    def check(self, desired: ProviderDesired, current: CurrentState,
              changes: Sequence[Change]) -> list[Problem]:
        """Unknown or ambiguous users, and service plans the SKU settings do not list
        (a request could not disable them, so the plan would ask again forever)."""
        problems = []
        facts = current.facts
        if isinstance(facts, ADManagerFacts):
            for declared in desired.subjects:
                domain = str(declared.attrs.get("domain", ""))
                name = declared.subject.id
                if (domain, name) in facts.homonyms:
                    upns = ", ".join(facts.homonyms[(domain, name)])
                    problems.append(Problem(declared.source, f"admanager: display name '{name}' "
                                            f"is shared by several users in '{domain}' ({upns}); "
                                            "name the user by UPN"))
                elif (domain, name) not in facts.users:
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

    # ---- operations ------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        """One request per (kind, domain, SKU selection), listing every user it concerns."""
        return [self._request(kind, domain, chosen, members)
                for kind, domain, chosen, members in group(changes, self.connection.skus)]

    def _request(self, kind: Kind, domain: str, chosen: dict[str, Any],
                 changes: list[Change]) -> Action:
        users = sorted({c.grant.subject.id for c in changes})
        name = (self.connection.update_action or self.connection.assign_action
                if kind == "update" else self.connection.assign_action)
        item = request_item(kind, chosen, users, action_name=name,
                            upn_key=self.connection.upn_account_key)
        digest = digest_of(item, domain)
        item = {"RequestAction": item.pop("RequestAction"), "Subject": item.pop("Subject"),
                "Description": marker(digest), **item}
        call = create_call(item, domain, self.connection.product_name)
        phase = {"remove": PHASE_FREE, "update": PHASE_UPDATE, "assign": PHASE_TAKE}[kind]
        who = users[0] if len(users) == 1 else f"{len(users)} users ({', '.join(users)})"
        return Action(
            id=f"admanager:{domain}:{kind}:{digest[:10]}", verb=kind, provider=self.id,
            pool=changes[0].grant.pool, subject=Subject(kind="user", id=users[0]),
            license=",".join(sorted({c.grant.license for c in changes})), phase=phase,
            frees=kind == "remove", seat_delta=sum(c.seat_delta for c in changes),
            reason=f"{who}: " + "; ".join(sorted({c.reason for c in changes})),
            request=self.http.preview(call), changes=tuple(changes), repeatable=False,
            call=call,
        )

    async def execute(self, action: Action) -> Outcome:
        """Files the workflow request `action.call` as planned: PENDING with its id.

        A lost answer (dropped connection, timeout) is not guessed at: the request is
        looked up by its marker. Found waiting → PENDING with the id found; its effect
        already visible → SUCCEEDED; neither → FAILED (not filed), planned again.
        When the lookup itself fails, the transport error goes to the applier, which
        asks `confirm` and otherwise leaves the action in doubt for the next plan.
        """
        try:
            response = await self._send(action.call, repeatable=False)
        except VendorError as lost:
            if lost.code != "transport":
                raise
            return await self._after_lost_answer(action, lost)
        answer = answers.created(response)
        if answer.request_id is None:
            return Outcome(status=OutcomeStatus.FAILED, message=answer.message)
        return Outcome(status=OutcomeStatus.PENDING, vendor_request_id=answer.request_id,
                       message="workflow request created; waiting for approval")

    async def _after_lost_answer(self, action: Action, lost: VendorError) -> Outcome:
        if self.connection.requests_path is None:
            raise lost
        try:
            filed = await self._filed(action)
        except VendorError:
            raise lost from None
        waiting = sorted((r for r in filed if r.state == "pending"),
                         key=lambda r: (len(r.request_id), r.request_id))
        if waiting:
            found = waiting[-1].request_id
            return Outcome(status=OutcomeStatus.PENDING, vendor_request_id=found,
                           message=f"answer lost ({lost}); request {found} found at ADManager, "
                                   "waiting for approval")
        if await self._visible(action):
            return Outcome(status=OutcomeStatus.SUCCEEDED,
                           message=f"answer lost ({lost}); the change is visible at ADManager")
        return Outcome(status=OutcomeStatus.FAILED,
                       message=f"answer lost ({lost}); ADManager holds no such request, so it "
                               "was not filed; the next plan files it")

    async def resolve_pending(self, requests: Sequence[PendingRequest]) -> list[Resolution]:
        """Asks ADManager where each request stands (concurrently, bounded by the limits)."""
        return list(await asyncio.gather(*(self._resolve(r) for r in requests)))

    async def _resolve(self, pending: PendingRequest) -> Resolution:
        domain = pending.action.call.query_value("domainName") or ""
        call = Call.to("GET", *literal_path(self.connection.status_path),
                       query=self._query(domain, requestId=pending.request_id))
        state = answers.request_state(await self._send(call, repeatable=True),
                                      pending.request_id)
        return Resolution(request=pending, status=state.state, message=state.message)

    async def _filed(self, action: Action) -> list[answers.RequestState]:
        """Requests at ADManager whose Description carries this action's marker."""
        assert self.connection.requests_path is not None
        wanted = str(item_of(action.call).get("Description", ""))
        domain = action.call.query_value("domainName") or ""
        call = Call.to("GET", *literal_path(self.connection.requests_path),
                       query=self._query(domain, searchText=wanted, range="100",
                                         startIndex="1"))
        found = answers.request_list(await self._send(call, repeatable=True),
                                     f"request search in {domain}")
        return [r for r in found if r.description == wanted]

    async def _visible(self, action: Action) -> bool:
        """Do the users hold now what the request asks (read from SearchUser)?"""
        held = await self._holdings(action.call.query_value("domainName") or "")
        return _shows(action, held)

    async def _holdings(self, domain: str) -> dict[str, dict[str, list[str]]]:
        """User (by UPN, and by display name) → SKU → disabled plans, from one paged read."""
        held: dict[str, dict[str, list[str]]] = {}
        for row in await self._users_of(domain):
            licences = answers.licences(row, self.connection.licence_column)
            held[str(row.get("USER_PRINCIPAL_NAME", ""))] = licences
            held.setdefault(str(row.get("DISPLAY_NAME", "")), licences)
        return held

    async def confirm(self, action: Action) -> bool | None:
        """After a crash: True when the change is visible; False when it is not and no
        request for it waits at ADManager (never filed, or rejected: plan it again).

        None while a request with this action's marker is still waiting for an
        approver (it is neither done nor safe to file again; the next plan asks again),
        or when the server offers no request search (`requests_path: null`).
        """
        return (await self.confirm_all([action]))[0]

    async def confirm_all(self, actions: Sequence[Action]) -> list[bool | None]:
        """`confirm` for many actions, reading each domain's users once for all of them
        (one paged SearchUser run, not one per uncertain action)."""
        domains = sorted({a.call.query_value("domainName") or "" for a in actions})
        read = await asyncio.gather(*(self._holdings(domain) for domain in domains))
        holdings = dict(zip(domains, read, strict=True))
        verdicts: list[bool | None] = []
        for action in actions:
            if _shows(action, holdings[action.call.query_value("domainName") or ""]):
                verdicts.append(True)
            elif self.connection.requests_path is None:
                verdicts.append(None)
            else:
                filed = await self._filed(action)
                verdicts.append(None if any(r.state == "pending" for r in filed) else False)
        return verdicts


def _shows(action: Action, held: Mapping[str, Mapping[str, list[str]]]) -> bool:
    """Whether the users hold what the action's request asks for."""
    for change in action.changes:
        grant = change.grant
        now = held.get(grant.subject.id, {})
        if change.kind is ChangeKind.REMOVE:
            if grant.license in now:
                return False
        elif now.get(grant.license) != sorted(grant.attrs.get("disabled_plans", [])):
            return False
    return True
