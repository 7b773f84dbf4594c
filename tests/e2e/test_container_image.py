"""The container image definition, checked statically (no Docker daemon on CI machines):
a base pinned by digest, the runtime stage built from the wheel of the first stage only,
a non-root user, and the `reconciler` command as the entrypoint.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import dockerfile
import pytest

from tests.e2e.conftest import REPO

PINNED_BASE = re.compile(r"^python:3\.11-slim@sha256:[0-9a-f]{64}$")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _stages() -> list[list[dockerfile.Command]]:
    stages: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            stages.append([])
        assert stages, f"line {command.start_line}: {command.cmd} before the first FROM"
        stages[-1].append(command)
    assert len(stages) >= 2, "a build stage and a runtime stage"
    return stages


def _stage_name(stage: list[dockerfile.Command]) -> str | None:
    value = [v.lower() for v in stage[0].value]
    return stage[0].value[value.index("as") + 1] if "as" in value else None


def _all(stage: list[dockerfile.Command], cmd: str) -> list[dockerfile.Command]:
    return [c for c in stage if c.cmd == cmd]


def test_every_base_image_is_python_311_slim_pinned_by_digest():
    stages = _stages()
    names = {_stage_name(s) for s in stages}
    for stage in stages:
        image = stage[0].value[0]
        assert image in names or PINNED_BASE.match(image), f"FROM {image} is not pinned"
    assert PINNED_BASE.match(stages[-1][0].value[0]), "the runtime base is pinned"


def test_the_runtime_stage_installs_only_the_wheel_built_in_the_build_stage():
    *builds, runtime = _stages()
    build = builds[-1]
    wheel_dirs = [m.group(1) for c in _all(build, "RUN")
                  if (m := re.search(r"pip wheel .*--wheel-dir (\S+)", c.value[0]))]
    assert len(wheel_dirs) == 1, "the build stage builds the wheel with pip wheel"
    copies = _all(runtime, "COPY") + _all(runtime, "ADD")
    assert [(c.flags, c.value[0]) for c in copies] == [
        ((f"--from={_stage_name(build)}",), wheel_dirs[0])], "only the wheel reaches it"
    installs = [c.value[0] for c in _all(runtime, "RUN") if "pip install" in c.value[0]]
    assert len(installs) == 1
    assert f"{wheel_dirs[0]}/license_reconciler-*.whl" in installs[0]
    assert "[postgres]" in installs[0], "the image can use a shared PostgreSQL journal"


def test_the_build_stage_copies_everything_the_wheel_is_built_from():
    build = _stages()[0]
    copied = {Path(source) for c in _all(build, "COPY") for source in c.value[:-1]}
    needed = {Path("pyproject.toml"), Path(PYPROJECT["project"]["readme"]), Path("reconciler"),
              *map(Path, PYPROJECT["project"]["license-files"])}
    assert needed <= copied
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for path in copied:
        assert (REPO / path).exists(), path
        assert not any(fnmatch.fnmatch(str(path), pattern) for pattern in ignored), path


def test_it_runs_as_a_non_root_user_created_for_it():
    runtime = _stages()[-1]
    users = _all(runtime, "USER")
    assert users, "no USER: the container would run as root"
    last_user = users[-1]
    assert all(c.start_line < last_user.start_line for c in _all(runtime, "RUN")), \
        "every RUN after USER would run as that user; root ones belong before it"
    uid = last_user.value[0].split(":")[0]
    assert uid.isdigit() and uid != "0", "a numeric non-root uid (runAsNonRoot can check it)"
    assert any(f"--uid {uid}" in c.value[0] for c in _all(runtime, "RUN")), \
        f"uid {uid} has an account (a home, a name in logs)"


def test_the_workdir_belongs_to_that_user_and_the_entrypoint_is_the_command():
    runtime = _stages()[-1]
    (workdir,) = _all(runtime, "WORKDIR")
    assert any(re.search(rf"chown \S+ {re.escape(workdir.value[0])}\b", c.value[0])
               for c in _all(runtime, "RUN")), "the sandbox state and journal are written there"
    (entrypoint,) = _all(runtime, "ENTRYPOINT")
    assert entrypoint.json and entrypoint.value == ("reconciler",)
    assert "reconciler" in PYPROJECT["project"]["scripts"]


@pytest.mark.parametrize("pattern", [".git", ".reconciler", "*.egg-info", "build"])
def test_dockerignore_keeps_local_state_and_build_leftovers_out(pattern):
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert pattern in lines
