"""ADManager `actions` and `check` from hand-built facts: no HTTP, no simulator."""

from __future__ import annotations

import json

import httpx
import pytest

from reconciler.http import VendorHttp
from reconciler.model import (
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    ProviderDesired,
    Subject,
    SubjectDecl,
)
from reconciler.providers.admanager import ADManagerConnection, ADManagerFacts, ADManagerProvider
from reconciler.secrets import Secrets

HOSTILE = ["a/b", "..", "x?y=1", "s#f", "%2D", "two words", "Zoë 山田"]


@pytest.fixture
async def provider():
    client = httpx.AsyncClient(base_url="http://admanager.invalid:8080")
    yield ADManagerProvider(ADManagerConnection(auth_token_env="T"), VendorHttp(client),
                            Secrets(environ={"T": "secret-token"}))
    await client.aclose()


def grant(user: str, sku: str, **attrs) -> Grant:
    return Grant(provider="admanager", pool=f"admp.local/{sku}", license=sku,
                 subject=Subject(kind="user", id=user), attrs={"domain": "admp.local", **attrs})


def add(user: str, sku: str, **attrs) -> Change:
    return Change(kind=ChangeKind.ADD, after=grant(user, sku, **attrs), reason="declared")


def remove(user: str, sku: str, **attrs) -> Change:
    return Change(kind=ChangeKind.REMOVE, before=grant(user, sku, **attrs), reason="undeclared")


def item(action) -> dict:
    (only,) = json.loads(dict(action.call.form)["inputData"])
    return only


CURRENT = CurrentState(provider="admanager", grants=(
    grant("john", "ENTERPRISEPACK", disabled_plans=[
        "EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"]),
    grant("john", "POWER_BI_PRO")),
    facts=ADManagerFacts(users=frozenset({("admp.local", "john"), ("admp.local", "li")})))


def test_frees_run_before_takes_in_separate_phases(provider):
    actions = provider.actions([add("li", "VISIOCLIENT"), remove("john", "POWER_BI_PRO")],
                               CURRENT)
    by_verb = {a.verb: a for a in actions}
    assert by_verb["remove"].phase < by_verb["assign"].phase
    assert by_verb["remove"].frees and not by_verb["assign"].frees
    assert all(not a.repeatable for a in actions), "a second call files a second request"


def test_one_request_lists_every_user_with_the_same_selection(provider):
    (action,) = provider.actions([add("mary", "VISIOCLIENT"), add("li", "VISIOCLIENT")],
                                 CURRENT)
    assert item(action)["accounts"] == [{"displayName": "li"}, {"displayName": "mary"}]
    assert action.seat_delta == 2 and len(action.changes) == 2


def test_the_exact_create_call(provider):
    (action,) = provider.actions([remove("john", "ENTERPRISEPACK", disabled_plans=[
        "EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"])], CURRENT)
    call = action.call
    assert (call.method, call.path) == ("POST", ("RestAPI", "CreateWorkFlowRequest"))
    assert call.query == (("domainName", "admp.local"), ("PRODUCT_NAME", "RESTAPI"))
    assert call.body is None and [key for key, _ in call.form] == ["inputData"]
    sent = item(action)
    assert sent == {
        "RequestAction": "REMOVE_O365_LICENSES", "Subject": "Remove O365 licenses",
        "Description": sent["Description"], "accounts": [{"displayName": "john"}],
        "isRemoveAllO365License": "false",
        "selectedO365Licenses": {"accountSKUDetailsList": [{
            "ACCOUNT_SKU_ID": "ENTERPRISEPACK", "ACCOUNT_SKU_DISP_VAL": "Office 365 Enterprise E3",
            "IS_SELECTED": True, "ServicePlans": [{
                "SERVICE_NAME": "KAIZALA_O365_P3", "IS_SELECTED": True, "TYPE": "User",
                "SERVICE_NAME_DISP_VAL": "KAIZALA_O365_P3"}]}]}}
    marker, digest = sent["Description"].split()
    assert marker == "reconciler" and action.id == f"admanager:admp.local:remove:{digest[:10]}"
    assert "secret-token" not in action.model_dump_json(), "the token joins only at send time"


