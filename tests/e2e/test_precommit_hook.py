"""The pre-commit hook `reconciler-validate`, as pre-commit itself reads and runs it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pre_commit.clientlib import load_manifest

from tests.e2e.conftest import EXAMPLES, REPO


def _hook() -> dict[str, Any]:
    """The hook as pre-commit loads it: its own schema check fails on a wrong field."""
    (hook,) = load_manifest(str(REPO / ".pre-commit-hooks.yaml"))
    return dict(hook)


def _run_hook(hook: dict[str, Any], cwd: Path) -> subprocess.CompletedProcess[str]:
    """What pre-commit runs for it: entry, then args, then (if asked) the file names."""
    assert hook["pass_filenames"] is False, "validate merges whole folders, not single files"
    command = [*shlex.split(hook["entry"]), *hook["args"]]
    found = shutil.which(command[0])
    assert found is not None, f"{command[0]} is installed by the package"
    return subprocess.run([found, *command[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_hook_is_reconciler_validate_on_yaml_files():
    hook = _hook()
    assert (hook["id"], hook["entry"], hook["language"]) == (
        "reconciler-validate", "reconciler validate", "python")
    files = re.compile(hook["files"])
    assert all(files.search(f"licenses/{p.name}") for p in EXAMPLES.glob("*.yaml"))
    assert files.search("licenses/extra.yml")
    assert not files.search("README.md") and not files.search("yaml/notes.txt")


def test_the_hook_passes_a_valid_desired_state_folder(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "licenses")
    result = _run_hook(_hook(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_hook_fails_with_file_and_line_on_a_broken_file(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "licenses")
    broken = tmp_path / "licenses" / "yext.yaml"
    broken.write_text(broken.read_text() + "\nunknown_top_level_key: 1\n")
    result = _run_hook(_hook(), tmp_path)
    assert result.returncode == 1
    assert "licenses/yext.yaml:" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_pre_commit_try_repo_installs_and_runs_the_hook(tmp_path):
    """The real thing: pre-commit builds its own environment from this repository."""
    shutil.copytree(EXAMPLES, tmp_path / "licenses")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / ".pre-commit-home")}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "licenses"], cwd=tmp_path, check=True)
    result = subprocess.run(["pre-commit", "try-repo", str(REPO), "reconciler-validate",
                             "--all-files"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"reconciler validate\.+Passed", result.stdout), result.stdout


def test_the_readme_configuration_uses_this_hook_with_its_default_folder():
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (config,) = [yaml.safe_load(b) for b in blocks if "reconciler-validate" in b]
    (repo,) = config["repos"]
    (hook,) = repo["hooks"]
    assert hook["id"] == _hook()["id"] and hook["args"] == _hook()["args"]
    assert all(re.search(hook["files"], f"{hook['args'][0]}/{p.name}")
               for p in EXAMPLES.glob("*.yaml"))
