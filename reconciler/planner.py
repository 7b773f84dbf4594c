"""Diff, scope rules, capacity and safety checks, ordering: desired + current → Plan.

Pure functions only. Providers reach this module as data and as the callables
the pipeline hands in (`ActionMaker`), so the planner is testable without HTTP
and never imports a vendor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff
from pydantic import TypeAdapter

from reconciler.errors import CapacityError, ConfigError, Problem, SafetyError
from reconciler.gcpace import bulk_allocation
from reconciler.itemjson import COMPACT, grant_json, subject_decl_json
from reconciler.model import (
    Action,
    Change,
    ChangeKind,
    CurrentState,
    DesiredState,
    Grant,
    GrantKey,
    PendingChange,
    Plan,
    PoolDecl,
    PoolState,
    PoolSummary,
    ProviderDesired,
    Summary,
)

VERBS = ("assign", "remove", "release", "allocate", "update")
ActionMaker = Callable[[Sequence[Change], CurrentState], list[Action]]
Checker = Callable[[ProviderDesired, CurrentState, Sequence[Change]], list[Problem]]


@dataclass
class Diff:
    """The changes for one provider, and what the scope rules kept out of them."""

    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    protected_skips: int = 0
    in_sync: int = 0
    unmanaged: int = 0


_POOLS = TypeAdapter(tuple[PoolDecl, ...])
_DUMP_CHUNK = 2_000
"""Pools dumped to JSON-ready dicts per pydantic call: one call per item costs more than
the dump, all at once is a large transient."""


def _pools_json(pools: Sequence[PoolDecl]) -> list[str]:
    compact: list[str] = []
    for start in range(0, len(pools), _DUMP_CHUNK):
        dumped = _POOLS.dump_python(tuple(pools[start:start + _DUMP_CHUNK]), mode="json",
                                    exclude={"__all__": {"source"}})
        compact.extend(COMPACT(item) for item in dumped)
    return compact


_LISTED: dict[str, Callable[[Sequence[Any]], list[str]]] = {
    "grants": lambda grants: [grant_json(g) for g in grants],
    "subjects": lambda subjects: [subject_decl_json(s) for s in subjects],
    "pools": _pools_json,
}
"""Each listed field's items as compact JSON without their source (`itemjson`)."""


def config_digest(desired: DesiredState) -> str:
    """A digest of what the YAML means (not how it is laid out: lines don't count).

    The hash of one JSON document (`{provider: its settings, with grants, subjects
    and pools each sorted by their JSON}`, keys sorted, compact), written into the
    hash a piece at a time: 100k grants dumped at once would be a transient of
    over 100 MB, the peak of a whole plan.
    """
    digest = hashlib.sha256()
    digest.update(b"{")
    for index, (name, provider) in enumerate(sorted(desired.providers.items())):
        head = provider.model_dump(mode="json", exclude={"source", *_LISTED})
        digest.update(f"{',' if index else ''}{COMPACT(name)}:{{".encode())
        for position, key in enumerate(sorted([*head, *_LISTED])):
            digest.update(f"{',' if position else ''}{COMPACT(key)}:".encode())
            if key in _LISTED:
                _digest_list(digest, _LISTED[key](getattr(provider, key)))
            else:
                digest.update(COMPACT(head[key]).encode())
        digest.update(b"}")
    digest.update(b"}")
    return digest.hexdigest()


def _digest_list(digest: Any, compact: list[str]) -> None:
    """`[...]` of the items, each without its source, sorted by `json.dumps(item,
    sort_keys=True)` (default separators: the order digests have always used).

    Sorted by the compact JSON instead, which orders alike: the default separators
    only add a space after each `,` and `:` that separates, so two items first differ
    at the same character in both spellings.
    """
    compact.sort()
    digest.update(b"[" + ",".join(compact).encode() + b"]")


# ---- diff -------------------------------------------------------------------------------
def _seats(seats: Mapping[tuple[str, str, str], int], grant: Grant, sign: int) -> int | None:
    """The seats the vendor says a change of `grant` takes (`sign` 1) or frees (`sign`
    -1), where that is not its units; None: the units decide."""
    count = seats.get((grant.pool, grant.subject.kind, grant.subject.id)) if seats else None
    return None if count is None else sign * count


