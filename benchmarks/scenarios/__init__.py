"""Benchmark scenarios: one module per provider, each building a sandbox estate of N grants.

A scenario returns the simulator seed, the desired-state document (10 % different
from the seed), and the list scopes a perfect reader must page through, counted
independently of the provider's code (from the seed's sizes and the vendor's
documented maximum page size), plus the longest chain of requests that cannot
overlap (a token-paged list, a login before the reads): together with the
provider's concurrency they give its honest network floor.

Each module also has `replay_step(method, path, query) -> (stage, chain)`, which
tells the bare reader (benchmarks/bare_reader.py) what a logged request waits for:
every request of a stage waits for the stage before, and requests of one chain
(pages of a token-paged list) go one after another.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ListScope:
    """One list a reader must page through: `items` rows, at most `page` per request."""

    name: str
    items: int
    page: int

    @property
    def minimal_requests(self) -> int:
        return max(1, math.ceil(self.items / self.page))


@dataclass
class Scenario:
    provider: str
    seed: dict[str, Any]
    document: dict[str, Any]
    scopes: list[ListScope] = field(default_factory=list)
    grants: int = 0
    chain: int = 1
    """Longest sequence of requests that each wait for the one before."""

    @property
    def minimal_requests(self) -> int:
        return sum(scope.minimal_requests for scope in self.scopes)

    @property
    def concurrency(self) -> int:
        limits = self.document["providers"][self.provider].get("limits", {})
        return int(limits.get("concurrency", 8))

    def floor(self, latency_s: float) -> float:
        """Seconds no client can beat: the longest chain, or all requests spread
        over this provider's concurrency, whichever is longer."""
        return max(self.chain * latency_s,
                   self.minimal_requests * latency_s / self.concurrency)


Step = Callable[[str, str, str], tuple[int, str]]
"""(method, path, query) of a logged request → (stage, chain) for the bare reader."""

Builder = Callable[[int, random.Random, float], Scenario]
"""(grants, rng, difference) → scenario; `difference` is the share of grants that change."""


def _modules() -> list[Any]:
    return [importlib.import_module(f"{__name__}.{module.name}")
            for module in pkgutil.iter_modules(__path__)]


def builders() -> dict[str, Builder]:
    """Provider id → scenario builder, for every scenario module in this package."""
    return {loaded.PROVIDER: loaded.build for loaded in _modules()}


def replay_steps() -> dict[str, Step]:
    """Provider id → how the bare reader orders that provider's logged requests."""
    return {loaded.PROVIDER: loaded.replay_step for loaded in _modules()}
