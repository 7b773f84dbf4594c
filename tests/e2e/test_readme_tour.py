"""The README's "A 5-minute tour", run exactly as printed: every command exits 0.

The commands are read from README.md (the fenced `sh` block under the heading), never
copied here, so the README and what it promises cannot drift apart.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import EXAMPLES, REPO

HEADING = "## A 5-minute tour"


def tour_commands(readme: str) -> list[list[str]]:
    """Each command line of the first ```sh block after the heading, comments dropped."""
    section = readme.split(HEADING, 1)[1]
    block = re.search(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block is not None, f"no ```sh block under {HEADING!r}"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [words for words in commands if words]


def test_tour_is_parsed_from_the_readme():
    commands = tour_commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert all(words[0] == "reconciler" for words in commands), commands
    assert ["reconciler", "drift", "examples/desired-state", "--sandbox"] in commands


def test_the_readme_tour_converges_run_as_written(tmp_path: Path):
    commands = tour_commands((REPO / "README.md").read_text(encoding="utf-8"))
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "desired-state")
    # The console script of this environment, as a user's shell would find it; no vendor
    # URL or journal from the caller's environment leaks in.
    env = {name: value for name, value in os.environ.items()
           if not name.endswith(("_BASE_URL", "_URL")) and not name.startswith("RECONCILER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    exits: list[tuple[str, int]] = []
    for words in commands:
        done = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        exits.append((shlex.join(words), done.returncode))
        assert done.returncode == 0, f"{shlex.join(words)} exited {done.returncode}:\n" \
                                     f"{done.stdout}\n{done.stderr}"
    drift = [code for line, code in exits if line.startswith("reconciler drift")]
    assert drift == [0], exits