def diff(
    desired: ProviderDesired,
    current: CurrentState,
    *,
    today: dt.date,
    pending: Sequence[PendingChange] = (),
) -> Diff:
    """Key-indexed comparison of one provider's desired and current grants.

    Scope rules (Argo CD-style ownership): a named subject's license list is
    complete; a live grant on an unnamed subject is left alone unless its pool
    is pruned; a protected subject is never removed from.
    """
    result = Diff()
    live = {grant.key: grant for grant in current.grants}
    wanted: dict[GrantKey, Grant] = {}
    for grant in desired.grants:
        if grant.expires is not None and grant.expires <= today:
            result.notes.append(
                f"{_where(grant)}: {grant.subject} '{grant.license}' expired on "
                f"{grant.expires}; it is treated as not declared"
            )
            continue
        wanted[grant.key] = grant
    held_back = {change.key for change in pending}
    named = {(d.subject.kind, d.subject.id): d for d in desired.subjects}
    pruned = {pool.id: pool for pool in desired.pools if pool.prune}

    for key, grant in wanted.items():
        if key in held_back:
            continue
        before = live.get(key)
        if before is None:
            result.changes.append(Change(
                kind=ChangeKind.ADD, after=grant, reason=f"declared at {_where(grant)}",
                seats=_seats(current.seats_added, grant, 1)))
        elif before.value() != grant.value():
            result.changes.append(
                Change(
                    kind=ChangeKind.UPDATE,
                    before=before,
                    after=grant,
                    reason=_describe_update(before, grant),
                )
            )
        else:
            result.in_sync += 1
    for key, grant in live.items():
        if key in wanted or key in held_back:
            continue
        declaration = named.get((grant.subject.kind, grant.subject.id))
        pool = pruned.get(grant.pool)
        if declaration is None and pool is None:
            result.unmanaged += 1  # not ours: left alone, like Argo CD's unmanaged resources
            continue
        if declaration is not None and declaration.protected:
            result.protected_skips += 1
            result.notes.append(
                f"{grant.subject} is protected ({declaration.source}): "
                f"keeping '{grant.license}' although it is not declared"
            )
            continue
        if declaration is not None:
            why = f"{grant.subject} is declared at {declaration.source} without '{grant.license}'"
        else:
            assert pool is not None
            why = (
                f"pool '{grant.pool}' is pruned ({pool.source}) and {grant.subject} is not declared"
            )
        result.changes.append(Change(kind=ChangeKind.REMOVE, before=grant, reason=why,
                                     seats=_seats(current.seats_removed, grant, -1)))
    result.changes.sort(key=lambda change: (change.grant.key, change.kind.value))
    return result


def _where(grant: Grant) -> str:
    return str(grant.source) if grant.source else "the desired state"


def _describe_update(before: Grant, after: Grant) -> str:
    parts: list[str] = []
    if before.quantity != after.quantity:
        parts.append(f"quantity {before.quantity} → {after.quantity}")
    if before.expires != after.expires:
        parts.append(f"expires {before.expires or 'never'} → {after.expires or 'never'}")
    if before.attrs != after.attrs:
        delta = DeepDiff(before.attrs, after.attrs, ignore_order=True, verbose_level=2)
        parts.append(f"attrs {delta.pretty() or 'changed'}".replace("\n", "; "))
    return f"{'; '.join(parts)} (declared at {_where(after)})"


# ---- checks -----------------------------------------------------------------------------
def check_known_pools(desired: ProviderDesired, current: CurrentState) -> list[Problem]:
    """Declared grants and pool settings must name pools that exist at the vendor."""
    known = {pool.id for pool in current.pools}
    if not known:
        return []
    problems: list[Problem] = []
    listing = ", ".join(sorted(known))
    for grant in desired.grants:
        if grant.pool not in known:
            problems.append(
                Problem(
                    grant.source,
                    f"{desired.provider}: unknown pool "
                    f"'{grant.pool}' for {grant.subject} "
                    f"(known: {listing})",
                )
            )
    for pool in desired.pools:
        if pool.id not in known:
            problems.append(
                Problem(
                    pool.source, f"{desired.provider}: unknown pool '{pool.id}' (known: {listing})"
                )
            )
    return problems


def check_capacity(
    current: CurrentState, changes: Sequence[Change], pending: Sequence[PendingChange] = ()
) -> list[Problem]:
    """The end state of every pool must fit its capacity, when the plan adds to it.

    Seats that requests still pending at the vendor will take (an ADManager workflow
    request waiting for approval) count as taken: the vendor does not show them yet,
    but an approver will.
    """
    awaited: dict[str, int] = defaultdict(int)
    live = {grant.key for grant in current.grants}
    for held in pending:
        if held.direction == "add" and held.key not in live:
            awaited[held.key[1]] += max(held.quantity, 0)
    delta: dict[str, int] = defaultdict(int)
    files: dict[str, set[str]] = defaultdict(set)
    first: dict[str, Grant] = {}
    for change in changes:
        grant = change.grant
        delta[grant.pool] += change.seat_delta
        if change.seat_delta > 0 and grant.source is not None:
            files[grant.pool].add(grant.source.file)
            first.setdefault(grant.pool, grant)
    problems: list[Problem] = []
    for pool in current.pools:
        if pool.capacity is None or delta.get(pool.id, 0) <= 0:
            continue
        after = pool.used + awaited[pool.id] + delta[pool.id]
        if after > pool.capacity:
            anchor = first.get(pool.id)
            waiting = f", {awaited[pool.id]} pending" if awaited[pool.id] else ""
            problems.append(
                Problem(
                    anchor.source if anchor else None,
                    f"{pool.provider}: pool '{pool.id}' would hold {after} {pool.unit} but has "
                    f"{pool.capacity} ({pool.used} in use{waiting}, {delta[pool.id]:+d} planned; "
                    f"declared in {', '.join(sorted(files[pool.id])) or 'the desired state'})",
                )
            )
    return problems


