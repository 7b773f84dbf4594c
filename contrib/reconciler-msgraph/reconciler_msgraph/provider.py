"""Microsoft 365 through Microsoft Graph: which users and groups hold which SKU.

Reads are three listings: `GET /subscribedSkus` (the pools: `prepaidUnits.enabled` is the
capacity, `consumedUnits` what is used), the users with their licence states, and the
groups with theirs (group-based licensing), paged by `@odata.nextLink`. Changes are one
`assignLicense` per user or group carrying all of its adds and removes, sent 20 to a
JSON `$batch`; each batch item's status is handled on its own.

Licence ids in the YAML are SKU part numbers (`ENTERPRISEPACK`); users are named by
userPrincipalName or object id, groups by object id. A licence a user inherits from a
group is the group's grant, not the user's: the user's own list holds what was
assigned to them directly (Graph refuses to remove an inherited one from the user).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from reconciler.errors import Problem, VendorError
from reconciler.http import json_object, retry_after_seconds
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
)
from reconciler.offloop import off_loop
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE, Provider, fingerprint
from reconciler_msgraph.auth import Tokens
from reconciler_msgraph.connection import GRAPH_URL, GraphConnection
from reconciler_msgraph.facts import (
    DISABLED_PLANS,
    GraphFacts,
    Holder,
    Sku,
    group_of,
    sku_of,
    user_of,
)
from reconciler_msgraph.requests import (
    BATCH_PATH,
    Assignment,
    assignments_of,
    batch_call,
)

SeatKey = tuple[str, str, str]
"""(pool, subject kind, subject id), as `CurrentState.seats_added` keys its counts."""
USER_FIELDS = "id,userPrincipalName,usageLocation,assignedLicenses,licenseAssignmentStates"
GROUP_FIELDS = "id,displayName,assignedLicenses"
ITEM_ROUNDS = 8
"""Times a batch's throttled or failed items are sent again before the action fails."""


