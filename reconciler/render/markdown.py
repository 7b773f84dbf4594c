"""The pull-request view: a summary table, then actions per provider, folded."""

from __future__ import annotations

from collections import defaultdict

from reconciler.model import Action, Plan
from reconciler.render.text import SYMBOLS

VERBS = ("assign", "remove", "release", "allocate", "update")
COMMENT_LIMIT = 60_000
"""GitHub rejects comments over 65,536 characters; leave room for a header."""


def render_markdown(plan: Plan, *, limit: int = COMMENT_LIMIT) -> str:
    head: list[str] = ["## reconciler plan", ""]
    if not plan.actions and not plan.pending:
        head.append("**No changes.** Licenses match the desired state.")
        return "\n".join(head) + "\n"
    per_provider: dict[str, list[Action]] = defaultdict(list)
    for action in plan.actions:
        per_provider[action.provider].append(action)
    head += ["| provider | " + " | ".join(VERBS) + " |", "|---|" + "---|" * len(VERBS)]
    for provider, actions in sorted(per_provider.items()):
        counts = {verb: sum(1 for a in actions if a.verb == verb) for verb in VERBS}
        head.append(f"| {provider} | " + " | ".join(str(counts[v]) for v in VERBS) + " |")
    head += [
        "",
        "| pool | in use | after | capacity | seat delta | cost delta |",
        "|---|---|---|---|---|---|",
    ]
    for pool in plan.summary.pools:
        cost = "" if pool.unit_price is None else f"{pool.seat_delta * pool.unit_price:+.2f}"
        capacity = "" if pool.capacity is None else str(pool.capacity)
        head.append(
            f"| {pool.provider}/{pool.pool} | {pool.used_before} | {pool.used_after} | "
            f"{capacity} | {pool.seat_delta:+d} | {cost} |"
        )
    head.append("")
    body: list[str] = []
    for provider, actions in sorted(per_provider.items()):
        body.append(f"<details><summary><b>{provider}</b>: {len(actions)} actions</summary>\n")
        for action in actions:
            body.append(
                f"- `{SYMBOLS[action.verb]} {action.verb}` **{action.subject}** "
                f"`{action.license}` ({action.pool}): {_escape(action.reason)}"
            )
        body.append("\n</details>\n")
    if plan.pending:
        body.append(f"**{len(plan.pending)} change(s) pending at the vendor** (not planned again).")
    for note in plan.notes:
        body.append(f"> {_escape(note)}")
    text = "\n".join(head + body) + "\n"
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = len("\n".join(head))
    for line in body:
        if size + len(line) + 200 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if kept and kept[-1] != "\n</details>\n" and any(line.startswith("<details") for line in kept):
        kept.append("\n</details>\n")
    kept.append(
        f"\n_Plan truncated: showing {len(kept)} of {len(body)} lines. "
        "The full plan is in the saved plan file (JSON)._"
    )
    return "\n".join(head + kept) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