def check_removals(actions: Sequence[Action], limits: Mapping[str, int]) -> None:
    """Blast radius: refuse a plan that removes more grants than allowed per provider."""
    removed: dict[str, int] = defaultdict(int)
    for action in actions:
        for change in action.changes:
            if change.kind is ChangeKind.REMOVE:
                removed[action.provider] += 1
    over = [
        f"{provider} would remove {count} grants (limit {limits[provider]})"
        for provider, count in sorted(removed.items())
        if count > limits[provider]
    ]
    if over:
        raise SafetyError(
            "plan refused: "
            + "; ".join(over)
            + ". Review it, then raise the limit with --max-removals N "
            "or `limits: {max_removals: N}` for that provider."
        )


# ---- ordering ---------------------------------------------------------------------------
def order(actions: Sequence[Action], currents: Mapping[str, CurrentState]) -> list[Action]:
    """Per provider: frees before takes, its phases, then stable keys; same input, same order.

    A take in a pool that cannot fit it without the pool's frees depends on them,
    so a failed free skips the take instead of overfilling the pool.
    """
    by_pool: dict[tuple[str, str], list[Action]] = defaultdict(list)
    for action in actions:
        by_pool[(action.provider, action.pool)].append(action)
    extra: dict[str, set[str]] = defaultdict(set)
    known = _pool_index(currents)
    for (provider, pool_id), members in by_pool.items():
        pool = known.get((provider, pool_id))
        frees = [a for a in members if a.frees]
        takes = [a for a in members if not a.frees and a.seat_delta > 0]
        need = sum(a.seat_delta for a in takes)
        tight = pool is None or pool.capacity is None or pool.used + need > pool.capacity
        if frees and takes and tight:
            for take in takes:
                # Only frees that can run first: a provider may free *after* a take on
                # purpose (a re-apply followed by the release of what it over-took).
                extra[take.id].update(
                    f.id for f in frees if f.phase <= take.phase and take.id not in f.depends_on
                )
    linked = [
        a.model_copy(update={"depends_on": tuple(sorted(set(a.depends_on) | extra[a.id]))})
        if extra[a.id]
        else a
        for a in actions
    ]
    return _topological(linked)


def _pool_index(currents: Mapping[str, CurrentState]) -> dict[tuple[str, str], PoolState]:
    return {(name, pool.id): pool for name, state in currents.items() for pool in state.pools}


def _sort_key(action: Action) -> tuple[object, ...]:
    """Per provider, then its phases: the plan reads one vendor at a time, and the
    applier runs vendors side by side, each in its own phase order."""
    return (
        action.provider,
        action.phase,
        not action.frees,
        action.pool,
        action.subject.kind,
        action.subject.id,
        action.license,
        action.id,
    )


