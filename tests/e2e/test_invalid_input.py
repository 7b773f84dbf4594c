"""Bad input gets `path:line: message`, exit 1, and changes nothing at any vendor.

Each case in tests/corpus/invalid/ is a file, or a directory of files (conflicts
across files). The file at fault starts with `# expect: LINE: TEXT`; an optional
`# mode: real` runs it without --sandbox (for missing environment variables).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import changing, request_log

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "invalid"
CASES = sorted(CORPUS.iterdir())


def expectation(case: Path) -> tuple[str, int, str, str]:
    """(file at fault relative to the case, line, expected text, mode)."""
    files = sorted(case.glob("*.yaml")) if case.is_dir() else [case]
    for file in files:
        text = file.read_bytes().decode("utf-8", errors="replace")
        found = re.search(r"^# expect: (\d+): (.+)$", text, re.MULTILINE)
        if found:
            mode = re.search(r"^# mode: (\w+)$", text, re.MULTILINE)
            name = f"{case.name}/{file.name}" if case.is_dir() else case.name
            return name, int(found.group(1)), found.group(2).strip(), (
                mode.group(1) if mode else "sandbox")
    raise AssertionError(f"{case.name} lacks an expect header")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_file_is_reported_with_its_line_and_nothing_changes(case, workspace, cli):
    name, line, text, mode = expectation(case)
    (workspace / "bad").mkdir()
    if case.is_dir():
        shutil.copytree(case, workspace / "bad" / case.name)
    else:
        shutil.copy(case, workspace / "bad" / case.name)
    path = f"bad/{name}"
    args = ["plan", "bad"] + (["--sandbox"] if mode == "sandbox" else [])
    result = cli(*args, env={"RECONCILER_TEST_UNSET_KEY": ""})
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: " in result.stderr, result.stderr
    assert text in result.stderr, result.stderr
    log = request_log(workspace, "yext")
    assert changing(log) == []
    if "pool" not in text and "declared in" not in text:
        assert log == [], "nothing needed the vendor, so nothing may be sent"
    validated = cli("validate", "bad")
    if validated.exit_code == 1:
        assert f"{path}:{line}: " in validated.stderr


def test_corpus_is_big_enough():
    assert len(CASES) >= 50


def test_huge_file_is_refused_before_parsing(workspace, cli):
    (workspace / "bad").mkdir()
    filler = "# padding\n" * 3_400_000
    (workspace / "bad" / "huge.yaml").write_text("providers: {}\n" + filler)
    result = cli("plan", "bad", "--sandbox")
    assert result.exit_code == 1
    assert "bad/huge.yaml:1: file is" in result.stderr and "the limit is" in result.stderr
    assert request_log(workspace, "yext") == []


def test_all_problems_are_reported_not_just_the_first(workspace, cli):
    (workspace / "bad").mkdir()
    for name in ("unknown_subject_key.yaml", "duplicate_license.yaml"):
        shutil.copy(CORPUS / name, workspace / "bad" / name)
    result = cli("validate", "bad")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert any("unknown_subject_key.yaml:7: unknown key 'licences'" in line for line in lines)
    assert any("duplicate_license.yaml:7:" in line and "twice" in line for line in lines)


def test_valid_examples_validate(cli):
    from tests.e2e.conftest import EXAMPLES

    result = cli("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
