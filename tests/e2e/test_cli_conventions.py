"""Conventions every command follows: `-h`, and shell completion that a shell can use."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import main

BIN = Path(sys.executable).parent
"""Where this environment's `reconciler` console script lives (the shell runs it)."""


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *_command_paths(main)], ids=lambda p: " ".join(p) or "root")
def test_dash_h_is_help_on_every_command(path: tuple[str, ...]) -> None:
    short = CliRunner().invoke(main, [*path, "-h"])
    long = CliRunner().invoke(main, [*path, "--help"])
    assert short.exit_code == 0, short.output
    assert short.output == long.output
    assert short.output.startswith("Usage: ")


def _script(shell: str, tmp_path: Path) -> Path:
    printed = CliRunner().invoke(main, ["completion", shell])
    assert printed.exit_code == 0, printed.output
    script = tmp_path / f"reconciler.{shell}"
    script.write_text(printed.output)
    return script


def _bash(command: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_script_registers_and_completes_subcommands(tmp_path: Path) -> None:
    script = _script("bash", tmp_path)
    registered = _bash(f"source {script} && complete -p reconciler")
    assert registered.strip() == "complete -o nosort -F _reconciler_completion reconciler"
    # What bash does at a tab press: set COMP_WORDS/COMP_CWORD, call the function.
    offered = _bash(f"source {script} && COMP_WORDS=(reconciler pl) COMP_CWORD=1 && "
                    "_reconciler_completion reconciler && printf '%s\\n' \"${COMPREPLY[@]}\"")
    assert offered.split() == ["plan"]
    offered = _bash(f"source {script} && COMP_WORDS=(reconciler sandbox '') COMP_CWORD=2 && "
                    "_reconciler_completion reconciler && printf '%s\\n' \"${COMPREPLY[@]}\"")
    assert set(offered.split()) >= {"faults", "reset", "serve"}
    options = _bash(f"source {script} && COMP_WORDS=(reconciler plan --lock) COMP_CWORD=2 && "
                    "_reconciler_completion reconciler && printf '%s\\n' \"${COMPREPLY[@]}\"")
    assert options.split() == ["--lock-timeout"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_clicks_own(shell: str, tmp_path: Path) -> None:
    env = {**os.environ, "_RECONCILER_COMPLETE": f"{shell}_source"}
    clicks = subprocess.run([str(BIN / "reconciler")], capture_output=True, text=True, env=env,
                            timeout=60, check=False)
    assert _script(shell, tmp_path).read_text() == clicks.stdout
    assert "_RECONCILER_COMPLETE" in clicks.stdout


def test_unknown_shell_is_refused() -> None:
    result = CliRunner().invoke(main, ["completion", "powershell"])
    assert result.exit_code != 0
    assert "'powershell' is not one of 'bash', 'zsh', 'fish'" in result.output


@pytest.mark.parametrize("args", [["drift", "x.yaml", "--no-such-flag"], ["no-such-command"],
                                  ["--no-such-flag"], ["sandbox", "faults"],
                                  ["plan", "x.yaml", "--lock-timeout", "inf"]])
def test_a_refused_command_line_exits_1_never_2_which_means_changes(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "Error: " in result.output and "Traceback" not in result.output


def test_bare_reconciler_still_shows_the_help() -> None:
    assert "Commands:" in CliRunner().invoke(main, []).output
