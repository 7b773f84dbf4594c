"""UiPath `actions` and `check` as pure functions of typed facts: no HTTP, no simulator."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from reconciler.http import url_path
from reconciler.model import (
    Call,
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    Location,
    PoolDecl,
    ProviderDesired,
    RequestPreview,
    Subject,
    SubjectDecl,
)
from reconciler.planner import diff
from reconciler.providers.uipath import UiPathConnection, UiPathFacts, UiPathProvider, planning

HOST = "feb0dd79-85b6-483b-b297-0e49a1aa5b7d"
CONNECTION = UiPathConnection(
    host_username_env="U", host_password_env="P", client_id_env="C", client_secret_env="S",
    ids={"acme": "org-1", "acme-prod": "ten-1", "acme-dev": "ten-2", "devs": "grp-1",
         "alice": "alice-id"})
AT = Location(file="uipath.yaml", line=7)


def preview(call: Call) -> RequestPreview:
    return RequestPreview(method=call.method, url=url_path(call), body=call.body)


def grant(kind: str, subject: str, license: str, quantity: int | None = None,
          org: str = "acme") -> Grant:
    pool = f"host/{license}" if kind == "organization" else f"{org}/{license.split('/')[-1]}"
    return Grant(provider="uipath", pool=pool, subject=Subject(kind=kind, id=subject),  # type: ignore[arg-type]
                 license=license, quantity=quantity,
                 attrs={} if kind == "organization" else {"organization": org})


def change(before: Grant | None, after: Grant | None) -> Change:
    kind = (ChangeKind.ADD if before is None else ChangeKind.REMOVE if after is None
            else ChangeKind.UPDATE)
    return Change(kind=kind, before=before, after=after, reason="test")


def state(*grants: Grant, owners: dict[tuple[str, str], str] | None = None) -> CurrentState:
    return CurrentState(provider="uipath", grants=grants,
                        facts=UiPathFacts(organization_of=owners or {}))


def plan(changes: list[Change], current: CurrentState,
         connection: UiPathConnection = CONNECTION) -> list:
    return planning.actions(changes, current, connection, preview)


def test_a_swap_shrinks_bottom_up_then_grows_top_down_in_six_phases():
    org_attunu = grant("organization", "acme", "ATTUNU", 4)
    org_dev = grant("organization", "acme", "RPADEVPRONU", 5)
    prod = grant("tenant", "acme-prod", "orchestrator/UNATT", 6)
    dev = grant("tenant", "acme-dev", "orchestrator/UNATT", 4)
    bob = grant("user", "bob", "RPADEVPRONU")
    current = state(org_attunu, org_dev, prod, dev, bob)
    actions = plan([
        change(org_attunu, org_attunu.replace(quantity=3)),
        change(org_dev, org_dev.replace(quantity=6)),
        change(prod, prod.replace(quantity=8)),
        change(dev, dev.replace(quantity=2)),
        change(bob, None),
        change(None, grant("user", "carol", "RPADEVPRONU")),
    ], current)
    ordered = sorted(actions, key=lambda a: a.phase)
    assert [(a.id, a.phase) for a in ordered] == [
        ("uipath:user:bob:shrink", 60), ("uipath:tenant:acme-dev:orchestrator:shrink", 100),
        ("uipath:organization:acme:shrink", 140), ("uipath:organization:acme:grow", 260),
        ("uipath:tenant:acme-prod:orchestrator:grow", 300), ("uipath:user:carol:grow", 340)]
    assert all(a.repeatable and a.verb == "allocate" for a in actions), "PUTs of totals"
    by_id = {a.id: a for a in actions}
    shrink, grow = by_id["uipath:organization:acme:shrink"], by_id["uipath:organization:acme:grow"]
    assert shrink.call == Call(method="PUT", path=(
        "lrm", "api", "host", HOST, "organization", "org-1", "license"), body={
        "productQuantities": [{"code": "ATTUNU", "quantity": 3},
                              {"code": "RPADEVPRONU", "quantity": 5}]})
    assert grow.call.body == {"productQuantities": [{"code": "ATTUNU", "quantity": 3},
                                                    {"code": "RPADEVPRONU", "quantity": 6}]}
    assert shrink.depends_on == ("uipath:tenant:acme-dev:orchestrator:shrink",
                                 "uipath:user:bob:shrink")
    assert by_id["uipath:tenant:acme-prod:orchestrator:grow"].depends_on == (
        "uipath:organization:acme:grow",)
    assert by_id["uipath:user:carol:grow"].call == Call(
        method="PUT", path=("lease_", "api", "account", "org-1", "user-license"),
        body={"userIds": ["carol"], "userBundleCodes": ["RPADEVPRONU"],
              "useExternalLicense": False})
    assert by_id["uipath:user:bob:shrink"].call.body["userBundleCodes"] == []


def test_one_call_per_tenant_service_lists_every_code_of_that_service():
    unatt = grant("tenant", "acme-prod", "orchestrator/UNATT", 6)
    nonpr = grant("tenant", "acme-prod", "orchestrator/NONPR", 1)
    tie = grant("tenant", "acme-prod", "du/TIE", 2)
    actions = plan([change(unatt, unatt.replace(quantity=7)),
                    change(None, grant("tenant", "acme-prod", "orchestrator/TIE", 1)),
                    change(tie, None)], state(unatt, nonpr, tie))
    assert [(a.id, a.call.path[-1], a.call.body) for a in actions] == [
        ("uipath:tenant:acme-prod:du:shrink", "du",
         {"tenantName": "acme-prod", "products": [{"code": "TIE", "quantity": 0}]}),
        ("uipath:tenant:acme-prod:orchestrator:grow", "orchestrator",
         {"tenantName": "acme-prod", "products": [{"code": "NONPR", "quantity": 1},
                                                  {"code": "TIE", "quantity": 1},
                                                  {"code": "UNATT", "quantity": 7}]})]
    assert actions[1].call.path == ("lrm", "api", "account", "org-1", "service-license",
                                    "ten-1", "orchestrator")


def test_a_group_sets_its_whole_list_and_seats_nothing_itself():
    held = grant("group", "devs", "RPADEVPRONU")
    actions = plan([change(None, grant("group", "devs", "ATTUNU"))], state(held))
    [action] = actions
    assert action.call == Call(method="PUT", path=(
        "lease_", "api", "account", "org-1", "user-license", "group", "grp-1"),
        body={"userBundleCodes": ["ATTUNU", "RPADEVPRONU"], "useExternalLicense": False})
    assert action.seat_delta == 0, "members take units when they sign in, not the rule"


def test_an_organization_name_base_puts_the_name_in_one_segment():
    connection = CONNECTION.model_copy(update={"user_license_base": "/{organization}/lease_"})
    [action] = plan([change(None, grant("user", "alice", "ATTUNU", org="a/b"))], state(),
                    connection)
    assert action.call.path[:2] == ("a/b", "lease_")
    assert url_path(action.call).startswith("/a%2Fb/lease_/api/account/a%2Fb/")


def test_the_organization_comes_from_the_facts_when_no_grant_names_it():
    held = Grant(provider="uipath", pool="acme/ATTUNU", subject=Subject(kind="user", id="zed"),
                 license="ATTUNU")
    [action] = plan([change(held, None)], state(held, owners={("user", "zed"): "acme"}))
    assert action.call.path == ("lease_", "api", "account", "org-1", "user-license")


HOSTILE = ["a/b", "..", "x?y=1", "s#f", "%2D", "with space", "ünïcødé"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_id_stays_one_segment_in_every_call(hostile):
    connection = CONNECTION.model_copy(update={"ids": {}})
    calls = {a.subject.kind: a.call for a in plan([
        change(None, grant("organization", hostile, "UNATT", 1)),
        change(None, grant("tenant", hostile, "orchestrator/UNATT", 1, org=hostile)),
        change(None, grant("group", hostile, "ATTUNU", org=hostile)),
        change(None, grant("user", hostile, "ATTUNU", org=hostile)),
    ], state(), connection)}
    org_call, tenant_call = calls["organization"], calls["tenant"]
    group_call, user_call = calls["group"], calls["user"]
    assert org_call.path == ("lrm", "api", "host", HOST, "organization", hostile, "license")
    assert tenant_call.path == ("lrm", "api", "account", hostile, "service-license", hostile,
                                "orchestrator")
    assert group_call.path == ("lease_", "api", "account", hostile, "user-license", "group",
                               hostile)
    assert user_call.body["userIds"] == [hostile], "a user id travels in the body only"
    for call in calls.values():
        url = httpx.URL("https://as.example" + url_path(call))
        raw = url.raw_path.decode()
        assert raw.count("/") == len(call.path), "no id adds or removes a segment"
        assert "?" not in raw and "#" not in raw and url.query == b""
        assert "/../" not in raw + "/" and "/./" not in raw + "/"
        segments = [httpx.URL("https://x/" + part).path[1:] for part in raw.split("/")[1:]]
        assert hostile in segments, "the id arrives whole, decoded, as one segment"


@pytest.mark.parametrize("hostile", ["a/b", "..", ".", "a\\b"])
def test_ids_that_servers_fold_are_refused_at_load(hostile):
    for kind in ("organization", "tenant", "group"):
        assert UiPathProvider.subject_id_problem(kind, hostile) is not None
    assert UiPathProvider.subject_id_problem("user", "x?y=1") is None


# ---- check ---------------------------------------------------------------------------------
def desired(*grants: Grant, subjects: tuple[SubjectDecl, ...] = (),
            pools: tuple[PoolDecl, ...] = ()) -> ProviderDesired:
    located = tuple(g.replace(source=AT) for g in grants)
    named = subjects or tuple(SubjectDecl(subject=g.subject, attrs=dict(g.attrs), source=AT)
                              for g in {g.subject: g for g in grants}.values())
    return ProviderDesired(provider="uipath", grants=located, subjects=named, pools=pools)


def checked(wanted: ProviderDesired, current: CurrentState,
            today: dt.date = dt.date(2026, 6, 1)) -> list:
    """UiPath's check on the planner's own diff, as `build_plan` runs it."""
    return planning.check(wanted, current, diff(wanted, current, today=today).changes)


def test_check_refuses_tenants_and_users_beyond_the_organization():
    wanted = desired(grant("organization", "acme", "UNATT", 10),
                     grant("tenant", "acme-prod", "orchestrator/UNATT", 8),
                     grant("tenant", "acme-dev", "orchestrator/UNATT", 3))
    [problem] = checked(wanted, state())
    assert problem.location == AT
    assert ("UNATT: tenants, groups and users of organization 'acme' would hold 11 but the "
            "organization has 10 (tenant acme-dev 3, tenant acme-prod 8") in problem.message


def test_check_does_not_count_a_group_rule_against_the_organization():
    wanted = desired(grant("organization", "acme", "RPADEVPRONU", 1),
                     grant("user", "bob", "RPADEVPRONU"),
                     grant("group", "devs", "RPADEVPRONU"))
    assert checked(wanted, state()) == []
    two_users = desired(grant("organization", "acme", "RPADEVPRONU", 1),
                        grant("user", "bob", "RPADEVPRONU"), grant("user", "eve", "RPADEVPRONU"))
    [problem] = checked(two_users, state())
    assert "would hold 2 but the organization has 1" in problem.message


def test_check_keeps_counting_a_protected_user_and_refuses_bad_shapes():
    bob = grant("user", "bob", "ATTUNU")
    protected = (SubjectDecl(subject=Subject(kind="user", id="bob"), protected=True,
                             attrs={"organization": "acme"}, source=AT),
                 SubjectDecl(subject=Subject(kind="organization", id="acme"), source=AT))
    wanted = desired(grant("organization", "acme", "ATTUNU", 1), subjects=protected)
    [problem] = checked(wanted, state(bob, grant("user", "eve", "ATTUNU")))
    assert "would hold 2 but the organization has 1 (user bob 1, user eve 1" in problem.message, \
        "protected bob keeps his unit and unnamed eve keeps hers"
    pruned = desired(grant("organization", "acme", "ATTUNU", 1), subjects=protected,
                     pools=(PoolDecl(id="acme/ATTUNU", prune=True),))
    assert checked(pruned, state(bob, grant("user", "eve", "ATTUNU"))) == [], \
        "with the pool pruned, unnamed eve's unit goes"
    strange = desired(grant("tenant", "t", "../x/UNATT", 1),
                      grant("organization", "acme", "UNATT"))
    messages = [p.message for p in checked(strange, state())]
    assert any("is not `<serviceType>/<code>`" in m for m in messages)
    assert any("needs a quantity of at least 1" in m for m in messages)


def test_check_counts_an_expired_grant_as_released_like_the_planner_does():
    """A full organization: the plan releases an expired tenant allocation and gives
    its units to another tenant. The planner drops the expired grant, so must the
    check (it used to re-derive the end state from the YAML and count it)."""
    prod_now = grant("tenant", "acme-prod", "orchestrator/UNATT", 8)
    expired = prod_now.replace(expires=dt.date(2026, 5, 31))
    wanted = desired(grant("organization", "acme", "UNATT", 10), expired,
                     grant("tenant", "acme-dev", "orchestrator/UNATT", 5))
    current = state(grant("organization", "acme", "UNATT", 10), prod_now)
    changes = diff(wanted, current, today=dt.date(2026, 6, 1)).changes
    assert {(c.kind, c.grant.subject.id) for c in changes} == {
        (ChangeKind.REMOVE, "acme-prod"), (ChangeKind.ADD, "acme-dev")}
    assert checked(wanted, current) == []
    assert plan(changes, current), "the plan is made, not refused"
    still_valid = desired(grant("organization", "acme", "UNATT", 10),
                          prod_now.replace(expires=dt.date(2026, 6, 2)),
                          grant("tenant", "acme-dev", "orchestrator/UNATT", 5))
    [problem] = checked(still_valid, current)
    assert "would hold 13 but the organization has 10" in problem.message