class GraphProvider(Provider):
    """Microsoft 365 licences (users and groups) through Microsoft Graph v1.0."""

    id = "msgraph"
    connection_model = GraphConnection
    default_base_url = GRAPH_URL
    subject_kinds = frozenset({"user", "group"})
    path_kinds = frozenset({"user", "group"})

    connection: GraphConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens = Tokens(self.connection, self.hosts, self.secrets)

    @classmethod
    def normalize_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """`disabled_plans` as a sorted list of names, left out when empty."""
        normal = dict(attrs)
        plans = sorted(set(normal.pop(DISABLED_PLANS, None) or []))
        return {**normal, DISABLED_PLANS: plans} if plans else normal

    # ---- requests ------------------------------------------------------------------
    async def _send(self, call: Call, *, repeatable: bool = True) -> httpx.Response:
        return await self.tokens.send(self.http, call, repeatable=repeatable)

    async def _get(self, call: Call) -> dict[str, Any]:
        response = await self._send(call)
        if not response.is_success:
            raise VendorError(describe(response), status=response.status_code)
        return json_object(response)

    async def _list(self, *path: str, select: str) -> list[dict[str, Any]]:
        """Every page of a collection, following `@odata.nextLink` on Graph's own host."""
        call = Call.to("GET", *path, query={"$select": select,
                                            "$top": str(self.connection.page_size)})
        rows: list[dict[str, Any]] = []
        while True:
            body = await self._get(call)
            rows.extend(body.get("value") or [])
            link = body.get("@odata.nextLink")
            if not link:
                return rows
            call = self._next_call(str(link))

    def _next_call(self, link: str) -> Call:
        """The call a nextLink names; refused unless it stays under the base URL (the
        token goes only where the YAML said Graph is)."""
        base = str(self.http.client.base_url).rstrip("/")
        parts = urlsplit(link)
        if not link.startswith(base + "/"):
            raise VendorError(f"Graph's @odata.nextLink leaves {base}: refusing to follow it")
        rest = parts.path[len(urlsplit(base).path):]
        segments = [unquote(s) for s in rest.strip("/").split("/")]
        return Call.to("GET", *segments, query=parse_qsl(parts.query, keep_blank_values=True))

    # ---- facts ---------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        skus = {sku.part_number: sku for sku in map(
            sku_of, (await self._get(Call.to("GET", "subscribedSkus"))).get("value") or [])}
        users = await self._list("users", select=USER_FIELDS)
        groups = await self._list("groups", select=GROUP_FIELDS)
        facts, grants, pools, fingerprints = await off_loop(
            self._state, desired, skus, users, groups)
        added, removed = await self._seats(desired, facts, grants)
        return CurrentState(provider=self.id, grants=tuple(grants), pools=tuple(pools),
                            fingerprints=fingerprints, seats_added=added,
                            seats_removed=removed, facts=facts)

    def _state(self, desired: ProviderDesired, skus: dict[str, Sku],
               users: list[dict[str, Any]], groups: list[dict[str, Any]],
               ) -> tuple[GraphFacts, list[Grant], list[PoolState], dict[str, str]]:
        """Facts, grants, pools and fingerprints from the SKU, user and group rows
        (built off the event loop)."""
        named = {d.subject.id for d in desired.subjects if d.subject.kind == "user"}
        by_upn = {n.lower(): n for n in named}
        holders: dict[tuple[str, str], Holder] = {}
        for row in users:
            upn = str(row.get("userPrincipalName") or row["id"])
            subject_id = row["id"] if row["id"] in named else by_upn.get(upn.lower(), upn)
            holder = user_of(row, str(subject_id))
            holders[("user", holder.subject_id)] = holder
        for row in groups:
            holder = group_of(row)
            holders[("group", holder.subject_id)] = holder
        facts = GraphFacts(skus=skus, holders=holders)
        by_id = facts.sku_by_id()
        grants = []
        for holder in holders.values():
            for sku_id, disabled in holder.direct.items():
                sku = by_id.get(sku_id)
                if sku is None:
                    continue
                attrs = self.normalize_attrs({DISABLED_PLANS: sku.plan_names(disabled)})
                grants.append(Grant(provider=self.id, pool=sku.part_number,
                                    subject=Subject(kind=holder.kind, id=holder.subject_id),
                                    license=sku.part_number, attrs=attrs))
        grants.sort(key=lambda g: g.key)
        pools = [PoolState(provider=self.id, id=sku.part_number, capacity=sku.enabled,
                           used=sku.consumed) for sku in skus.values()]
        fingerprints = {
            part: fingerprint([sku.enabled, [(g.subject.kind, g.subject.id, g.attrs)
                                             for g in grants if g.pool == part]])
            for part, sku in skus.items()}
        return facts, grants, pools, fingerprints

    async def _seats(self, desired: ProviderDesired, facts: GraphFacts,
                     grants: Sequence[Grant]) -> tuple[dict[SeatKey, int], dict[SeatKey, int]]:
        """The seats a change takes or frees where that is not one per grant: Graph
        consumes one unit per user however many paths license them.

        A direct licence for a user who inherits it takes none and frees none. A licence
        removed from a group frees one per user holding it through that group alone.
        A licence added to a group takes one per direct member (group-based licensing
        is not transitive) who holds it by no path yet; the members are read only for
        the groups the YAML gives a licence they lack.
        """
        by_id = facts.sku_by_id()
        users = [h for h in facts.holders.values() if h.kind == "user"]
        added: dict[SeatKey, int] = {}
        removed: dict[SeatKey, int] = {}
        for user in users:
            for sku_id in user.inherited:
                if sku_id in by_id:
                    key = (by_id[sku_id].part_number, "user", user.subject_id)
                    added[key] = removed[key] = 0
        for group in (h for h in facts.holders.values() if h.kind == "group"):
            for sku_id in group.direct:
                if sku_id in by_id:
                    removed[(by_id[sku_id].part_number, "group", group.subject_id)] = sum(
                        1 for u in users if u.inherited.get(sku_id) == [group.object_id]
                        and sku_id not in u.direct)
        live = {g.key for g in grants}
        gaining = sorted({(g.subject.id, g.license) for g in desired.grants
                          if g.subject.kind == "group" and g.key not in live
                          and ("group", g.subject.id) in facts.holders
                          and g.license in facts.skus})
        holding = {u.object_id: {*u.direct, *u.inherited} for u in users}
        members: dict[str, list[str]] = {}
        for group_id, part in gaining:
            if group_id not in members:
                rows = await self._list("groups", group_id, "members", select="id")
                members[group_id] = [str(r["id"]) for r in rows
                                     if r.get("@odata.type") == "#microsoft.graph.user"]
            sku_id = facts.skus[part].sku_id
            added[(part, "group", group_id)] = sum(
                1 for m in members[group_id] if sku_id not in holding.get(m, set()))
        return added, removed

    def check(self, desired: ProviderDesired, current: CurrentState,
              changes: Sequence[Change] = ()) -> list[Problem]:
        """Graph's rules, before any call: the holder exists, a user receiving a licence
        has a usageLocation, disabled plans belong to their SKU. `changes` (the planner's
        diff, where the core passes it) says which grants the plan adds or updates."""
        facts: GraphFacts = current.facts
        problems: list[Problem] = []
        receiving = {c.grant.key for c in changes if c.kind is not ChangeKind.REMOVE}
        for decl in desired.subjects:
            if (decl.subject.kind, decl.subject.id) not in facts.holders:
                by = "userPrincipalName or object id" if decl.subject.kind == "user" \
                    else "object id"
                problems.append(Problem(decl.source, (
                    f"msgraph has no {decl.subject.kind} '{decl.subject.id}' in this tenant "
                    f"(by {by})")))
        live = {g.key for g in current.grants}
        missing_location: set[str] = set()
        for grant in desired.grants:
            holder = facts.holders.get((grant.subject.kind, grant.subject.id))
            sku = facts.skus.get(grant.license)
            if holder is None or sku is None:
                continue
            gets = grant.key in receiving if changes else grant.key not in live
            if holder.kind == "user" and not holder.usage_location and gets \
                    and holder.subject_id not in missing_location:
                missing_location.add(holder.subject_id)
                problems.append(Problem(grant.source, (
                    f"user '{grant.subject.id}' has no usageLocation: Microsoft 365 refuses to "
                    f"assign '{grant.license}' until it is set (PATCH the user's usageLocation)")))
            unknown = sorted(set(grant.attrs.get(DISABLED_PLANS) or []) - set(sku.plans))
            if unknown:
                problems.append(Problem(grant.source, (
                    f"'{grant.license}' has no service plan {', '.join(unknown)} "
                    f"(it has: {', '.join(sorted(sku.plans)) or 'none'})")))
        return problems

    # ---- operations ----------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        """One assignLicense per holder; holders that only give licences back go first
        (they free seats), then the rest; each phase in `$batch`es of `batch_size`."""
        facts: GraphFacts = current.facts
        per_holder: dict[tuple[str, str], list[Change]] = defaultdict(list)
        for change in changes:
            per_holder[(change.grant.subject.kind, change.grant.subject.id)].append(change)
        frees: list[tuple[Assignment, list[Change]]] = []
        takes: list[tuple[Assignment, list[Change]]] = []
        for key in sorted(per_holder):
            held = per_holder[key]
            assignment = self._assignment(facts, key, held)
            (takes if assignment.add else frees).append((assignment, held))
        planned: list[Action] = []
        size = self.connection.batch_size
        for phase, group in ((PHASE_FREE, frees), (PHASE_TAKE, takes)):
            for start in range(0, len(group), size):
                planned.append(self._action(phase, group[start:start + size], facts))
        return planned

    def _assignment(self, facts: GraphFacts, key: tuple[str, str],
                    changes: Sequence[Change]) -> Assignment:
        holder = facts.holders.get(key)
        add: dict[str, list[str]] = {}
        remove: list[str] = []
        for change in changes:
            sku = facts.skus[change.grant.license]
            if change.kind is ChangeKind.REMOVE:
                remove.append(sku.sku_id)
            else:
                names = change.grant.attrs.get(DISABLED_PLANS) or []
                add[sku.sku_id] = sorted(sku.plans[name] for name in names)
        object_id = holder.object_id if holder is not None else key[1]
        return Assignment(kind=key[0], object_id=object_id, add=add, remove=sorted(remove))

    def _action(self, phase: int, members: Sequence[tuple[Assignment, list[Change]]],
                facts: GraphFacts) -> Action:
        assignments = [a for a, _ in members]
        changes = [c for _, held in members for c in held]
        first = changes[0].grant
        if len(members) == 1:
            call = assignments[0].call()
            action_id = f"msgraph:{first.subject.kind}:{first.subject.id}:assignLicense"
        else:
            call = batch_call(assignments)
            keys = "|".join(f"{c.grant.subject.kind}:{c.grant.subject.id}" for c in changes)
            digest = hashlib.sha256(keys.encode()).hexdigest()[:12]
            action_id = f"msgraph:batch:{phase}:{digest}"
        kinds = {c.kind for c in changes}
        verb: Any = "remove" if kinds == {ChangeKind.REMOVE} else \
            "update" if kinds == {ChangeKind.UPDATE} else "assign"
        reasons = [self._reason(c, facts) for c in changes]
        return Action(
            id=action_id, verb=verb, provider=self.id, pool=first.pool, subject=first.subject,
            license=",".join(sorted({c.grant.license for c in changes})), phase=phase,
            frees=phase == PHASE_FREE, seat_delta=sum(c.seat_delta for c in changes),
            reason="; ".join(reasons), request=self.http.preview(call), changes=tuple(changes),
            repeatable=True, call=call)

    @staticmethod
    def _reason(change: Change, facts: GraphFacts) -> str:
        grant = change.grant
        text = f"{grant.subject}: {change.kind.value} {grant.license} ({change.reason})"
        holder = facts.holders.get((grant.subject.kind, grant.subject.id))
        sku = facts.skus.get(grant.license)
        if change.kind is ChangeKind.REMOVE and holder is not None and sku is not None \
                and sku.sku_id in holder.inherited:
            groups = ", ".join(holder.inherited[sku.sku_id])
            text += (f"; the user keeps {grant.license} through group {groups}: Graph cannot "
                     "remove an inherited licence from the user, remove it from the group")
        return text

    async def execute(self, action: Action) -> Outcome:
        """Sends the planned call; each batch item that is throttled (429) or fails on
        the server (5xx) is sent again after `Retry-After`; one refused is read back, and
        counts as done when the holder already shows its effect."""
        pending = assignments_of(action.call)
        settled_already = 0
        failures: list[str] = []
        call = action.call
        for _ in range(ITEM_ROUNDS):
            answers = await self._answers(call, pending)
            retry: dict[str, Assignment] = {}
            wait = 0.0
            for item_id, (status, body, after) in answers.items():
                assignment = pending[item_id]
                if 200 <= status < 300:
                    continue
                if status == 429 or status >= 500:
                    retry[item_id] = assignment
                    wait = max(wait, after or 0.0)
                    continue
                if await self._holds(assignment):
                    settled_already += 1
                else:
                    failures.append(f"{assignment.kind} {assignment.object_id}: "
                                    f"{_graph_message(body, status)}")
            if not retry:
                break
            call = batch_call(list(retry.values())) if len(retry) > 1 \
                else next(iter(retry.values())).call()
            pending = {("1" if len(retry) == 1 else str(n)): a
                       for n, a in enumerate(retry.values(), start=1)}
            await self.http.sleep(wait)
        else:
            failures.append(f"{len(pending)} request(s) still throttled after {ITEM_ROUNDS} rounds")
        if failures:
            return Outcome(status=OutcomeStatus.FAILED, message="; ".join(failures))
        total = len(assignments_of(action.call))
        if settled_already == total:
            return Outcome(status=OutcomeStatus.ALREADY, message="already in place")
        return Outcome(status=OutcomeStatus.SUCCEEDED)

    async def _answers(self, call: Call, pending: Mapping[str, Assignment]
                       ) -> dict[str, tuple[int, Any, float | None]]:
        """Item id → (status, body, Retry-After seconds), for a batch or a single call."""
        response = await self._send(call)
        if call.path != BATCH_PATH:
            return {"1": (response.status_code, json_object(response),
                          retry_after_seconds(response))}
        if not response.is_success:
            # The batch itself was refused or failed: every item shares its status.
            body, after = json_object(response), retry_after_seconds(response)
            return {item_id: (response.status_code, body, after) for item_id in pending}
        answers: dict[str, tuple[int, Any, float | None]] = {}
        for item in json_object(response).get("responses") or []:
            headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
            after = headers.get("retry-after")
            try:
                seconds = float(after) if after is not None else None
            except ValueError:
                seconds = None
            answers[str(item.get("id"))] = (int(item.get("status", 0)), item.get("body"), seconds)
        missing = set(pending) - set(answers)
        if missing:
            raise VendorError(f"Graph's $batch answer lacks items {sorted(missing)}")
        return answers

    async def _holds(self, assignment: Assignment) -> bool:
        """Reads the holder back: does it show the request carried out?"""
        if assignment.kind == "user":
            row = await self._get(Call.to("GET", "users", assignment.object_id,
                                          query={"$select": USER_FIELDS}))
            return assignment.holds(user_of(row, assignment.object_id).direct)
        row = await self._get(Call.to("GET", "groups", assignment.object_id,
                                      query={"$select": GROUP_FIELDS}))
        return assignment.holds(group_of(row).direct)

    async def confirm(self, action: Action) -> bool | None:
        """After a crash: every holder of the action shows its request carried out."""
        for assignment in assignments_of(action.call).values():
            if not await self._holds(assignment):
                return False
        return True


def _graph_message(body: Any, status: int) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"Graph {error.get('code', 'error')}: {error.get('message', '')} (HTTP {status})"
    return f"HTTP {status} from Graph"


def describe(response: httpx.Response) -> str:
    """Graph's error envelope `{"error": {"code", "message"}}` as one line."""
    return _graph_message(json_object(response), response.status_code)
