"""The pure planner: diff, scope rules, capacity, ordering, determinism."""

from __future__ import annotations

import pytest

from reconciler.errors import CapacityError, ConfigError, SafetyError
from reconciler.model import ChangeKind, PendingChange
from reconciler.planner import build_plan, diff
from reconciler.render.json import render_json
from tests.unit.factories import TODAY, current, desired, grant, live, one_action_per_change

MAKERS = {"acme": one_action_per_change}


def plan_for(want, have, **kwargs):
    return build_plan(want, {"acme": have}, MAKERS, today=TODAY, **kwargs)


def test_swap_frees_seat_before_assigning_in_a_full_pack():
    want = desired([grant("b", "pack")], subjects=["a", "b"])
    have = current([live("a", "pack")], {"pack": 1})
    plan = plan_for(want, have)
    assert [a.verb for a in plan.actions] == ["remove", "assign"]
    remove, assign = plan.actions
    assert assign.depends_on == (remove.id,), "a take in a full pool waits for the free"
    assert plan.summary.pools[0].used_after == 1


def test_take_with_spare_capacity_does_not_wait_for_frees():
    want = desired([grant("b", "pack")], subjects=["a", "b"])
    have = current([live("a", "pack")], {"pack": 2})
    assign = next(a for a in plan_for(want, have).actions if a.verb == "assign")
    assert assign.depends_on == ()


def test_end_state_over_capacity_is_refused_naming_pool_numbers_and_file():
    want = desired([grant("a", "pack", line=7), grant("b", "pack", line=8)])
    have = current([], {"pack": 1})
    with pytest.raises(CapacityError) as caught:
        plan_for(want, have)
    message = str(caught.value)
    assert "desired.yaml:7" in message
    assert "'pack' would hold 2 seats but has 1" in message


def test_pool_already_over_capacity_may_still_shrink():
    want = desired([grant("a", "pack")], subjects=["a", "b", "c"])
    have = current([live("a", "pack"), live("b", "pack"), live("c", "pack")], {"pack": 1})
    plan = plan_for(want, have)
    assert sorted(a.subject.id for a in plan.actions) == ["b", "c"]


def test_unknown_pool_is_a_config_error_with_location():
    want = desired([grant("a", "no-such-pack", line=12)])
    with pytest.raises(ConfigError) as caught:
        plan_for(want, current([], {"pack": 5}))
    assert "desired.yaml:12" in str(caught.value)
    assert "unknown pool 'no-such-pack'" in str(caught.value)


def test_named_subject_is_authoritative_and_unnamed_subjects_are_left_alone():
    want = desired([grant("a", "p1")], subjects=["a"])
    have = current([live("a", "p1"), live("a", "p2"), live("stranger", "p2")], {"p1": 5, "p2": 5})
    changes = diff(want.providers["acme"], have, today=TODAY).changes
    assert [(c.kind, c.grant.subject.id, c.grant.license) for c in changes] == [
        (ChangeKind.REMOVE, "a", "p2")
    ]
    assert "declared at desired.yaml:10 without 'p2'" in changes[0].reason


def test_prune_makes_the_whole_pool_authoritative():
    want = desired([grant("a", "p1")], subjects=["a"], prune=["p1"])
    have = current(
        [live("a", "p1"), live("stranger", "p1"), live("stranger", "p2")], {"p1": 5, "p2": 5}
    )
    changes = diff(want.providers["acme"], have, today=TODAY).changes
    assert [(c.grant.subject.id, c.grant.pool) for c in changes] == [("stranger", "p1")]
    assert "pruned" in changes[0].reason


def test_protected_subject_is_never_removed_from():
    want = desired([], subjects=["vip"], protected=["vip"], prune=["p1"])
    have = current([live("vip", "p1")], {"p1": 5})
    result = diff(want.providers["acme"], have, today=TODAY)
    assert result.changes == []
    assert result.protected_skips == 1


def test_expiry_difference_is_an_update_not_a_remove_and_add():
    import datetime as dt

    want = desired([grant("a", "p1", expires=dt.date(2027, 6, 30))])
    have = current([live("a", "p1")], {"p1": 5})
    plan = plan_for(want, have)
    assert [a.verb for a in plan.actions] == ["update"]
    assert "expires never → 2027-06-30" in plan.actions[0].reason


def test_grant_whose_expiry_has_passed_is_not_assigned():
    import datetime as dt

    want = desired([grant("a", "p1", expires=dt.date(2026, 1, 1))])
    plan = plan_for(want, current([], {"p1": 5}))
    assert plan.actions == ()
    assert any("expired on 2026-01-01" in note for note in plan.notes)