def _topological(actions: Sequence[Action]) -> list[Action]:
    by_id = {action.id: action for action in actions}
    if len(by_id) != len(actions):
        raise ValueError("duplicate action ids in plan")
    waiting = {a.id: {d for d in a.depends_on if d in by_id} for a in actions}
    dependants: dict[str, list[str]] = defaultdict(list)
    for action_id, deps in waiting.items():
        for dep in deps:
            dependants[dep].append(action_id)
    ready = [(_sort_key(by_id[i]), i) for i, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    ordered: list[Action] = []
    while ready:
        _, action_id = heapq.heappop(ready)
        ordered.append(by_id[action_id])
        for follower in dependants[action_id]:
            waiting[follower].discard(action_id)
            if not waiting[follower]:
                heapq.heappush(ready, (_sort_key(by_id[follower]), follower))
    if len(ordered) != len(actions):
        raise ValueError("dependency cycle between actions")
    return ordered


# ---- the whole plan ---------------------------------------------------------------------
@dataclass
class ProviderPlan:
    """One provider's share of a plan: its diff, what its checks found, its actions.

    Needs only that provider's read, so the session works it out (on a thread) as
    each read ends, while slower vendors are still being read; `build_plan` then
    only assembles.
    """

    diff: Diff
    problems: list[Problem]
    capacity_problems: list[Problem]
    actions: list[Action] | None = None
    """Made ahead when the provider's own checks passed; None: made when the plan is
    assembled, after every provider's checks (where an error making them surfaces)."""


def plan_provider(
    name: str,
    desired: ProviderDesired,
    current: CurrentState,
    checker: Checker | None,
    *,
    today: dt.date,
    extra_pending: Sequence[PendingChange] = (),
) -> ProviderPlan:
    """Diff and checks of one provider; raises nothing the checks find (they are
    reported together with every other provider's by `build_plan`)."""
    problems = check_known_pools(desired, current)
    pending = [*current.pending, *(p for p in extra_pending if p.provider == name)]
    result = diff(desired, current, today=today, pending=pending)
    if checker is not None:
        problems.extend(checker(desired, current, result.changes))
    return ProviderPlan(result, problems, check_capacity(current, result.changes, pending))


@bulk_allocation()
def build_plan(
    desired: DesiredState,
    currents: Mapping[str, CurrentState],
    makers: Mapping[str, ActionMaker],
    checkers: Mapping[str, Checker] | None = None,
    *,
    today: dt.date,
    max_removals: int | None = None,
    extra_pending: Sequence[PendingChange] = (),
    notes: Sequence[str] = (),
    digest: str | None = None,
    parts: Mapping[str, ProviderPlan] | None = None,
) -> Plan:
    """Everything from diff to ordered plan; raises before any change is possible.

    ConfigError/CapacityError for invalid end states, SafetyError when the blast
    radius is exceeded. `digest` is `config_digest(desired)` and `parts` holds
    `plan_provider`'s results, when the caller already has them (the session works
    them out while the vendors are read); a provider missing from `parts` is worked
    out here.
    """
    problems: list[Problem] = []
    capacity_problems: list[Problem] = []
    all_actions: list[Action] = []
    all_notes: list[str] = list(notes)
    pending_all: list[PendingChange] = list(extra_pending)
    protected = in_sync = unmanaged = 0
    planned: dict[str, ProviderPlan] = {}
    for name, provider_desired in sorted(desired.providers.items()):
        current = currents[name]
        pending_all.extend(current.pending)
        part = (parts or {}).get(name) or plan_provider(
            name, provider_desired, current, (checkers or {}).get(name), today=today,
            extra_pending=extra_pending)
        planned[name] = part
        problems.extend(part.problems)
        capacity_problems.extend(part.capacity_problems)
    if capacity_problems:
        raise CapacityError(capacity_problems + problems)
    if problems:
        raise ConfigError(problems)
    for name, part in planned.items():
        result = part.diff
        protected += result.protected_skips
        in_sync += result.in_sync
        unmanaged += result.unmanaged
        all_notes.extend(result.notes)
        if part.actions is not None:
            all_actions.extend(part.actions)
        elif result.changes:
            all_actions.extend(makers[name](result.changes, currents[name]))
    limits = {
        name: max_removals if max_removals is not None else p.limits.max_removals
        for name, p in desired.providers.items()
    }
    check_removals(all_actions, limits)
    ordered = order(all_actions, currents)
    return Plan(
        config_digest=digest if digest is not None else config_digest(desired),
        config_paths=desired.paths,
        fingerprints={
            name: dict(sorted(currents[name].fingerprints.items()))
            for name in sorted(desired.providers)
        },
        summary=summarize(ordered, desired, currents, protected, len(pending_all)).model_copy(
            update={"in_sync": in_sync, "unmanaged": unmanaged}
        ),
        actions=tuple(ordered),
        pending=tuple(sorted(pending_all, key=lambda p: (p.provider, p.key))),
        notes=tuple(all_notes),
    )


def summarize(
    actions: Sequence[Action],
    desired: DesiredState,
    currents: Mapping[str, CurrentState],
    protected_skips: int = 0,
    pending: int = 0,
) -> Summary:
    counts = dict.fromkeys(VERBS, 0)
    delta: dict[tuple[str, str], int] = defaultdict(int)
    for action in actions:
        counts[action.verb] += 1
        # Per change, not per action: one call may move seats in several pools.
        for change in action.changes:
            delta[(action.provider, change.grant.pool)] += change.seat_delta
    prices = {
        (name, pool.id): pool
        for name, provider in desired.providers.items()
        for pool in provider.pools
    }
    pools: list[PoolSummary] = []
    known = _pool_index(currents)
    for (provider, pool_id), seats in sorted(delta.items()):
        pool = known.get((provider, pool_id))
        used = pool.used if pool else 0
        declared = prices.get((provider, pool_id))
        pools.append(
            PoolSummary(
                provider=provider,
                pool=pool_id,
                capacity=pool.capacity if pool else None,
                used_before=used,
                used_after=used + seats,
                seat_delta=seats,
                unit_price=declared.unit_price if declared else None,
                currency=declared.currency if declared else None,
                period=declared.period if declared else None,
            )
        )
    return Summary(
        counts=counts, pools=tuple(pools), protected_skips=protected_skips, pending=pending
    )
