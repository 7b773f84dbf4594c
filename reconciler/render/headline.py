"""The one line a reviewer reads first: what changes, in grants, seats and money.

`20 changes: 8 grants added, 9 removed, 3 changed; -2 seats; -78.00 USD/month`.
Counted per grant change (what the YAML author edited), not per vendor call: one
UiPath allocation call can change three grants; a call that changes no grant (a
vendor's clean-up step) counts as an "other call". Held-back requests are named here
too, so "no changes" is never said while something is still unsettled.
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.model import Plan
from reconciler.render.changes import tally
from reconciler.render.cost import cost_text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"


def headline(plan: Plan, strong: Callable[[str], str] = str) -> str:
    """The headline as plain text; `strong` marks the removal count (Markdown bolds it)."""
    held = f"{len(plan.pending)} held back" if plan.pending else ""
    unread = (f"{_plural(len(plan.errors), 'provider')} not read: "
              + ", ".join(error.provider for error in plan.errors)) if plan.errors else ""
    if plan.converged:
        return "No changes: licenses match the desired state"
    if not plan.actions:
        if not plan.pending:
            return f"No changes in the providers read; {unread}"
        return "; ".join(filter(None, [
            f"No new changes; {held} (not settled at the vendor yet)", unread]))
    counted = tally(plan.actions)
    parts = [(counted.adds, "added"), (counted.removes, "removed"), (counted.updates, "changed")]
    listed = [(count, verb) for count, verb in parts if count]
    words = [
        f"{_plural(count, 'grant') if index == 0 else count} {verb}"
        for index, (count, verb) in enumerate(listed)
    ]
    words = [strong(word) if verb == "removed" else word
             for word, (_, verb) in zip(words, listed, strict=True)]
    # A call that changes no declared grant (a vendor's clean-up step) is still a change.
    others = sum(1 for action in plan.actions if not action.changes)
    if others:
        words.append(f"{_plural(others, 'other call')}")
    total = counted.adds + counted.removes + counted.updates + others
    line = f"{_plural(total, 'change')}: {', '.join(words)}"
    seats = sum(pool.seat_delta for pool in plan.summary.pools)
    extras = [f"{seats:+d} {'seat' if abs(seats) == 1 else 'seats'}" if seats else "",
              cost_text(plan.summary.pools, skip_zero=True), held, unread]
    return "; ".join([line, *(extra for extra in extras if extra)])