def test_pending_change_is_not_planned_again():
    want = desired([grant("a", "p1")])
    held = PendingChange(
        provider="acme",
        key=("acme", "p1", "entity", "a", "p1"),
        direction="add",
        request_id="7501",
        description="pending approval",
    )
    plan = plan_for(want, current([], {"p1": 5}), extra_pending=[held])
    assert plan.actions == ()
    assert plan.pending == (held,)


def test_too_many_removals_are_refused_unless_the_limit_is_raised():
    have = current([live(f"s{i}", "p1") for i in range(4)], {"p1": 10})
    want = desired([], subjects=[f"s{i}" for i in range(4)], max_removals=3)
    with pytest.raises(SafetyError, match="would remove 4 grants \\(limit 3\\)"):
        plan_for(want, have)
    assert len(plan_for(want, have, max_removals=4).actions) == 4


def test_same_inputs_give_byte_identical_plans():
    grants = [grant(f"s{i:02}", f"p{i % 3}") for i in range(30)]
    have = current(
        [live(f"s{i:02}", f"p{(i + 1) % 3}") for i in range(30)], {"p0": 50, "p1": 50, "p2": 50}
    )
    first = render_json(plan_for(desired(grants), have, max_removals=100))
    second = render_json(plan_for(desired(list(reversed(grants))), have, max_removals=100))
    assert first == second


def test_no_changes_when_in_sync():
    want = desired([grant("a", "p1")])
    plan = plan_for(want, current([live("a", "p1")], {"p1": 1}))
    assert not plan.has_changes
    assert plan.summary.counts == {
        "assign": 0,
        "remove": 0,
        "release": 0,
        "allocate": 0,
        "update": 0,
    }


def test_summary_counts_grants_in_sync_and_grants_left_unmanaged():
    want = desired([grant("a", "p1")], subjects=["a"])
    have = current([live("a", "p1"), live("stranger", "p1")], {"p1": 5})
    summary = plan_for(want, have).summary
    assert (summary.in_sync, summary.unmanaged) == (1, 1)


def test_seats_pending_at_the_vendor_count_against_capacity():
    from reconciler.model import Change
    from reconciler.planner import check_capacity

    state = current([live("a", "L")], pools={"L": 2})
    change = Change(kind=ChangeKind.ADD, after=grant("b", "L"), reason="declared")
    assert check_capacity(state, [change]) == []
    waiting = PendingChange(provider="acme", key=("acme", "L", "entity", "c", "L"),
                            direction="add", request_id="R1", description="pending")
    problems = check_capacity(state, [change], [waiting])
    assert problems and "1 pending" in problems[0].message


def test_a_pending_allocation_counts_its_quantity_against_capacity():
    """A pending add of 4 units takes 4, not 1 (issue 22: PendingChange had no quantity)."""
    from reconciler.model import Change
    from reconciler.planner import check_capacity

    state = current([live("a", "L", quantity=3)], pools={"L": 10})
    state = state.model_copy(update={"pools": (state.pools[0].model_copy(
        update={"used": 3, "unit": "quantity"}),)})
    change = Change(kind=ChangeKind.ADD, after=grant("b", "L", quantity=2), reason="declared")
    waiting = PendingChange(provider="acme", key=("acme", "L", "entity", "c", "L"),
                            direction="add", request_id="R1", description="pending",
                            quantity=6)
    problems = check_capacity(state, [change], [waiting])
    assert problems and "would hold 11 quantity but has 10 (3 in use, 6 pending, +2 planned" \
        in problems[0].message
    assert check_capacity(state, [change], [waiting.model_copy(update={"quantity": 5})]) == []


def test_a_held_back_change_carries_its_quantity():
    from reconciler.model import Action, Call, Change, RequestPreview, Subject
    from reconciler.pipeline import _held

    change = Change(kind=ChangeKind.ADD, after=grant("b", "L", quantity=4), reason="declared")
    action = Action(id="acme:b", verb="allocate", provider="acme", pool="L",
                    subject=Subject(kind="entity", id="b"), license="L", phase=300,
                    reason="t", request=RequestPreview(method="POST", url="https://x.test/"),
                    changes=(change,), call=Call.to("POST", "x"))
    (held,) = _held(action, "request 7 pending", "7")
    assert (held.quantity, held.direction) == (4, "add")


