"""Bad input gets `path:line: message`, exit 1, and changes nothing at any vendor.

Each file in tests/corpus/invalid/ starts with `# expect: LINE: TEXT`; an optional
`# mode: real` runs it without --sandbox (for missing environment variables).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import changing, request_log

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "invalid"
CASES = sorted(CORPUS.glob("*.yaml"))


def expectation(case: Path) -> tuple[int, str, str]:
    text = case.read_bytes().decode("utf-8", errors="replace")
    found = re.search(r"^# expect: (\d+): (.+)$", text, re.MULTILINE)
    assert found, f"{case.name} lacks an expect header"
    mode = re.search(r"^# mode: (\w+)$", text, re.MULTILINE)
    return int(found.group(1)), found.group(2).strip(), mode.group(1) if mode else "sandbox"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_file_is_reported_with_its_line_and_nothing_changes(case, workspace, cli):
    line, text, mode = expectation(case)
    target = workspace / "bad" / case.name
    target.parent.mkdir()
    shutil.copy(case, target)
    path = f"bad/{case.name}"
    args = ["plan", "bad"] + (["--sandbox"] if mode == "sandbox" else [])
    result = cli(*args, env={"RECONCILER_TEST_UNSET_KEY": ""})
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: " in result.stderr, result.stderr
    assert text in result.stderr, result.stderr
    assert changing(request_log(workspace, "yext")) == []
    validated = cli("validate", "bad")
    if validated.exit_code == 1:
        assert f"{path}:{line}: " in validated.stderr


def test_corpus_is_big_enough():
    assert len(CASES) >= 10


def test_valid_examples_validate(cli):
    from tests.e2e.conftest import EXAMPLES

    result = cli("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
