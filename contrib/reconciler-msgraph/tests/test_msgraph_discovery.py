"""Found only by entry points: listed when the package is installed, absent when it is
not, and named by no file of the core."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

import reconciler
from reconciler import discovery
from reconciler.testing.runner import cli

CORE = Path(reconciler.__file__).parent


def test_help_lists_the_vendor_when_installed():
    listed = cli("--help").output
    assert "msgraph" in listed and "Microsoft 365 licences" in listed


def test_help_says_nothing_of_it_when_it_is_not_installed(monkeypatch: pytest.MonkeyPatch):
    def without_package(group: str) -> list[EntryPoint]:
        return [point for point in entry_points(group=group)
                if point.dist is None or point.dist.name != "reconciler-msgraph"]

    monkeypatch.setattr(discovery, "entry_points", without_package)
    monkeypatch.setattr(discovery, "_cache", {})
    listed = cli("--help").output
    assert "msgraph" not in listed and "Microsoft" not in listed
    assert "yext" in listed


def test_no_core_file_names_it():
    named = [str(path.relative_to(CORE)) for path in CORE.rglob("*")
             if path.is_file() and path.suffix in {".py", ".yaml", ".json", ".md", ".toml"}
             and "msgraph" in path.read_text(encoding="utf-8", errors="replace").lower()]
    assert named == []