def test_config_digest_is_the_hash_of_the_sorted_json_and_ignores_lines_and_order():
    import hashlib
    import json

    from reconciler.model import Location
    from reconciler.planner import config_digest

    grants = [grant("a", "p1", line=3, attrs={"tier": -0.0}), grant("b", "p2", line=4,
                                                                   expires=TODAY)]
    want = desired(grants, prune=["p1"])
    provider = want.providers["acme"]
    dumped = provider.model_dump(mode="json", exclude={
        "source": True, **{listed: {"__all__": {"source"}}
                           for listed in ("grants", "subjects", "pools")}})
    for listed in ("grants", "subjects", "pools"):
        dumped[listed].sort(key=lambda item: json.dumps(item, sort_keys=True))
    one_shot = json.dumps({"acme": dumped}, sort_keys=True, separators=(",", ":"))
    assert config_digest(want) == hashlib.sha256(one_shot.encode()).hexdigest()
    moved = desired([g.replace(source=Location(file="other.yaml", line=90))
                     for g in reversed(grants)], prune=["p1"])
    assert config_digest(moved) == config_digest(want)
    assert config_digest(desired(grants[:1], prune=["p1"])) != config_digest(want)


def test_items_sort_alike_by_compact_and_by_default_separator_json():
    """The digest sorts items by their compact JSON; it has always been defined by the
    default-separator JSON. Both orders agree even where separators meet values, nested
    lists end early, or strings hold ", " and ": " of their own."""
    import json

    items = [
        {"a": [1, 2]}, {"a": [1]}, {"a": [1, [2]]}, {"a": 1, "b": 2}, {"a": 1},
        {"a": "x, y"}, {"a": "x,y"}, {"a": "x: y"}, {"a": "x:y"}, {"a": ""},
        {"a": {"b": None}}, {"a": {"b": None, "c": 0}}, {"a ": 1}, {"a": -1},
        {"a": [{"b": 1}, {"b": 1, "c": 2}]}, {"a": "é, ü"}, {"a": True}, {"b": []},
    ]
    by_default = sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
    by_compact = sorted(items, key=lambda i: json.dumps(i, sort_keys=True,
                                                         separators=(",", ":")))
    assert by_default == by_compact


def test_a_subject_the_vendor_already_seats_adds_and_frees_no_seat():
    """`CurrentState.seats_added`/`seats_removed`: the pool is full, yet adding a grant for a
    subject the vendor already counts there (Graph: inherited from a group) is no
    capacity problem, removing another such grant frees nothing, and a grant the vendor
    says takes three seats takes three."""
    want = desired([grant("a", "p1")], subjects=["a", "b"])
    now = current([live("b", "p1"), live("c", "p1")], {"p1": 2}).model_copy(
        update={"seats_added": {("p1", "entity", "a"): 0},
                "seats_removed": {("p1", "entity", "b"): 0}})
    plan = build_plan(want, {"acme": now}, makers={"acme": one_action_per_change},
                      today=TODAY)
    seats = {(c.kind, c.grant.subject.id): c.seat_delta for a in plan.actions for c in a.changes}
    assert seats == {(ChangeKind.ADD, "a"): 0, (ChangeKind.REMOVE, "b"): 0}
    only_a = desired([grant("a", "p1")], subjects=["a"])  # b and c are not ours
    build_plan(only_a, {"acme": now}, makers={"acme": one_action_per_change}, today=TODAY)
    with pytest.raises(CapacityError):
        build_plan(only_a, {"acme": now.model_copy(update={"seats_added": {}})},
                   makers={"acme": one_action_per_change}, today=TODAY)
    many = now.model_copy(update={"seats_added": {("p1", "entity", "a"): 3}})
    with pytest.raises(CapacityError):  # a group of three: three seats, not one
        build_plan(only_a, {"acme": many}, makers={"acme": one_action_per_change},
                   today=TODAY)


def test_a_change_without_a_seat_count_serializes_as_before():
    """Plan files written before `Change.seats` existed seal and load back the same."""
    from reconciler.model import Change

    plain = Change(kind=ChangeKind.ADD, after=grant("a", "p1"), reason="r")
    assert "seats" not in plain.model_dump(mode="json")
    assert Change.model_validate(plain.model_dump(mode="json")) == plain
    seated = plain.model_copy(update={"seats": 0})
    assert seated.model_dump(mode="json")["seats"] == 0
    assert Change.model_validate(seated.model_dump(mode="json")).seat_delta == 0
