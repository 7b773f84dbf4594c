"""Small builders for planner tests: grants, pools and states without any vendor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    CurrentState,
    DesiredState,
    Grant,
    Location,
    PoolDecl,
    PoolState,
    ProviderDesired,
    RequestPreview,
    Subject,
    SubjectDecl,
)

TODAY = dt.date(2026, 11, 24)


def grant(
    subject: str, license: str, *, pool: str | None = None, line: int = 1, **extra: Any
) -> Grant:
    return Grant(
        provider="acme",
        pool=pool or license,
        subject=Subject(kind="entity", id=subject),
        license=license,
        source=Location(file="desired.yaml", line=line),
        **extra,
    )


def live(subject: str, license: str, **extra: Any) -> Grant:
    return grant(subject, license, **extra).replace(source=None)


def desired(
    grants: Sequence[Grant],
    *,
    subjects: Sequence[str] | None = None,
    protected: Sequence[str] = (),
    prune: Sequence[str] = (),
    max_removals: int = 25,
) -> DesiredState:
    names = subjects if subjects is not None else sorted({g.subject.id for g in grants})
    decls = tuple(
        SubjectDecl(
            subject=Subject(kind="entity", id=name),
            protected=name in protected,
            source=Location(file="desired.yaml", line=10 + i),
        )
        for i, name in enumerate(names)
    )
    pools = tuple(
        PoolDecl(id=p, prune=True, source=Location(file="desired.yaml", line=2)) for p in prune
    )
    from reconciler.model import Limits

    provider = ProviderDesired(
        provider="acme",
        grants=tuple(grants),
        subjects=decls,
        pools=pools,
        limits=Limits(max_removals=max_removals),
    )
    return DesiredState(providers={"acme": provider}, paths=("desired.yaml",))


def current(grants: Sequence[Grant], pools: dict[str, int | None]) -> CurrentState:
    used = {p: sum(1 for g in grants if g.pool == p) for p in pools}
    return CurrentState(
        provider="acme",
        grants=tuple(grants),
        pools=tuple(
            PoolState(provider="acme", id=p, capacity=c, used=used[p]) for p, c in pools.items()
        ),
        fingerprints={f"pool/{p}": str(used[p]) for p in pools},
    )


def one_action_per_change(changes: Sequence[Change], state: CurrentState) -> list[Action]:
    """A minimal vendor: one call per change, frees first, like a real provider."""
    verbs = {ChangeKind.ADD: "assign", ChangeKind.REMOVE: "remove", ChangeKind.UPDATE: "update"}
    phases = {ChangeKind.REMOVE: 100, ChangeKind.UPDATE: 200, ChangeKind.ADD: 300}
    made = []
    for change in changes:
        g = change.grant
        made.append(
            Action(
                id=f"acme:{verbs[change.kind]}:{g.pool}:{g.subject.id}",
                verb=verbs[change.kind],  # type: ignore[arg-type]
                provider="acme",
                pool=g.pool,
                subject=g.subject,
                license=g.license,
                phase=phases[change.kind],
                frees=change.kind is ChangeKind.REMOVE,
                seat_delta=change.seat_delta,
                reason=change.reason,
                request=RequestPreview(
                    method="POST", url=f"https://acme.test/{g.pool}/{g.subject.id}"
                ),
                changes=(change,),
                call=Call.to("POST", g.pool, g.subject.id),
            )
        )
    return made
