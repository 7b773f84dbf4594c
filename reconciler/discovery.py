"""Vendors found by discovery: Python entry points, never a hand-kept list.

A vendor is a provider class in the `reconciler.providers` group and a simulator
class in `reconciler.simulators`, under the same name (the provider id). The
built-in five are declared in this project's pyproject.toml; a vendor shipped as
its own package declares the same two entry points and is found the same way.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from reconciler.errors import ReconcilerError

PROVIDER_GROUP = "reconciler.providers"
SIMULATOR_GROUP = "reconciler.simulators"

_cache: dict[tuple[str, tuple[str, ...]], dict[str, EntryPoint]] = {}


class DiscoveryError(ReconcilerError):
    """An installed vendor package is broken: its entry point does not load."""


def _points(group: str) -> dict[str, EntryPoint]:
    # Scanning installed distributions takes milliseconds; do it once per sys.path.
    key = (group, tuple(sys.path))
    if key not in _cache:
        _cache[key] = {point.name: point for point in entry_points(group=group)}
    return _cache[key]


def discover(group: str, base: type[object]) -> dict[str, Any]:
    """Name → class for every entry point of `group`, each checked to be a `base`."""
    found: dict[str, Any] = {}
    for name, point in sorted(_points(group).items()):
        try:
            loaded = point.load()
        except Exception as error:  # a third-party package can fail in any way
            raise DiscoveryError(
                f"vendor '{name}' ({point.value}) does not load: {type(error).__name__}: {error}"
            ) from error
        if not (isinstance(loaded, type) and issubclass(loaded, base)):
            raise DiscoveryError(f"vendor '{name}' ({point.value}) is not a {base.__name__}")
        found[name] = loaded
    return found
