"""`--target provider[/pool]`: plan, apply or check a part of the estate, as Terraform does.

A pool target narrows both sides of the diff, the declared grants and the live
ones, to that pool: a named subject's list is complete only within the target, so
its grants in other pools are neither planned nor removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.errors import ReconcilerError
from reconciler.model import CurrentState, DesiredState


class TargetError(ReconcilerError):
    """A --target names a provider the YAML does not configure, or a pool nobody knows."""


@dataclass(frozen=True, order=True)
class Target:
    provider: str
    pool: str | None = None

    def __str__(self) -> str:
        return self.provider if self.pool is None else f"{self.provider}/{self.pool}"

    @classmethod
    def parse(cls, text: str) -> Target:
        provider, _, pool = text.partition("/")
        if not provider:
            raise TargetError(f"--target {text!r}: say provider or provider/pool")
        return cls(provider=provider, pool=pool or None)


def parse_targets(values: Iterable[str]) -> tuple[Target, ...]:
    return tuple(sorted({Target.parse(value) for value in values}))


def pools_by_provider(targets: Sequence[Target]) -> dict[str, set[str] | None]:
    """Provider → its targeted pools, or None when the whole provider is targeted."""
    chosen: dict[str, set[str] | None] = {}
    for target in targets:
        if target.pool is None:
            chosen[target.provider] = None
        elif chosen.get(target.provider, set()) is not None:
            pools = chosen.setdefault(target.provider, set())
            assert pools is not None
            pools.add(target.pool)
    return chosen


def narrow_desired(desired: DesiredState, targets: Sequence[Target]) -> DesiredState:
    """The desired state of the targeted providers and pools only (all when no target)."""
    if not targets:
        return desired
    chosen = pools_by_provider(targets)
    unknown = sorted(set(chosen) - set(desired.providers))
    if unknown:
        raise TargetError(
            f"--target names {', '.join(unknown)}, which the YAML does not configure "
            f"(configured: {', '.join(sorted(desired.providers)) or 'none'})"
        )
    providers = {}
    for name, pools in chosen.items():
        provider = desired.providers[name]
        if pools is not None:
            provider = provider.model_copy(
                update={"grants": tuple(g for g in provider.grants if g.pool in pools)}
            )
        providers[name] = provider
    return desired.model_copy(update={"providers": providers})


def check_target_pools(
    desired: DesiredState, currents: Mapping[str, CurrentState], targets: Sequence[Target]
) -> None:
    """Refuses a pool target that names a pool neither the YAML nor the vendor knows.

    Pools are only fully known after reading (a pool the YAML never names can still
    be pruned), so this runs on the read, before any plan is made: without it a
    mistyped `--target yext/nopool` narrows both sides to nothing and reports
    "No changes", exit 0, as if the pool were in sync.
    """
    unknown: list[str] = []
    for name, pools in pools_by_provider(targets).items():
        if pools is None or name not in currents:
            continue
        provider = desired.providers.get(name)
        known = {pool.id for pool in currents[name].pools}
        if provider is not None:
            known |= {grant.pool for grant in provider.grants}
            known |= {pool.id for pool in provider.pools}
        for pool in sorted(pools - known):
            listed = ", ".join(sorted(known)) or "none"
            unknown.append(f"--target {name}/{pool}: '{name}' has no pool '{pool}' "
                           f"(its pools: {listed})")
    if unknown:
        raise TargetError("\n".join(unknown))


def narrow_current(current: CurrentState, pools: set[str] | None) -> CurrentState:
    if pools is None:
        return current
    # Pools stay whole: vendor checks (a UiPath hierarchy) still see every capacity.
    return current.model_copy(update={
        "grants": tuple(g for g in current.grants if g.pool in pools),
        "pending": tuple(p for p in current.pending if p.key[1] in pools),
    })


def lock_scopes_of(desired: DesiredState, targets: Sequence[Target]) -> set[tuple[str, str]]:
    """(provider, pool) pairs a run must hold before it reads: what it may change.

    A pool target locks just its pools. A whole provider locks `(provider, "*")`,
    which two whole-provider runs share, and every pool its YAML names, which a
    pool-targeted run on one of them shares: runs on disjoint pools go ahead at once.
    """
    chosen = pools_by_provider(targets)
    scopes: set[tuple[str, str]] = set()
    for name, provider in desired.providers.items():
        pools = chosen.get(name)
        if pools is not None:
            scopes |= {(name, pool) for pool in pools}
            continue
        scopes.add((name, "*"))
        scopes |= {(name, grant.pool) for grant in provider.grants}
        scopes |= {(name, pool.id) for pool in provider.pools}
    return scopes
