"""Shared pieces of the reliability tests: fast-retry YAML, fault profiles, log checks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from reconciler.model import Action
from tests.e2e.conftest import EXAMPLES

FAST_LIMITS = {"backoff_initial": 0.001, "backoff_max": 0.01, "retries": 15, "timeout": 0.5,
               "rate_limit": 10_000, "max_removals": 1000}

FAULT_PROFILES: dict[str, dict[str, Any]] = {
    "429-bursts": {"burst_429": 4, "retry_after": 0.0, "seed": 1},
    "5xx-10pct": {"error_rates": {"500": 0.05, "503": 0.05}, "seed": 2},
    "timeouts": {"stall_rate": 0.2, "stall_ms": 3000, "seed": 4},
    "dropped": {"drop_connection_rate": 0.1, "drop_response_rate": 0.2, "seed": 4},
}


def example_text(provider: str) -> str | None:
    """The provider's example: examples/desired-state/<id>.yaml, else the one its
    simulator ships beside its seed (a vendor installed as its own package)."""
    from reconciler.sandbox.registry import simulators

    shipped = EXAMPLES / f"{provider}.yaml"
    if shipped.exists():
        return shipped.read_text()
    simulator = simulators().get(provider)
    return simulator.example_document() if simulator is not None else None


def providers_with_examples() -> list[str]:
    from reconciler.providers import registry

    return sorted(name for name in registry() if example_text(name) is not None)


def fast_example(workspace: Path, provider: str) -> Path:
    """The provider's example with retry limits shortened for tests."""
    target = workspace / "desired"
    target.mkdir(exist_ok=True)
    text = example_text(provider)
    assert text is not None, f"{provider} has no example"
    document = yaml.safe_load(text)
    block = document["providers"][provider]
    block["limits"] = {**(block.get("limits") or {}), **FAST_LIMITS}
    (target / f"{provider}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def journaled_calls(journal: Path, *, one_shot: bool = False) -> set[tuple[str, str]]:
    """(method, path) of every vendor-changing call reconciler journaled.

    `one_shot`: only calls their provider does not mark repeatable. A repeatable one
    (a Commvault release: a second one answers "not consumed") may be sent again
    after a dropped response, by design.
    """
    from urllib.parse import urlsplit

    from reconciler.journal import Journal

    with Journal(journal) as opened:
        actions = [Action.model_validate_json(row["action_json"]) for row in opened.rows()]
    return {(a.request.method, urlsplit(a.request.url).path) for a in actions
            if not (one_shot and a.repeatable)}


def duplicated_changes(log: list[dict[str, Any]], journal: Path) -> list[tuple[str, str, str]]:
    """Identical successful POSTs of journaled changes: a one-shot change made twice.

    Only calls reconciler journals count (a login POST is not a change).
    """
    changes = journaled_calls(journal, one_shot=True)
    seen = Counter(
        (entry["method"], entry["path"] + "?" + _without_secrets(entry["query"]),
         json.dumps(entry["body"], sort_keys=True))
        for entry in log
        if entry["method"] == "POST" and (entry["method"], entry["path"]) in changes
        and isinstance(entry["status"], int) and 200 <= entry["status"] < 300
    )
    return [key for key, count in seen.items() if count > 1]


def _without_secrets(query: str) -> str:
    return "&".join(p for p in query.split("&") if not p.lower().startswith(("authtoken", "api")))