def test_assign_lists_disabled_plans_unselected(provider):
    (action,) = provider.actions([add("li", "ENTERPRISEPACK", disabled_plans=["TEAMS1"])],
                                 CURRENT)
    sent = item(action)
    assert sent["RequestAction"] == "ASSIGN_O365_LICENSES" and action.verb == "assign"
    plans = sent["selectedO365Licenses"]["accountSKUDetailsList"][0]["ServicePlans"]
    assert {p["SERVICE_NAME"]: p["IS_SELECTED"] for p in plans} == {
        "KAIZALA_O365_P3": True, "TEAMS1": False, "EXCHANGE_S_ENTERPRISE": True,
        "SHAREPOINTENTERPRISE": True}


def test_update_uses_the_update_phase(provider):
    before = grant("john", "POWER_BI_PRO")
    after = grant("john", "POWER_BI_PRO", disabled_plans=["BI_AZURE_P2"])
    (action,) = provider.actions([Change(kind=ChangeKind.UPDATE, before=before, after=after,
                                         reason="plans")], CURRENT)
    assert action.verb == "update" and action.seat_delta == 0
    others = {a.verb: a for a in provider.actions(
        [remove("john", "VISIOCLIENT"), add("li", "VISIOCLIENT")], CURRENT)}
    assert others["remove"].phase < action.phase < others["assign"].phase


def test_removing_everything_names_each_sku(provider):
    actions = provider.actions([remove("john", "ENTERPRISEPACK"), remove("john", "POWER_BI_PRO")],
                               CURRENT)
    assert [item(a)["isRemoveAllO365License"] for a in actions] == ["false", "false"]


def test_same_changes_give_the_same_actions_in_the_same_order(provider):
    changes = [add("mary", "VISIOCLIENT"), remove("john", "POWER_BI_PRO"), add("li", "VISIOCLIENT")]
    first = provider.actions(changes, CURRENT)
    again = provider.actions(list(reversed(changes)), CURRENT)
    assert [a.call for a in first] == [a.call for a in again]
    assert [a.id for a in first] == [a.id for a in again]


def test_a_user_named_by_upn_is_sent_by_upn(provider):
    (action,) = provider.actions([add("slee2@admp.local", "VISIOCLIENT")], CURRENT)
    assert item(action)["accounts"] == [{"userPrincipalName": "slee2@admp.local"}]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_id_is_data_in_the_body_never_part_of_the_path(provider, hostile):
    (action,) = provider.actions([add(hostile, "VISIOCLIENT")], CURRENT)
    assert action.call.path == ("RestAPI", "CreateWorkFlowRequest")
    assert item(action)["accounts"] == [{"displayName": hostile}]
    assert action.request.url.startswith(
        "http://admanager.invalid:8080/RestAPI/CreateWorkFlowRequest?")


@pytest.mark.parametrize("hostile", ["x@", "@y", "a@b@c", "a b@c"])
def test_an_id_with_an_at_sign_must_be_a_whole_upn(hostile):
    assert "must be a UPN" in ADManagerProvider.subject_id_problem("user", hostile)
    assert ADManagerProvider.subject_id_problem("user", "li@admp.local") is None


def test_check_names_unknown_and_shared_users_from_the_facts(provider):
    desired = ProviderDesired(provider="admanager", subjects=tuple(
        SubjectDecl(subject=Subject(kind="user", id=name), attrs={"domain": "admp.local"})
        for name in ("li", "ghost", "Sam Lee")))
    facts = ADManagerFacts(users=frozenset({("admp.local", "li")}), homonyms={
        ("admp.local", "Sam Lee"): ("slee1@admp.local", "slee2@admp.local")})
    problems = provider.check(desired, CURRENT.model_copy(update={"facts": facts}), [])
    assert [p.message for p in problems] == [
        "admanager: no user 'ghost' in domain 'admp.local'",
        "admanager: display name 'Sam Lee' is shared by several users in 'admp.local' "
        "(slee1@admp.local, slee2@admp.local); name the user by UPN"]


def test_check_refuses_a_plan_the_sku_settings_do_not_list(provider):
    desired = ProviderDesired(provider="admanager", grants=(
        grant("li", "ENTERPRISEPACK", disabled_plans=["YAMMER_ENTERPRISE"]),))
    (problem,) = provider.check(desired, CURRENT, [])
    assert "ENTERPRISEPACK has no service plan YAMMER_ENTERPRISE" in problem.message
