"""The way in for a user: the built wheel, installed into a fresh venv outside the checkout,
runs the sandbox demo from an empty directory with nothing from the repository.

The venv gets the wheel and its declared runtime dependencies only (no dev extras, no
psycopg), so a dependency the code needs but the metadata forgets fails here, and so
does an example file the wheel leaves out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.testing.served import read_exports
from tests.e2e.conftest import REPO

PROVIDERS = ["admanager", "commvault", "licensespring", "uipath", "yext"]


@dataclass(frozen=True)
class Installed:
    bin: Path
    home: Path
    """An empty directory outside the checkout, the working directory of every command."""

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a user's shell: the venv first, nothing of the checkout's."""
        env = {k: v for k, v in os.environ.items()
               if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
               and not k.startswith("RECONCILER_")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.bin.parent)
        return {**env, **(extra or {})}

    def run(self, *args: str, extra: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=self.home,
                              env=self.env(extra), capture_output=True, text=True,
                              timeout=120, check=False)


def _checked(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel-install")
    assert not root.resolve().is_relative_to(REPO), "the venv must live outside the checkout"
    source, wheels, venv, home = root / "src", root / "dist", root / "venv", root / "home"
    home.mkdir()
    # Built from a clean copy: setuptools would otherwise reuse (and ship) whatever an
    # earlier build left in the checkout's build/ folder.
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", ".*cache", "__pycache__", ".reconciler",
        ".venv", "tests", "benchmarks"))
    _checked([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
              "--wheel-dir", str(wheels), str(source)], cwd=root)
    (wheel,) = wheels.glob("license_reconciler-*.whl")
    # No pip inside the venv: this environment's pip installs into it (faster, same result).
    _checked([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    _checked([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
              "install", "--quiet", str(wheel)], cwd=root)
    yield Installed(bin=venv / "bin", home=home)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    result = installed.run("python", "-c", "import reconciler; print(reconciler.__file__)")
    assert result.returncode == 0, result.stderr
    location = Path(result.stdout.strip()).resolve()
    assert location.is_relative_to(installed.bin.parent.resolve()), location
    assert not location.is_relative_to(REPO)


def test_version_comes_from_the_package_metadata(installed):
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = installed.run("reconciler", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"reconciler, version {declared}"


def test_postgres_driver_is_an_extra_not_a_runtime_dependency(installed):
    result = installed.run("python", "-c", "import psycopg")
    assert result.returncode == 1 and "No module named 'psycopg'" in result.stderr
    journal = "postgresql://reconciler@127.0.0.1:1/reconciler"
    result = installed.run("reconciler", "journal", "--journal", journal)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: a PostgreSQL journal needs the psycopg driver (No module named 'psycopg'): "
        "pip install 'license-reconciler[postgres]'"]


def test_sandbox_init_then_plan_works_in_an_empty_directory(installed):
    init = installed.run("reconciler", "sandbox", "init", "demo")
    assert init.returncode == 0, init.stderr
    assert sorted(p.name for p in (installed.home / "demo").iterdir()) == [
        f"{name}.yaml" for name in PROVIDERS]
    assert init.stdout.splitlines()[-1] == "next: reconciler plan demo --sandbox"
    plan = installed.run("reconciler", "plan", "demo", "--sandbox")
    assert plan.returncode == 0, plan.stderr
    for provider in PROVIDERS:
        assert f"\n{provider}:\n" in f"\n{plan.stdout}", plan.stdout
    written = (installed.home / "demo" / "admanager.yaml").read_text().splitlines()
    li = next(n for n, text in enumerate(written, 1) if text.strip() == "- user: li")
    cited = [int(found) for found in
             re.findall(r"why: li: declared at demo/admanager\.yaml:(\d+)", plan.stdout)]
    assert cited and all(li < n <= len(written) for n in cited), "li's licences, by line"


def test_sandbox_serve_without_a_path_serves_the_packaged_example(installed):
    server = subprocess.Popen([str(installed.bin / "reconciler"), "sandbox", "serve"],
                              cwd=installed.home, env=installed.env({"PYTHONUNBUFFERED": "1"}),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        exports = read_exports(server.stdout).exports
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        for provider in PROVIDERS:
            assert exports[f"{provider.upper()}_BASE_URL"].startswith("http://127.0.0.1:")
        installed.run("reconciler", "sandbox", "init", "served")
        plan = installed.run("reconciler", "plan", "served", extra=exports)
        assert plan.returncode == 0, plan.stderr
        assert "\nyext:\n" in plan.stdout
    finally:
        server.terminate()
        server.wait(timeout=20)
