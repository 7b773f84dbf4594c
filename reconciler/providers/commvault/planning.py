"""Pure planning for a CommCell: problems (`check`) and calls (`actions`) from typed facts.

Commvault has no "assign one license" call: `Client/License/Reconfigure` re-applies
**every** license the client's installed agents need. To reach a mixed target (some
licenses back, others still released) the plan re-applies first, then releases what
the client should not hold, and says why in each action.

Phases: plain releases first (PHASE_FREE), then every re-apply (PHASE_REAPPLY), then
the releases that undo what a re-apply over-took (PHASE_RELEASE_AFTER_REAPPLY).

Every request is built here, once, and sent as built: a release names its license by
`platformType` and `appType` (both required by the release-license reference) and by
`licenseType` when any client's license read showed it. A license no client holds at
plan time (first consumed by the re-apply) is named by the appType of the client's
agent that consumes it: the reference defines appType as the agent's application id,
and its JSON template omits licenseType. So no request has to be completed later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import Problem
from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    CurrentState,
    ProviderDesired,
    RequestPreview,
    Subject,
)
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE
from reconciler.providers.commvault.connection import CommvaultConnection
from reconciler.providers.commvault.facts import ClientFacts, CommvaultFacts

PHASE_REAPPLY = PHASE_TAKE - 50
PHASE_RELEASE_AFTER_REAPPLY = PHASE_TAKE + 50
RELEASE_PATH = ("Client", "License", "Release")
REAPPLY_PATH = ("Client", "License", "Reconfigure")

Preview = Callable[[Call], RequestPreview]


def facts_of(current: CurrentState) -> CommvaultFacts:
    """The typed facts `read` put into the state; anything else is a programming error."""
    if not isinstance(current.facts, CommvaultFacts):
        raise TypeError("commvault: the current state carries no CommvaultFacts (not from read)")
    return current.facts


def needed(client: ClientFacts, connection: CommvaultConnection) -> set[str]:
    """Every license a re-apply would consume on this client."""
    if client.agents is None:
        raise RuntimeError(f"commvault: agents of client '{client.name}' were not read "
                           "(only named clients can be re-applied)")
    table = connection.agent_licenses
    return {name for agent in client.agents for name in table.get(agent.name, [])}


# ---- check ------------------------------------------------------------------------------
def problems(desired: ProviderDesired, current: CurrentState,
             connection: CommvaultConnection) -> list[Problem]:
    """Clients must exist, only licenses their agents use can be re-applied, and the
    re-applies' peak must fit the CommCell."""
    facts = facts_of(current)
    found: list[Problem] = []
    held = {(g.subject.id, g.license) for g in current.grants}
    for grant in desired.grants:
        client = facts.clients.get(grant.subject.id)
        if client is None:
            found.append(Problem(grant.source, f"commvault: no client named "
                                                f"'{grant.subject.id}' in the CommCell"))
        elif (grant.subject.id, grant.license) not in held and grant.license not in (
                needed(client, connection)):
            agents = ", ".join(a.name for a in client.agents or ()) or "none"
            found.append(Problem(grant.source, f"commvault: client '{grant.subject.id}' has "
                                                f"no agent that consumes '{grant.license}' "
                                                f"(agents: {agents}), so a re-apply cannot "
                                                "give it back"))
    found.extend(_peak_problems(desired, current, facts, connection))
    return found


