"""Providers, found by discovery: `registry()` lists them by provider id."""

from __future__ import annotations

from reconciler.discovery import PROVIDER_GROUP, discover
from reconciler.providers.base import Provider


def registry() -> dict[str, type[Provider]]:
    """Provider id → provider class, for every `reconciler.providers` entry point."""
    found: dict[str, type[Provider]] = discover(PROVIDER_GROUP, Provider)
    return found
