"""A saved plan is evidence of what was reviewed, never a source of requests.

`apply PLANFILE` rebuilds the plan from the YAML and a fresh read, and proceeds
only when the rebuilt plan says exactly what the saved one says. Everything that
is sent comes from the rebuilt plan, so an edited plan file can at worst be
refused: it cannot add a call, change a host, a path or a body, or drop a rail.
A stale plan (the YAML or a vendor moved since it was made) is one case of this.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from reconciler.model import Action, Plan
from reconciler.secrets import REDACTOR

PLAN_FORMAT_VERSION = 1


def plan_digest(plan: Plan) -> str:
    """What "applies once" is keyed on: exactly what `plan_differences` (and the
    sandbox/target checks of a rebuild) compare, nothing else.

    A field the comparison ignores (fingerprints, notes, reasons, the summary) must
    not count here either: editing a note would otherwise make an applied plan
    "new" again while it still passes the comparison, and it would run twice.
    """
    sealed = {
        "config_digest": plan.config_digest,
        "sandbox": plan.sandbox,
        "targets": list(plan.targets),
        "actions": [[action.id, _signature(action)] for action in plan.actions],
    }
    encoded = json.dumps(sealed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def _signature(action: Action) -> dict[str, Any]:
    """The parts of an action that decide what is sent and why it is allowed."""
    return {
        "verb": action.verb,
        "provider": action.provider,
        "pool": action.pool,
        "subject": str(action.subject),
        "license": action.license,
        "phase": action.phase,
        "frees": action.frees,
        "seat_delta": action.seat_delta,
        "depends_on": list(action.depends_on),
        "repeatable": action.repeatable,
        "call": action.call.model_dump(mode="json"),
        "request": action.request.model_dump(mode="json"),
        "changes": [change.model_dump(mode="json", exclude={"reason"}) for change in
                    action.changes],
    }


def _describe_call(action: Action) -> str:
    path = "/".join(action.call.path)
    return f"{action.call.method} /{path}"


def plan_differences(saved: Plan, rebuilt: Plan) -> list[str]:
    """What the saved plan says that the YAML and the vendors today do not (empty: equal).

    The rebuilt plan is compared as it would be saved: a plan file has every secret
    value masked (a username registered as a secret, inside a subject id, included),
    so the unmasked rebuilt plan would differ from it although it says the same.
    """
    rebuilt = Plan.model_validate(REDACTOR.data(rebuilt.model_dump(mode="json")))
    differences: list[str] = []
    if saved.config_digest != rebuilt.config_digest:
        differences.append(
            "the desired state (YAML) changed since the plan was made"
        )
    saved_by_id = {action.id: action for action in saved.actions}
    rebuilt_by_id = {action.id: action for action in rebuilt.actions}
    if len(saved_by_id) != len(saved.actions):
        differences.append("the plan file lists an action id twice")
    for action_id in sorted(set(saved_by_id) - set(rebuilt_by_id)):
        action = saved_by_id[action_id]
        differences.append(f"{action_id}: in the plan file, not needed now "
                           f"({action.verb} {_describe_call(action)})")
    for action_id in sorted(set(rebuilt_by_id) - set(saved_by_id)):
        action = rebuilt_by_id[action_id]
        differences.append(f"{action_id}: needed now, not in the plan file "
                           f"({action.verb} {_describe_call(action)})")
    for action_id in sorted(set(saved_by_id) & set(rebuilt_by_id)):
        before, after = _signature(saved_by_id[action_id]), _signature(rebuilt_by_id[action_id])
        fields = [name for name in before if before[name] != after[name]]
        if fields:
            differences.append(f"{action_id}: {', '.join(fields)} differ from what the YAML "
                               "and the vendor give now")
    if [a.id for a in saved.actions] != [a.id for a in rebuilt.actions] and not differences:
        differences.append("the actions are in a different order")
    return differences


def unknown_providers(plan: Plan, known: Iterable[str]) -> list[str]:
    """Providers a plan file names that this reconciler does not have."""
    registered = set(known)
    named = {action.provider for action in plan.actions} | set(plan.fingerprints)
    named |= {pending.provider for pending in plan.pending}
    return sorted(named - registered)
