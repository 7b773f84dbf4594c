"""The pull-request view of a plan that could not be made.

A CI job posts `plan --output markdown` as the one plan comment of a pull request. When
the plan fails, that comment must be replaced by the failure, or yesterday's plan stays
on the pull request as if it were current. The errors are the CLI's one-line messages
(`licenses/yext.yaml:7: unknown key ...`), quoted verbatim in a code block that no
message can close early.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reconciler.render.markdown import COMMENT_LIMIT
from reconciler.secrets import REDACTOR

_LISTED = 50
"""Error lines quoted at most; a desired state with hundreds of mistakes needs the first few."""

ADVICE = {
    "config": "Fix the YAML at the `path:line` shown, push, and the plan runs again "
    "(`reconciler validate PATH` checks it locally without contacting any vendor).",
    "safety": "A guard rail refused the plan. Check that the removals are intended; if "
    "they are, raise `max_removals` in the YAML (or `--max-removals`) and push again.",
    "other": "Nothing was changed at any vendor. Fix the cause named above (a vendor "
    "that cannot be reached names its host and variable), then re-run the job.",
}


def render_failure_markdown(errors: Sequence[str], kind: str = "other") -> str:
    """A Markdown document saying the plan failed, quoting `errors` and what to do."""
    lines = [REDACTOR.text(line) for error in errors for line in error.splitlines()]
    shown = lines[:_LISTED]
    if len(lines) > _LISTED:
        shown.append(f"... and {len(lines) - _LISTED} more line(s)")
    quoted = "\n".join(shown)[: COMMENT_LIMIT // 2]
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", quoted)), default=0))
    return "\n".join([
        "### reconciler plan failed",
        "",
        "**No plan was made**, so none is shown: an earlier plan of this change is out of "
        "date and must not be applied.",
        "",
        f"{fence}text",
        quoted,
        fence,
        "",
        ADVICE.get(kind, ADVICE["other"]),
        "",
    ])
