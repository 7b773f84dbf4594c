"""Benchmark scenarios: one module per provider, each building a sandbox estate of N grants.

A scenario returns the simulator seed, the desired-state document (10 % different
from the seed), and the list scopes a perfect reader must page through, counted
independently of the provider's code (from the seed's sizes and the vendor's
documented maximum page size).
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

    @property
    def minimal_requests(self) -> int:
        return sum(scope.minimal_requests for scope in self.scopes)


Builder = Callable[[int, random.Random, float], Scenario]
"""(grants, rng, difference) → scenario; `difference` is the share of grants that change."""


def builders() -> dict[str, Builder]:
    """Provider id → scenario builder, for every scenario module in this package."""
    found: dict[str, Builder] = {}
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        found[loaded.PROVIDER] = loaded.build
    return found