def _peak_problems(desired: ProviderDesired, current: CurrentState, facts: CommvaultFacts,
                   connection: CommvaultConnection) -> list[Problem]:
    """A re-apply briefly takes seats the client will release again: they must exist.

    Seats in use just before the releases that follow the re-applies: today's, minus
    what plain releases (phase FREE, first) give back, plus every license a re-apply
    consumes that its client does not hold. Frees of unnamed clients in pruned pools
    are not subtracted: the figure can only be too high, never too low.
    """
    named = {d.subject.id: d for d in desired.subjects if d.subject.kind == "client"}
    wanted: dict[str, set[str]] = defaultdict(set)
    for grant in desired.grants:
        wanted[grant.subject.id].add(grant.license)
    held: dict[str, set[str]] = defaultdict(set)
    for grant in current.grants:
        held[grant.subject.id].add(grant.license)
    peak = {pool.id: pool.used for pool in current.pools}
    why: dict[str, list[str]] = defaultdict(list)
    for name, decl in sorted(named.items()):
        client = facts.clients.get(name)
        if client is None:
            continue
        if wanted[name] - held[name]:
            for license in sorted(needed(client, connection) - held[name]):
                peak[license] = peak.get(license, 0) + 1
                why[license].append(name)
        elif not decl.protected:
            for license in held[name] - wanted[name]:
                peak[license] -= 1
    return [
        Problem(desired.source, f"commvault: re-applying licenses on {', '.join(why[pool.id])} "
                                f"needs {peak[pool.id]} seats of '{pool.id}' at once but the "
                                f"CommCell has {pool.capacity} ({pool.used} in use); a "
                                "re-apply consumes every license the client's agents need")
        for pool in current.pools
        if pool.capacity is not None and peak.get(pool.id, 0) > pool.capacity
    ]


# ---- actions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Planned:
    """An action and the licenses it takes (re-apply) or frees (release): for linking."""

    action: Action
    takes: frozenset[str] = frozenset()
    frees: frozenset[str] = frozenset()


def actions(changes: Sequence[Change], current: CurrentState,
            connection: CommvaultConnection, preview: Preview) -> list[Action]:
    """Per client: releases only, or one re-apply and the releases it makes necessary."""
    facts = facts_of(current)
    by_client: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_client[change.grant.subject.id].append(change)
    held: dict[str, set[str]] = defaultdict(set)
    for grant in current.grants:
        held[grant.subject.id].add(grant.license)
    builder = _Builder(facts, connection, preview)
    planned: list[_Planned] = []
    for name, client_changes in sorted(by_client.items()):
        planned.extend(builder.client(facts.clients[name], client_changes, held[name]))
    return _reapplies_wait_for_frees(planned, current)


def _reapplies_wait_for_frees(planned: list[_Planned], current: CurrentState) -> list[Action]:
    """A re-apply waits for the plain releases of every pool it takes a seat in.

    The planner links takes to frees by the action's one `pool`; a re-apply takes
    seats in several, so they are linked here. Where a pool has room for every
    re-apply without the frees, no link is made (a failed free then skips nothing it
    did not need).
    """
    capacity = {pool.id: (pool.capacity, pool.used) for pool in current.pools}
    takers: dict[str, int] = defaultdict(int)
    freers: dict[str, list[Action]] = defaultdict(list)
    for item in planned:
        for license in item.takes:
            takers[license] += 1
        for license in item.frees:
            freers[license].append(item.action)
    linked: list[Action] = []
    for item in planned:
        action = item.action
        tight = set()
        for license in item.takes:
            limit, used = capacity.get(license, (None, 0))
            if limit is None or used + takers[license] > limit:
                tight.add(license)
        frees = sorted({other.id for license in tight for other in freers[license]
                        if other.phase < action.phase})
        linked.append(action.model_copy(update={"depends_on": tuple(frees)})
                      if frees else action)
    return linked


