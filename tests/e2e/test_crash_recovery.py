"""SIGKILL `reconciler apply` at random points; the next applies converge.

The property and its checks are the conformance kit's (`reconciler.testing.crash`), run
on every vendor by tests/e2e/test_conformance.py with the built-ins' large estates
(`crash_estates.py`). Here: the long variant, twenty more runs per built-in vendor.
Set RECONCILER_CRASH_REPORT=FILE to append one JSON line per run (the README's figures).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from reconciler.testing.crash import VendorProcess, check, crash_run
from tests.e2e.crash_estates import HOLDINGS, estate


@pytest.fixture(scope="module")
def vendors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], VendorProcess]]:
    """Started on first use, one process per provider for the whole module."""
    started: dict[str, VendorProcess] = {}
    scratch = tmp_path_factory.mktemp("vendors")

    def get(provider: str) -> VendorProcess:
        if provider not in started:
            started[provider] = VendorProcess(estate(provider, random.Random(7)), scratch)
        return started[provider]

    yield get
    for vendor in started.values():
        vendor.stop()


@pytest.mark.slow
@pytest.mark.parametrize("run", range(100, 120))
@pytest.mark.parametrize("provider", sorted(HOLDINGS))
def test_killed_apply_converges_many_times(provider, run, vendors, workspace):
    check(crash_run(run, vendors(provider), workspace))
