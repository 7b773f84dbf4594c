"""The pull-request view of a plan: stable for the example company, always postable."""

from __future__ import annotations

import shutil
from pathlib import Path

from reconciler.model import Call, Plan, RequestPreview, Subject, Summary
from reconciler.render.markdown import COMMENT_LIMIT, render_markdown
from tests.e2e.conftest import EXAMPLES

SNAPSHOT = Path(__file__).parent / "snapshots" / "example-company-plan.md"
GITHUB_COMMENT_LIMIT = 65_536


def test_example_company_plan_matches_the_snapshot(workspace, cli):
    shutil.copytree(EXAMPLES, workspace / "desired-state")
    result = cli("plan", "desired-state", "--sandbox", "--output", "markdown")
    assert result.exit_code == 0, result.output
    assert result.stdout == SNAPSHOT.read_text(), (
        "the Markdown plan changed; if on purpose, regenerate tests/e2e/snapshots/"
        "example-company-plan.md with `reconciler plan desired-state --sandbox -o markdown` "
        "run from a copy of examples/ (fresh sandbox)")
    assert "<details>" in result.stdout and "| cost delta |" in result.stdout


def test_every_removal_shows_its_reason():
    text = SNAPSHOT.read_text()
    removals = [line for line in text.splitlines() if line.startswith(("- 🔴 `- remove`",
                                                                        "- 🔴 `- release`"))]
    assert removals and all(line.split("): ", 1)[1].strip() for line in removals)


def test_a_10k_action_plan_fits_in_one_github_comment():
    from reconciler.model import Action

    actions = tuple(
        Action(id=f"p:{i}", verb="remove" if i % 2 else "assign", provider=f"p{i % 3}",
               pool=f"pool-{i % 7}", subject=Subject(kind="user", id=f"user-{i:05}"),
               license="L", phase=100, reason=f"user-{i:05} is declared at big.yaml:{i} "
               "without 'L'", request=RequestPreview(method="POST", url="https://x"),
               call=Call.to("POST", "x"))
        for i in range(10_000))
    plan = Plan(config_digest="d", summary=Summary(counts={"assign": 5000, "remove": 5000}),
                actions=actions)
    text = render_markdown(plan)
    assert len(text) <= COMMENT_LIMIT < GITHUB_COMMENT_LIMIT
    assert "Plan truncated" in text and "10000" not in text.split("Plan truncated")[0][-20:]
    assert text.count("<details>") == text.count("</details>")
