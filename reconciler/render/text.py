"""The terminal view of a plan, grouped per provider, removals explained."""

from __future__ import annotations

import json
import unicodedata

from reconciler.model import Action, Plan
from reconciler.render.changes import action_changes, direction, tally
from reconciler.render.headline import headline

HELD_BACK_ADVICE = (
    "Wait for the vendor (`reconciler apply --wait SECONDS` polls pending requests), or "
    "check the vendor yourself and settle each with "
    "`reconciler journal --resolve ACTION_ID done|not-done`."
)


def escape_controls(text: str) -> str:
    """Control and format characters shown as escapes, so an id cannot forge a line.

    A newline in an id would otherwise start a new line in a CI log, where
    `::error::` or `::add-mask::` at the start of a line is a command.
    """
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() or char == " " else _escape(char) for char in text
    )


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100 and unicodedata.category(char) == "Cc":
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def action_line(action: Action) -> str:
    """`- allocate uipath/acme  user:bob@acme.example  - RPADEVPRONU`: the call, then
    the grant change it makes (before → after), whatever the vendor calls the verb."""
    return escape_controls(
        f"{direction(action)} {action.verb:<8} {action.provider}/{action.pool}  "
        f"{action.subject}  {action_changes(action)}"
    )


def render_text(plan: Plan, *, verbose: bool = False) -> str:
    lines: list[str] = []
    if plan.errors:
        lines.append(f"Not read: {len(plan.errors)} provider(s) failed, so their changes are "
                     "not in this plan:")
        lines.extend(f"  ! {error.provider}: {error.message}" for error in plan.errors)
        lines.append("")
    if plan.pending:
        lines.append(f"Held back: {len(plan.pending)} change(s) not settled yet, "
                     "so this is not in sync:")
        for pending in plan.pending:
            lines.append(
                f"  … {pending.direction} {pending.provider} "
                f"{pending.key[2]}:{pending.key[3]} {pending.key[4]} ({pending.description})"
            )
        lines.append(f"  {HELD_BACK_ADVICE}")
        lines.append("")
    if plan.converged:
        lines.append("No changes. Licenses match the desired state.")
    elif not plan.actions and not plan.pending:
        lines.append("No changes in the providers that could be read.")
    elif not plan.actions:
        lines.append("No new changes.")
    else:
        current = None
        for index, action in enumerate(plan.actions, start=1):
            if action.provider != current:
                current = action.provider
                lines.extend(["", f"{current}:"])
            lines.append(f"  {index:>3}. {action_line(action)}")
            lines.append(f"       why: {action.reason}")
            if verbose:
                lines.append(f"       call: {action.request.method} {action.request.url}")
                if action.request.body is not None:
                    lines.append(f"       body: {json.dumps(action.request.body, sort_keys=True)}")
    for note in plan.notes:
        lines.append(f"  note: {note}")
    lines.append("")
    lines.append(tally(plan.actions).sentence(len(plan.actions)))
    if plan.actions:
        lines.append(f"  In short: {headline(plan)}.")
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
    return "\n".join(escape_controls(line) for line in lines).lstrip("\n") + "\n"


def render_requests(plan: Plan) -> str:
    """Dry-run view: every request apply would send, in order, secrets masked."""
    lines = []
    for index, action in enumerate(plan.actions, start=1):
        lines.append(f"{index}. [{action.id}] {action.request.method} {action.request.url}")
        if action.request.body is not None:
            lines.append("   " + json.dumps(action.request.body, sort_keys=True))
    if not lines:
        lines.append("No requests: nothing to change.")
    return "\n".join(escape_controls(line) for line in lines) + "\n"
