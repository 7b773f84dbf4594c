"""`--parallelism N` changes how many calls a vendor sees at once, and nothing else.

Measured at the vendor: the served simulator counts the requests it is handling and
keeps the peak (`/_sandbox/in-flight`); each request is held 50 ms (a latency fault)
so calls a client sends together overlap there. The Yext read lists its three packs
concurrently, so up to three calls can be in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from reconciler.testing.served import served_sandbox
from tests.e2e.conftest import copy_example


@pytest.fixture
def served_yext(workspace: Path) -> Iterator[dict[str, str]]:
    """The Yext example, limited to one call at a time by its YAML, served over HTTP."""
    desired = copy_example(workspace, "yext.yaml")
    text = (desired / "yext.yaml").read_text()
    (desired / "yext.yaml").write_text(
        text.replace("max_removals: 10", "max_removals: 10\n      concurrency: 1", 1))
    with served_sandbox("desired", workspace) as served:
        exports = served.exports
        admin = f"{exports['YEXT_BASE_URL'].split('/v2')[0]}/_sandbox"
        httpx.put(f"{admin}/faults", json={"latency_ms": 50}).raise_for_status()
        yield exports


def _peak_of(exports: dict[str, str], run: Callable[[], Result]) -> int:
    """The most Yext calls in flight at once while `run` ran."""
    admin = f"{exports['YEXT_BASE_URL'].split('/v2')[0]}/_sandbox/in-flight"
    httpx.delete(admin).raise_for_status()
    result = run()
    assert result.exit_code in (0, 2), result.output
    peak = httpx.get(admin).json()["peak"]
    assert isinstance(peak, int)
    return peak


def test_parallelism_overrides_the_yaml_concurrency_for_one_run(served_yext, cli):
    env = served_yext
    assert _peak_of(env, lambda: cli("plan", "desired", env=env)) == 1
    assert _peak_of(env, lambda: cli("plan", "desired", "--parallelism", "3", env=env)) == 3
    assert _peak_of(env, lambda: cli("drift", "desired", "--parallelism", "2", env=env)) == 2
    assert _peak_of(env, lambda: cli("import", "yext", "--from", "desired/yext.yaml",
                                     "--parallelism", "3", env=env)) == 3
    # The YAML's own setting is back for the next run.
    assert _peak_of(env, lambda: cli("drift", "desired", env=env)) == 1


def test_parallelism_is_not_part_of_the_plan(served_yext, cli, workspace):
    env = served_yext
    assert cli("plan", "desired", "--out", "one.json", env=env).exit_code == 0
    assert cli("plan", "desired", "--out", "three.json", "--parallelism", "3",
               env=env).exit_code == 0
    assert (workspace / "one.json").read_text() == (workspace / "three.json").read_text()
    applied = cli("apply", "one.json", "--parallelism", "3", env=env)
    assert applied.exit_code == 0, applied.output
    assert cli("drift", "desired", env=env).exit_code == 0


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_parallelism_below_one_is_refused(cli, value):
    result = cli("drift", "x.yaml", "--parallelism", value)
    assert result.exit_code == 1, "not 2, which says drift"
    assert "Invalid value for '--parallelism'" in result.output