class _Builder:
    """Builds one client's actions; holds only this call's inputs, never across calls."""

    def __init__(self, facts: CommvaultFacts, connection: CommvaultConnection,
                 preview: Preview) -> None:
        self.facts = facts
        self.connection = connection
        self.preview = preview

    def client(self, client: ClientFacts, changes: list[Change],
               held: set[str]) -> list[_Planned]:
        adds = sorted(c.grant.license for c in changes if c.kind is ChangeKind.ADD)
        removes = {c.grant.license: c for c in changes if c.kind is ChangeKind.REMOVE}
        subject = Subject(kind="client", id=client.name)
        if not adds:
            platforms = {self._info(client, name)["platformType"] for name in held}
            if held and set(removes) == held and len(platforms) == 1:
                return [self._release_all(subject, client, sorted(held),
                                          list(removes.values()), platforms.pop())]
            return [self._release(subject, client, lic, [change], PHASE_FREE, (), change.reason)
                    for lic, change in sorted(removes.items())]
        reapply = self._reapply(subject, client, adds, held,
                                [c for c in changes if c.kind is ChangeKind.ADD])
        planned = [reapply]
        keep = held - set(removes) | set(adds)
        for license in sorted((needed(client, self.connection) | held) - keep):
            change = removes.get(license)
            why = ("re-apply consumes every license the client's agents need; "
                   f"'{license}' is not declared for it, so it is released again")
            planned.append(self._release(subject, client, license, [change] if change else [],
                                         PHASE_RELEASE_AFTER_REAPPLY, (reapply.action.id,),
                                         f"{change.reason}; {why}" if change else why))
        return planned

    def _reapply(self, subject: Subject, client: ClientFacts, adds: list[str],
                 held: set[str], changes: list[Change]) -> _Planned:
        body = {"clientInfo": {"clientId": client.id},
                "platformTypes": list(self.connection.platform_types)}
        call = Call.to("POST", *REAPPLY_PATH, body=body)
        consumed = needed(client, self.connection)
        action = Action(
            id=f"commvault:client:{subject.id}:reapply", verb="assign", provider="commvault",
            pool=adds[0], subject=subject, license=",".join(adds), phase=PHASE_REAPPLY,
            seat_delta=sum(c.seat_delta for c in changes),
            reason="; ".join(c.reason for c in changes)
                   + "; Commvault cannot assign one license: a re-apply consumes every license "
                   f"the client's agents need ({', '.join(sorted(consumed))})",
            request=self.preview(call), changes=tuple(changes), repeatable=False, call=call,
        )
        return _Planned(action, takes=frozenset(consumed - held))

    def _release(self, subject: Subject, client: ClientFacts, license: str,
                 changes: list[Change], phase: int, depends_on: tuple[str, ...],
                 reason: str) -> _Planned:
        body = {"isClientLevelOperation": False,
                "licensesInfo": [self._info(client, license)],
                "clientEntity": {"clientId": client.id}}
        call = Call.to("POST", *RELEASE_PATH, body=body)
        action = Action(
            id=f"commvault:{license}:client:{subject.id}:release", verb="release",
            provider="commvault", pool=license, subject=subject, license=license, phase=phase,
            frees=True, seat_delta=sum(c.seat_delta for c in changes), depends_on=depends_on,
            reason=reason, request=self.preview(call), changes=tuple(changes), call=call,
        )
        return _Planned(action, frees=frozenset({license}))

    def _release_all(self, subject: Subject, client: ClientFacts, licenses: list[str],
                     changes: list[Change], platform_type: int) -> _Planned:
        """A client-level release, shaped as cvpysdk's `release_license()` sends it:
        appType 0 (the reference requires 0 when isClientLevelOperation is true)."""
        body = {"isClientLevelOperation": True,
                "licensesInfo": [{"platformType": platform_type, "license": {
                    "licenseType": 0, "appType": 0, "licenseName": None}}],
                "clientEntity": {"clientId": client.id}}
        call = Call.to("POST", *RELEASE_PATH, body=body)
        action = Action(
            id=f"commvault:client:{subject.id}:release-all", verb="release",
            provider="commvault", pool=licenses[0], subject=subject, license=",".join(licenses),
            phase=PHASE_FREE, frees=True, seat_delta=sum(c.seat_delta for c in changes),
            reason="the client should hold no license: client-level release",
            request=self.preview(call), changes=tuple(changes), call=call,
        )
        return _Planned(action, frees=frozenset(licenses))

    def _info(self, client: ClientFacts, name: str) -> dict[str, Any]:
        """One `licensesInfo` entry: as read, or from the agent that consumes it."""
        known = self.facts.license_types.get(name)
        if known is not None:
            license_: dict[str, Any] = {"licenseType": known.license_type,
                                        "appType": known.app_type, "licenseName": name}
            if known.license_type is None:
                del license_["licenseType"]
            return {"platformType": known.platform_type, "license": license_}
        table: Mapping[str, list[str]] = self.connection.agent_licenses
        apps = sorted(agent.application_id for agent in client.agents or ()
                      if name in table.get(agent.name, []))
        return {"platformType": self.connection.platform_types[0],
                "license": {"appType": apps[0] if apps else 0, "licenseName": name}}
