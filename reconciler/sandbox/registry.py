"""Which simulator stands in for which provider id.

The ids are the only thing simulators and providers share: a simulator never
imports provider code (see DESIGN.md, "The sandbox").
"""

from __future__ import annotations

from reconciler.discovery import SIMULATOR_GROUP, discover
from reconciler.sandbox.base import Simulator


def simulators() -> dict[str, type[Simulator]]:
    """Provider id → simulator class, for every `reconciler.simulators` entry point."""
    found: dict[str, type[Simulator]] = discover(SIMULATOR_GROUP, Simulator)
    return found
