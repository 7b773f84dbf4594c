"""End-to-end fixtures: the real CLI in a scratch working directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from reconciler.testing.runner import changing, request_log  # noqa: F401  (re-exported)
from reconciler.testing.runner import cli as run_cli

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
    """`reconciler ARGS` in this process: the kit's runner, shared by every e2e test."""
    return run_cli
