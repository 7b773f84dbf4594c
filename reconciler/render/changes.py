"""What an action changes, said the same way by every view: before → after.

Verbs are the vendor's vocabulary (a UiPath removal is an `allocate` of fewer
codes); a reviewer reads the grant change instead: `- RPADEVPRONU`, `UNATT 4 → 2`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.model import Action, Change, ChangeKind, Grant


def _units(grant: Grant) -> str:
    return f" x{grant.quantity}" if grant.quantity is not None else ""


def change_text(change: Change) -> str:
    grant = change.grant
    if change.kind is ChangeKind.ADD:
        expires = f" (until {grant.expires})" if grant.expires else ""
        return f"+ {grant.license}{_units(grant)}{expires}"
    if change.kind is ChangeKind.REMOVE:
        return f"- {grant.license}{_units(grant)}"
    before, after = change.before, change.after
    if before is None or after is None:
        return f"{grant.license}{_units(grant)}"
    parts = []
    if before.quantity != after.quantity:
        parts.append(f"{before.quantity} → {after.quantity}")
    if before.expires != after.expires:
        parts.append(f"expires {before.expires or 'never'} → {after.expires or 'never'}")
    if before.attrs != after.attrs:
        parts.append("settings changed")
    return f"{grant.license} " + ", ".join(parts or ["changed"])


def direction(action: Action) -> str:
    """`-` for an action that frees seats or only removes, `+` takes, `~` otherwise."""
    kinds = {change.kind for change in action.changes}
    if action.seat_delta < 0 or kinds == {ChangeKind.REMOVE}:
        return "-"
    if action.seat_delta > 0 or kinds == {ChangeKind.ADD}:
        return "+"
    if action.changes:
        return "~"
    if action.frees or action.verb in {"remove", "release"}:
        return "-"
    return "+" if action.verb == "assign" else "~"


def action_changes(action: Action) -> str:
    if not action.changes:
        return action.license
    return ", ".join(change_text(change) for change in action.changes)


@dataclass(frozen=True)
class Tally:
    """Grant changes and seats of a set of actions, whatever the verbs."""

    adds: int
    removes: int
    updates: int
    taken: int
    freed: int

    def sentence(self, actions: int) -> str:
        return (
            f"Plan: {actions} action(s): {self.adds} grant(s) to add, {self.removes} to "
            f"remove, {self.updates} to change; {self.taken} seat(s) taken, "
            f"{self.freed} freed."
        )


def tally(actions: Iterable[Action]) -> Tally:
    counts = {kind: 0 for kind in ChangeKind}
    taken = freed = 0
    for action in actions:
        for change in action.changes:
            counts[change.kind] += 1
            delta = change.seat_delta
            taken += max(delta, 0)
            freed += max(-delta, 0)
    return Tally(adds=counts[ChangeKind.ADD], removes=counts[ChangeKind.REMOVE],
                 updates=counts[ChangeKind.UPDATE], taken=taken, freed=freed)
