"""Shared pieces of the reliability tests, now part of the conformance kit
(`reconciler.testing`): re-exported for the vendor-specific tests that still use them."""

from __future__ import annotations

from pathlib import Path

from reconciler.testing.properties import FAULT_PROFILES
from reconciler.testing.runner import duplicated_changes, journaled_calls
from reconciler.testing.vendor import FAST_LIMITS, KitVendor, vendors_with_examples
from tests.e2e.conftest import EXAMPLES

__all__ = ["FAST_LIMITS", "FAULT_PROFILES", "duplicated_changes", "fast_example",
           "journaled_calls", "providers_with_examples"]


def providers_with_examples() -> list[str]:
    return vendors_with_examples(EXAMPLES)


def fast_example(workspace: Path, provider: str) -> Path:
    """The provider's example with retry limits shortened for tests."""
    return KitVendor.find(provider, EXAMPLES).write_example(workspace)
