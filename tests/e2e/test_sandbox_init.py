"""`reconciler sandbox init [DIR]`: the packaged example, written where the user asks."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.sandbox.demo import EXAMPLE_DIR, example_files
from tests.e2e.conftest import EXAMPLES, REPO

NAMES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def test_init_writes_the_example_into_desired_state_by_default(workspace, cli):
    result = cli("sandbox", "init")
    assert result.exit_code == 0, result.output
    target = workspace / "desired-state"
    assert sorted(p.name for p in target.iterdir()) == NAMES
    assert result.output.splitlines() == [
        *(f"wrote {Path('desired-state') / name}" for name in NAMES),
        "next: reconciler plan desired-state --sandbox"]


def test_written_files_are_the_example_with_a_modeline_for_a_schema_beside_them(workspace, cli):
    assert cli("sandbox", "init", "demo").exit_code == 0
    for name in NAMES:
        original = (EXAMPLES / name).read_text().splitlines()
        written = (workspace / "demo" / name).read_text().splitlines()
        assert written[0] == "# yaml-language-server: $schema=reconciler.schema.json"
        assert written[1:] == original[1:]


def test_the_written_example_plans_like_the_repository_one(workspace, cli):
    assert cli("sandbox", "init", "demo").exit_code == 0
    ours = cli("plan", "demo", "--sandbox", "--output", "json").stdout
    theirs = cli("plan", str(EXAMPLES), "--sandbox", "--output", "json").stdout
    assert '"admanager"' in ours and '"yext"' in ours
    assert ours.replace("demo/", "") == theirs.replace(f"{EXAMPLES}/", "")


def test_init_refuses_to_overwrite_and_writes_nothing(workspace, cli):
    target = workspace / "demo"
    target.mkdir()
    (target / "yext.yaml").write_text("mine\n")
    result = cli("sandbox", "init", "demo")
    assert result.exit_code == 1
    assert result.output == ("error: demo/yext.yaml already exists; nothing written "
                             "(--force overwrites)\n")
    assert [p.name for p in target.iterdir()] == ["yext.yaml"]
    assert (target / "yext.yaml").read_text() == "mine\n"


def test_init_force_overwrites_and_keeps_other_files(workspace, cli):
    target = workspace / "demo"
    target.mkdir()
    (target / "yext.yaml").write_text("mine\n")
    (target / "notes.txt").write_text("keep\n")
    assert cli("sandbox", "init", "demo").exit_code == 1
    result = cli("sandbox", "init", "demo", "--force")
    assert result.exit_code == 0, result.output
    assert (target / "yext.yaml").read_text().endswith((EXAMPLES / "yext.yaml").read_text()
                                                       .split("\n", 1)[1])
    assert (target / "notes.txt").read_text() == "keep\n"


def test_init_into_a_file_is_one_line_error(workspace, cli):
    (workspace / "taken").write_text("")
    result = cli("sandbox", "init", "taken")
    assert result.exit_code == 1, "a refused command line is an error, never exit 2 (drift)"
    assert "Directory 'taken' is a file." in result.output
    assert "Traceback" not in result.output


def test_the_repository_example_is_a_link_to_the_packaged_one_not_a_copy():
    assert EXAMPLES.is_symlink() and EXAMPLES.resolve() == EXAMPLE_DIR
    listed = subprocess.run(["git", "ls-files", "--stage", "examples/desired-state"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert listed.split()[0] == "120000", "git stores the link itself"
    assert [p.name for p in example_files()] == NAMES and len(NAMES) == 5
