"""The terminal view of a plan, grouped per provider, removals explained."""

from __future__ import annotations

import json

from reconciler.model import Action, Plan

SYMBOLS = {"assign": "+", "allocate": "~", "update": "~", "remove": "-", "release": "-"}


def action_line(action: Action) -> str:
    quantity = ""
    after = action.changes[0].after if action.changes else None
    if after is not None and after.quantity is not None:
        quantity = f" x{after.quantity}"
    return (
        f"{SYMBOLS[action.verb]} {action.verb:<8} {action.provider}/{action.pool}  "
        f"{action.subject}  {action.license}{quantity}"
    )


def render_text(plan: Plan, *, verbose: bool = False) -> str:
    lines: list[str] = []
    if not plan.actions:
        lines.append("No changes. Licenses match the desired state.")
    else:
        current = None
        for index, action in enumerate(plan.actions, start=1):
            if action.provider != current:
                current = action.provider
                lines.append(f"\n{current}:")
            lines.append(f"  {index:>3}. {action_line(action)}")
            lines.append(f"       why: {action.reason}")
            if verbose:
                lines.append(f"       call: {action.request.method} {action.request.url}")
                if action.request.body is not None:
                    lines.append(f"       body: {json.dumps(action.request.body, sort_keys=True)}")
    for pending in plan.pending:
        lines.append(
            f"  … pending {pending.direction} {pending.provider} "
            f"{pending.key[2]}:{pending.key[3]} {pending.key[4]} ({pending.description})"
        )
    for note in plan.notes:
        lines.append(f"  note: {note}")
    counts = plan.summary.counts
    lines.append("")
    lines.append(
        "Plan: "
        + ", ".join(
            f"{counts.get(v, 0)} to {v}"
            for v in ("assign", "remove", "release", "allocate", "update")
        )
        + "."
    )
    summary = plan.summary
    lines.append(
        f"  {summary.in_sync} grant(s) already as declared; {summary.unmanaged} live grant(s) "
        "not managed here (subject not named, pool not pruned)."
    )
    for pool in plan.summary.pools:
        capacity = "∞" if pool.capacity is None else str(pool.capacity)
        lines.append(
            f"  {pool.provider}/{pool.pool}: {pool.used_before} → {pool.used_after} "
            f"of {capacity} ({pool.seat_delta:+d})"
        )
    return "\n".join(lines).lstrip("\n") + "\n"


def render_requests(plan: Plan) -> str:
    """Dry-run view: every request apply would send, in order, secrets masked."""
    lines = []
    for index, action in enumerate(plan.actions, start=1):
        lines.append(f"{index}. [{action.id}] {action.request.method} {action.request.url}")
        if action.request.body is not None:
            lines.append("   " + json.dumps(action.request.body, sort_keys=True))
    if not lines:
        lines.append("No requests: nothing to change.")
    return "\n".join(lines) + "\n"
