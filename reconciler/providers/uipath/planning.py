"""UiPath plans: pure functions of (desired, current) and (changes, current).

Every allocation is a quantity that is *set*, not added: a call states the new totals.
So the planner gets one `allocate` per organization and one per (tenant, service), each
body listing every code that subject holds (never one call per product); two calls
when some codes grow and others shrink, because they must run at different moments:

    shrink users/groups → shrink tenants → shrink organizations
    → grow organizations → grow tenants → grow users/groups

so no level ever holds more than the level above it, even mid-apply. Each `PUT` states
totals, so sending it twice ends where sending it once does: every action is
`repeatable`, and a crash leaves nothing that a fresh read and a new plan cannot settle.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from reconciler.errors import Problem
from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    ProviderDesired,
    RequestPreview,
    Subject,
)
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE
from reconciler.providers.uipath import calls
from reconciler.providers.uipath.connection import QUANTIFIED, UiPathConnection, code_of, service_of
from reconciler.providers.uipath.facts import UiPathFacts

Direction = Literal["shrink", "grow"]
Preview = Callable[[Call], RequestPreview]
# Lower runs first: shrink bottom-up (around PHASE_FREE), then grow top-down (around
# PHASE_TAKE), so a level never holds more than the level above it between two calls.
PHASES: dict[tuple[str, Direction], int] = {
    ("user", "shrink"): PHASE_FREE - 40, ("group", "shrink"): PHASE_FREE - 40,
    ("tenant", "shrink"): PHASE_FREE, ("organization", "shrink"): PHASE_FREE + 40,
    ("organization", "grow"): PHASE_TAKE - 40, ("tenant", "grow"): PHASE_TAKE,
    ("user", "grow"): PHASE_TAKE + 40, ("group", "grow"): PHASE_TAKE + 40,
}
SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
COUNTED = frozenset({"tenant", "user"})
"""Kinds whose allocation consumes units of the organization's quantity when it is set. A
group's allocation rule consumes nothing itself: each member who signs in takes one
unit, first come first served, within what the organization has left (Automation
Cloud, "Assigning licenses to users by group membership")."""


# ---- check ----------------------------------------------------------------------------------
def check(desired: ProviderDesired, current: CurrentState,
          changes: Sequence[Change]) -> list[Problem]:
    """The hierarchy on the end state: what an organization's tenants and directly
    licensed users hold must fit in what the organization holds, per code.
    (Organizations against the host license is the planner's check on `host/<code>`.)"""
    problems = shape_problems(desired)
    org_total: dict[str, int] = {}
    below: dict[str, int] = defaultdict(int)
    holders: dict[str, list[str]] = defaultdict(list)
    for grant in end_state(current, changes):
        if grant.subject.kind == "organization":
            org_total[f"{grant.subject.id}/{code_of(grant.license)}"] = grant.units
        elif grant.subject.kind in COUNTED:
            below[grant.pool] += grant.units
            holders[grant.pool].append(f"{grant.subject.kind} {grant.subject.id} {grant.units}")
    files: dict[str, set[str]] = defaultdict(set)
    anchors: dict[str, Grant] = {}
    for grant in desired.grants:
        key = (f"{grant.subject.id}/{code_of(grant.license)}"
               if grant.subject.kind == "organization" else grant.pool)
        if grant.source is not None:
            files[key].add(grant.source.file)
            if grant.subject.kind in COUNTED:
                anchors.setdefault(key, grant)
    for pool, needed in sorted(below.items()):
        held = org_total.get(pool, 0)
        if needed <= held:
            continue
        org, code = pool.split("/", 1)
        shown = sorted(holders[pool])
        listing = ", ".join(shown[:5]) + (f", … {len(shown) - 5} more" if len(shown) > 5 else "")
        anchor = anchors.get(pool)
        problems.append(Problem(anchor.source if anchor else None, (
            f"uipath: {code}: tenants, groups and users of organization '{org}' would "
            f"hold {needed} but the organization has {held} ({listing}; declared in "
            f"{', '.join(sorted(files[pool])) or 'the vendor'})")))
    return problems


def shape_problems(desired: ProviderDesired) -> list[Problem]:
    """Every subject below an organization names it; quantities where the API takes
    them, and only there; names that travel in URL paths are one plain segment."""
    problems: list[Problem] = []
    for declaration in desired.subjects:
        if declaration.subject.kind == "organization":
            continue
        organization = declaration.attrs.get("organization")
        if not organization:
            problems.append(Problem(declaration.source, (
                f"uipath: {declaration.subject} needs `attrs: {{organization: <name>}}`")))
        elif _path_problem(str(organization)):
            problems.append(Problem(declaration.source, (
                f"uipath: {declaration.subject}: organization '{organization}' "
                f"{_path_problem(str(organization))}")))
    for grant in desired.grants:
        kind = grant.subject.kind
        if kind in QUANTIFIED and (grant.quantity is None or grant.quantity < 1):
            problems.append(Problem(grant.source, (
                f"uipath: {grant.subject} '{grant.license}' needs a quantity of at least 1 "
                f"(to hold none, leave the code out of the list)")))
        if kind not in QUANTIFIED and grant.quantity is not None:
            problems.append(Problem(grant.source, (
                f"uipath: {grant.subject} '{grant.license}' is a user bundle code: a {kind} "
                f"holds one unit of it, so it takes no quantity")))
        if kind == "tenant" and (not SERVICE.match(service_of(grant.license))
                                 or "/" in code_of(grant.license)):
            problems.append(Problem(grant.source, (
                f"uipath: {grant.subject} '{grant.license}' is not `<serviceType>/<code>` "
                f"(the service type is a URL path segment: letters, digits, '_', '-', '.')")))
    return problems


def _path_problem(name: str) -> str | None:
    if "/" in name or "\\" in name:
        return "cannot contain '/' or '\\' (it is a URL path segment)"
    if not name.strip("."):
        return "cannot be only dots (it is a URL path segment)"
    return None


def end_state(current: CurrentState, changes: Sequence[Change]) -> list[Grant]:
    """What the subjects hold once the plan has run: the live grants with the planner's
    changes applied. Taken from the planner's diff, never re-derived, so the scope
    rules (named, protected, pruned), expiry and held-back requests are the planner's."""
    end: dict[tuple[str, ...], Grant] = {grant.key: grant for grant in current.grants}
    for change in changes:
        if change.after is None:
            end.pop(change.grant.key, None)
        else:
            end[change.after.key] = change.after
    return list(end.values())


# ---- actions --------------------------------------------------------------------------------
def actions(changes: Sequence[Change], current: CurrentState, connection: UiPathConnection,
            preview: Preview) -> list[Action]:
    """One typed `PUT` per subject (per service for tenants) and direction."""
    facts = current.facts if isinstance(current.facts, UiPathFacts) else UiPathFacts()
    live: dict[tuple[str, str], dict[str, Grant]] = defaultdict(dict)
    for grant in current.grants:
        live[(grant.subject.kind, grant.subject.id)][grant.license] = grant
    by_subject: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for change in changes:
        by_subject[(change.grant.subject.kind, change.grant.subject.id)].append(change)
    planned: list[tuple[str, Action]] = []
    for (kind, subject), subject_changes in sorted(by_subject.items()):
        org = organization_of(kind, subject, subject_changes, facts)
        planner = _allocations if kind in QUANTIFIED else _bundles
        planned.extend((org, action) for action in planner(
            kind, subject, org, subject_changes, live[(kind, subject)], connection, preview))
    return link_levels(planned)


def organization_of(kind: str, subject: str, changes: Sequence[Change],
                    facts: UiPathFacts) -> str:
    """The organization a subject's calls go to: itself, its grants' `organization`
    attr (declared or read), or the YAML's declaration of the subject."""
    if kind == "organization":
        return subject
    for change in changes:
        named = change.grant.attrs.get("organization")
        if isinstance(named, str) and named:
            return named
    return facts.organization_of.get((kind, subject), "")


def _allocations(kind: str, subject: str, org: str, changes: list[Change],
                 held: Mapping[str, Grant], connection: UiPathConnection,
                 preview: Preview) -> list[Action]:
    """One call per (subject, service) and direction; each lists every code of that
    (subject, service) with its total at that moment, so a PUT that replaces the whole
    allocation and one that merges into it both end where the YAML says."""
    by_service: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_service[service_of(change.grant.license) if kind == "tenant" else ""].append(change)
    planned = []
    for service, members in sorted(by_service.items()):
        now = {code_of(lic): g.units for lic, g in held.items()
               if kind != "tenant" or service_of(lic) == service}
        steps: tuple[tuple[Direction, list[Change]], ...] = (
            ("shrink", [c for c in members if c.seat_delta < 0]),
            ("grow", [c for c in members if c.seat_delta >= 0]))
        for direction, chosen in steps:
            if not chosen:
                continue
            for change in chosen:
                now[code_of(change.grant.license)] = (
                    change.after.units if change.after is not None else 0)
            products = [{"code": code, "quantity": qty} for code, qty in sorted(now.items())]
            call = (calls.allocate_organization(connection, subject, products)
                    if kind == "organization"
                    else calls.allocate_tenant(connection, org, subject, service, products))
            planned.append(_action(kind, subject, direction, chosen, call, preview,
                                   suffix=f":{service}" if service else ""))
    return planned


def _bundles(kind: str, subject: str, org: str, changes: list[Change],
             held: Mapping[str, Grant], connection: UiPathConnection,
             preview: Preview) -> list[Action]:
    """Bundle lists are sets too: first drop what goes, then set the full new list."""
    removed = {c.grant.license for c in changes if c.kind is ChangeKind.REMOVE}
    added = {c.grant.license for c in changes if c.kind is ChangeKind.ADD}
    kept = sorted(set(held) - removed)
    steps: tuple[tuple[Direction, list[str], list[Change]], ...] = (
        ("shrink", kept, [c for c in changes if c.kind is ChangeKind.REMOVE]),
        ("grow", sorted(set(kept) | added), [c for c in changes
                                             if c.kind is not ChangeKind.REMOVE]))
    planned = []
    for direction, codes, members in steps:
        if not members:
            continue
        call = (calls.allocate_group(connection, org, subject, codes) if kind == "group"
                else calls.allocate_user(connection, org, subject, codes))
        planned.append(_action(kind, subject, direction, members, call, preview))
    return planned


def _action(kind: str, subject: str, direction: Direction, changes: list[Change], call: Call,
            preview: Preview, suffix: str = "") -> Action:
    licenses = sorted({c.grant.license for c in changes})
    return Action(
        id=f"uipath:{kind}:{subject}{suffix}:{direction}", verb="allocate",
        provider="uipath", pool=changes[0].grant.pool,
        subject=Subject(kind=kind, id=subject),
        license=",".join(licenses), phase=PHASES[(kind, direction)],
        frees=direction == "shrink",
        seat_delta=0 if kind == "group" else sum(c.seat_delta for c in changes),
        reason="; ".join(c.reason for c in changes) + (
            "; quantities are set, not added: the call states the new totals"),
        request=preview(call), changes=tuple(changes), repeatable=True, call=call,
    )


def link_levels(planned: list[tuple[str, Action]]) -> list[Action]:
    """Within an organization, a grow below it waits for its grow, and its shrink waits
    for the shrinks below it: when one fails, the applier skips what depends on it
    instead of sending a call the vendor would refuse with a 409. Each action comes
    with the organization its call goes to, so the links follow the calls."""
    org_grow: dict[str, str] = {}
    below_shrinks: dict[str, list[str]] = defaultdict(list)
    for org, action in planned:
        if action.subject.kind == "organization" and not action.frees:
            org_grow[org] = action.id
        elif action.subject.kind != "organization" and action.frees:
            below_shrinks[org].append(action.id)
    linked = []
    for org, action in planned:
        extra: list[str] = []
        if action.subject.kind != "organization" and not action.frees and org in org_grow:
            extra = [org_grow[org]]
        if action.subject.kind == "organization" and action.frees:
            extra = below_shrinks.get(org, [])
        if extra:
            action = action.model_copy(update={
                "depends_on": tuple(sorted(set(action.depends_on) | set(extra)))})
        linked.append(action)
    return linked
