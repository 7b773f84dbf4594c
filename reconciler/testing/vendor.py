"""What the kit knows about a vendor: its classes (from entry points) and its example.

The example is the desired state the kit runs: a document that differs from the
simulator's seed (so plans have changes) and converges. A vendor package ships it
beside its seed (`seeds/<seed>.example.yaml`); the built-in five keep theirs in the
repository's `examples/desired-state/<id>.yaml`, which the kit is pointed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.envnames import is_env_setting, is_url_setting
from reconciler.providers import registry
from reconciler.providers.base import Provider
from reconciler.sandbox.base import Simulator
from reconciler.sandbox.registry import simulators

FAST_LIMITS: dict[str, Any] = {"backoff_initial": 0.001, "backoff_max": 0.01, "retries": 15,
                               "timeout": 0.5, "rate_limit": 10_000, "max_removals": 1000}
"""Retry settings short enough for tests (faults make the CLI retry a lot)."""

SECRET_WORDS = ("secret", "password", "key", "token")
"""A credential setting whose name holds one of these carries a secret (an app id does not)."""


@dataclass(frozen=True)
class KitVendor:
    """One installed vendor as the kit exercises it."""

    id: str
    provider: type[Provider]
    simulator: type[Simulator]
    example: str

    @classmethod
    def find(cls, provider_id: str, examples: Path | None = None) -> KitVendor:
        providers, sims = registry(), simulators()
        assert provider_id in providers, \
            f"no provider '{provider_id}' is installed (entry point group reconciler.providers)"
        assert provider_id in sims, \
            f"no simulator '{provider_id}' is installed (entry point group reconciler.simulators)"
        text = example_text(provider_id, examples)
        assert text is not None, (
            f"'{provider_id}' ships no example: add seeds/<seed>.example.yaml beside its seed")
        return cls(provider_id, providers[provider_id], sims[provider_id], text)

    def document(self, **limits: Any) -> dict[str, Any]:
        """The example as data, its limits overridden by `FAST_LIMITS` and `limits`."""
        document: dict[str, Any] = yaml.safe_load(self.example)
        block = document["providers"][self.id]
        block["limits"] = {**(block.get("limits") or {}), **FAST_LIMITS, **limits}
        return document

    def write_example(self, workspace: Path, **limits: Any) -> Path:
        """`workspace/desired/<id>.yaml` with fast retry limits; returns the directory."""
        target = workspace / "desired"
        target.mkdir(exist_ok=True)
        text = yaml.safe_dump(self.document(**limits), sort_keys=False, allow_unicode=True)
        (target / f"{self.id}.yaml").write_text(text, encoding="utf-8")
        return target

    def connection(self) -> dict[str, Any]:
        connection: dict[str, Any] = self.document()["providers"][self.id].get("connection") or {}
        return connection

    def secret_values(self) -> list[str]:
        """The sandbox values of the settings that hold secrets."""
        return [value for field, value in self.simulator.environment.items()
                if is_env_setting(field) and not is_url_setting(field)
                and any(word in field for word in SECRET_WORDS)]


def example_text(provider_id: str, examples: Path | None = None) -> str | None:
    """The vendor's example: `examples/<id>.yaml` when a folder is given and has it,
    else the one its simulator ships beside its seed."""
    if examples is not None and (examples / f"{provider_id}.yaml").exists():
        return (examples / f"{provider_id}.yaml").read_text(encoding="utf-8")
    simulator = simulators().get(provider_id)
    return simulator.example_document() if simulator is not None else None


def vendors_with_examples(examples: Path | None = None) -> list[str]:
    return sorted(name for name in registry() if example_text(name, examples) is not None)
