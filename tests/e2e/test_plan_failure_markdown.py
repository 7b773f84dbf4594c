"""`plan --output markdown` that fails prints a Markdown error document and exits 1.

The CI templates post stdout as the pull request's one plan comment; when the plan
fails, the comment must say so (with the errors verbatim) instead of keeping the last
plan that worked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from reconciler.render.failure import render_failure_markdown
from tests.e2e.conftest import copy_example


def reconciler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console script in a subprocess: stdout and stderr are really separate."""
    command = [str(Path(sys.executable).parent / "reconciler"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=120)


def test_an_invalid_desired_state_prints_the_error_document_on_stdout(workspace):
    desired = copy_example(workspace, "yext.yaml")
    text = (desired / "yext.yaml").read_text()
    (desired / "yext.yaml").write_text(text.replace("    limits:\n", "    limitz:\n", 1))
    done = reconciler("plan", "desired", "--sandbox", "--output", "markdown", cwd=workspace)
    assert done.returncode == 1
    (error,) = [line for line in done.stderr.splitlines() if "limitz" in line]
    assert error.startswith("desired/yext.yaml:13: ")
    assert done.stdout.startswith("### reconciler plan failed\n")
    assert f"```text\n{error}\n```" in done.stdout, "quoted verbatim, on stdout only"
    assert "reconciler validate" in done.stdout
    assert not re.search(r"^\*\*\d+ changes?: ", done.stdout, re.M), "no plan headline"


def test_a_refused_plan_prints_the_refusal_and_what_to_do(workspace):
    copy_example(workspace, "yext.yaml")
    done = reconciler("plan", "desired", "--sandbox", "--output", "markdown",
                      "--max-removals", "0", "--verbose", cwd=workspace)
    assert done.returncode == 1
    assert done.stdout.startswith("### reconciler plan failed\n")
    assert "max_removals" in done.stdout and "--max-removals" in done.stdout
    refusal = next(line for line in done.stderr.splitlines() if line.startswith("error: "))
    assert refusal in done.stdout
    # Logs and progress stay on stderr: stdout is exactly one Markdown document.
    assert "read yext" in done.stderr and "read yext" not in done.stdout
    assert "INFO" not in done.stdout


def test_text_output_keeps_stdout_empty_on_failure(workspace):
    desired = copy_example(workspace, "yext.yaml")
    (desired / "yext.yaml").write_text("providers: [\n")
    done = reconciler("plan", "desired", "--sandbox", cwd=workspace)
    assert (done.returncode, done.stdout) == (1, "")
    assert "desired/yext.yaml:" in done.stderr


def test_no_error_text_can_close_the_code_block_early():
    document = render_failure_markdown(["x.yaml:1: bad ```` fence", "second"], "config")
    assert "`````text\nx.yaml:1: bad ```` fence\nsecond\n`````\n" in document
    assert document.startswith("### reconciler plan failed\n")
