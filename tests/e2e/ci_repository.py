"""The repository both CI template flows start from: `licenses/` holding the Yext and
Commvault examples (the vendors the templates name secrets for), served by their
simulators over HTTP, with retry limits shortened so a refused call fails fast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from reconciler.pipeline import load_desired
from reconciler.sandbox.commvault import CommvaultSimulator
from reconciler.sandbox.serve import ServedSimulators, environment_for
from reconciler.sandbox.yext import YextSimulator
from tests.e2e.conftest import EXAMPLES
from tests.e2e.reliability import FAST_LIMITS

PROVIDERS = ("yext", "commvault")


@contextmanager
def served_vendors() -> Iterator[ServedSimulators]:
    with ServedSimulators({"yext": YextSimulator(), "commvault": CommvaultSimulator()}) as running:
        yield running


def write_licenses(source: Path, served: ServedSimulators) -> dict[str, str]:
    """Writes `source/licenses/` and returns the environment (URLs and sandbox
    credentials) its CI variables hold."""
    (source / "licenses").mkdir(parents=True)
    for provider in PROVIDERS:
        document = yaml.safe_load((EXAMPLES / f"{provider}.yaml").read_text())
        block = document["providers"][provider]
        block["limits"] = {**(block.get("limits") or {}), **FAST_LIMITS}
        (source / "licenses" / f"{provider}.yaml").write_text(
            yaml.safe_dump(document, sort_keys=False))
    return environment_for(load_desired([str(source / "licenses")]), served.urls)
