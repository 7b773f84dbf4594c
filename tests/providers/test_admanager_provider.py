"""The ADManager provider against its simulator: requests, batching, pending states."""

from __future__ import annotations

import json

import pytest

from reconciler.model import (
    Change,
    ChangeKind,
    Grant,
    OutcomeStatus,
    ProviderDesired,
    Subject,
    SubjectDecl,
)
from reconciler.providers.admanager import ADManagerConnection, ADManagerProvider
from reconciler.providers.base import PendingRequest
from reconciler.sandbox.admanager import ADManagerSimulator
from reconciler.secrets import Secrets

TOKEN = "sandbox-admanager-authtoken"
# The seed page's second sample request (seed 000), verbatim.
SEED_SECOND_SAMPLE = json.loads(
    '[{"RequestAction":"REMOVE_O365_LICENSES", "Subject":"Remove O365 licenses", '
    '"accounts":[{"displayName":"john"}], "isRemoveAllO365License":"false", '
    '"selectedO365Licenses": {"accountSKUDetailsList":[{"ACCOUNT_SKU_ID":"ENTERPRISEPACK", '
    '"ACCOUNT_SKU_DISP_VAL":"Office 365 Enterprise E3", "IS_SELECTED":true, "ServicePlans": '
    '[{"SERVICE_NAME":"KAIZALA_O365_P3","IS_SELECTED":true,"TYPE":"User", '
    '"SERVICE_NAME_DISP_VAL":"KAIZALA_O365_P3"}]}]}}]')


@pytest.fixture
def simulator() -> ADManagerSimulator:
    return ADManagerSimulator()


@pytest.fixture
def provider(simulator, vendor_http) -> ADManagerProvider:
    connection = ADManagerConnection(auth_token_env="ADM_TOKEN", page_size=2)
    return ADManagerProvider(connection, vendor_http(simulator), Secrets(environ={
        "ADM_TOKEN": TOKEN}))


DESIRED = ProviderDesired(provider="admanager", subjects=tuple(
    SubjectDecl(subject=Subject(kind="user", id=name), attrs={"domain": "admp.local"})
    for name in ("john", "mary", "raj", "li", "contractor-7")))


def user_grant(user: str, sku: str, **attrs) -> Grant:
    return Grant(provider="admanager", pool=f"admp.local/{sku}", license=sku,
                 subject=Subject(kind="user", id=user), attrs={"domain": "admp.local", **attrs})


def held(simulator, user: str) -> set[str]:
    users = simulator.state["domains"]["admp.local"]["users"]
    return set(next(u for u in users if u["displayName"] == user)["licences"])


async def test_read_pages_users_and_reports_disabled_plans(provider, simulator):
    state = await provider.read(DESIRED)
    john = {g.license: g.attrs for g in state.grants if g.subject.id == "john"}
    assert john["ENTERPRISEPACK"]["disabled_plans"] == [
        "EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"]
    assert "disabled_plans" not in john["POWER_BI_PRO"]
    searches = [e for e in simulator.request_log() if e["path"] == "/RestAPI/SearchUser"]
    assert len(searches) == 3, "5 users, 2 per page"


async def test_removing_one_sku_previews_the_seeds_second_sample(provider):
    state = await provider.read(DESIRED)
    before = next(g for g in state.grants if g.subject.id == "john"
                  and g.license == "ENTERPRISEPACK")
    (action,) = provider.actions([Change(kind=ChangeKind.REMOVE, before=before, reason="t")],
                                 state)
    assert json.loads(action.request.body["inputData"]) == SEED_SECOND_SAMPLE
    assert "AuthToken=***" in action.request.url and TOKEN not in action.model_dump_json()
    assert not action.repeatable


async def test_same_change_for_several_users_is_one_request(provider, simulator):
    state = await provider.read(DESIRED)
    changes = [Change(kind=ChangeKind.ADD, after=user_grant(u, "VISIOCLIENT"), reason="t")
               for u in ("li", "mary")]
    (action,) = provider.actions(changes, state)
    (item,) = json.loads(action.request.body["inputData"])
    assert item["accounts"] == [{"displayName": "li"}, {"displayName": "mary"}]
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.PENDING and outcome.vendor_request_id == "7501"


async def test_pending_then_executed_or_rejected(provider, simulator, vendor_http):
    state = await provider.read(DESIRED)
    changes = [Change(kind=ChangeKind.ADD, after=user_grant("li", "POWER_BI_PRO"), reason="t"),
               Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")]
    first, second = provider.actions(changes, state)
    ids = [(await provider.execute(a)).vendor_request_id for a in (first, second)]
    requests = [PendingRequest(action=a, request_id=i) for a, i in zip((first, second), ids,
                                                                       strict=True)]
    assert [r.status for r in await provider.resolve_pending(requests)] == ["pending", "pending"]
    client = vendor_http(simulator).client
    await client.post(f"/_sandbox/workflow/{ids[0]}/approve")
    await client.post(f"/_sandbox/workflow/{ids[1]}/reject")
    assert [r.status for r in await provider.resolve_pending(requests)] == [
        "executed", "rejected"]
    assert "POWER_BI_PRO" in held(simulator, "li") and "VISIOCLIENT" not in held(simulator, "li")


async def test_user_losing_every_sku_gets_the_remove_all_form(provider):
    state = await provider.read(DESIRED)
    changes = [Change(kind=ChangeKind.REMOVE, before=g, reason="t") for g in state.grants
               if g.subject.id == "contractor-7"]
    (action,) = provider.actions(changes, state)
    (item,) = json.loads(action.request.body["inputData"])
    assert item["isRemoveAllO365License"] == "true" and "selectedO365Licenses" not in item


async def test_status_0_is_a_failure_with_the_vendors_message(provider, simulator):
    state = await provider.read(DESIRED)
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("ghost", "VISIOCLIENT"), reason="t")], state)
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.FAILED
    assert "User not found" in outcome.message


async def test_unknown_user_is_refused_by_check(provider):
    state = await provider.read(DESIRED)
    desired = DESIRED.model_copy(update={"subjects": (
        SubjectDecl(subject=Subject(kind="user", id="ghost"), attrs={"domain": "admp.local"}),)})
    assert any("no user 'ghost'" in p.message for p in provider.check(desired, state))
