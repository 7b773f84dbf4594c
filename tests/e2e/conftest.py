"""End-to-end fixtures: the real CLI in a scratch working directory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "desired-state"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory as the working directory; sandbox state and journal live here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def copy_example(workspace: Path, *names: str) -> Path:
    """Copies example files into `workspace/desired/` and returns that directory."""
    target = workspace / "desired"
    target.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(EXAMPLES / name, target / name)
    return target


@pytest.fixture
def cli() -> Callable[..., Result]:
    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


def request_log(workspace: Path, provider: str) -> list[dict[str, Any]]:
    """What the in-process simulator saw across every CLI run in this workspace."""
    path = workspace / ".reconciler" / "sandbox" / f"{provider}.requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def changing(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["method"] in {"POST", "PUT", "PATCH", "DELETE"}]


def served_exports(lines: Iterable[str]) -> dict[str, str]:
    """The `export NAME=value` lines `sandbox serve` prints, read up to `# serving`."""
    exports: dict[str, str] = {}
    for line in lines:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value.strip("'")
        if line.startswith("# serving"):
            break
    return exports
