"""The ADManager provider against its simulator: requests, batching, pending states."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

import httpx
import pytest

from reconciler.errors import VendorError
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
from reconciler.sandbox.base import Faults
from reconciler.secrets import RedactingFilter, Secrets

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


def make_provider(simulator, vendor_http, **settings) -> ADManagerProvider:
    connection = ADManagerConnection(auth_token_env="ADM_TOKEN", **{"page_size": 2, **settings})
    return ADManagerProvider(connection, vendor_http(simulator), Secrets(environ={
        "ADM_TOKEN": TOKEN}))


@pytest.fixture
def provider(simulator, vendor_http) -> ADManagerProvider:
    return make_provider(simulator, vendor_http)


async def approve(vendor_http, simulator, request_id: str, decision: str = "approve") -> None:
    """The approver acts inside ADManager: the sandbox-only admin endpoint."""
    answer = await vendor_http(simulator).client.post(
        f"/_sandbox/workflow/{request_id}/{decision}")
    assert answer.status_code == 200


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
    (item,) = json.loads(action.request.body["inputData"])
    assert item.pop("Description").startswith("reconciler "), "the marker a lost answer needs"
    assert [item] == SEED_SECOND_SAMPLE
    assert "AuthToken" not in action.request.url and TOKEN not in action.model_dump_json()
    assert action.call.query_value("domainName") == "admp.local"
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
    assert "POWER_BI_PRO" not in held(simulator, "li"), "nothing changes before approval"
    await approve(vendor_http, simulator, ids[0])
    await approve(vendor_http, simulator, ids[1], "reject")
    assert [r.status for r in await provider.resolve_pending(requests)] == [
        "executed", "rejected"]
    after = await provider.read(DESIRED)
    li = {g.license for g in after.grants if g.subject.id == "li"}
    assert li == {"POWER_BI_PRO"}, "the approved request shows in the next read, not the other"


async def test_user_losing_every_sku_loses_each_by_name(provider):
    """Never the remove-all form: executed after a later-approved assignment it would
    take that SKU too, and `actions` cannot know which requests still wait."""
    state = await provider.read(DESIRED)
    changes = [Change(kind=ChangeKind.REMOVE, before=g, reason="t") for g in state.grants
               if g.subject.id == "contractor-7"]
    actions = provider.actions(changes, state)
    items = [json.loads(a.request.body["inputData"])[0] for a in actions]
    assert [i["isRemoveAllO365License"] for i in items] == ["false", "false"]
    assert sorted(i["selectedO365Licenses"]["accountSKUDetailsList"][0]["ACCOUNT_SKU_ID"]
                  for i in items) == ["ENTERPRISEPACK", "POWER_BI_PRO"]


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
    assert any("no user 'ghost'" in p.message for p in provider.check(desired, state, []))


async def test_user_who_also_gains_a_sku_loses_the_others_by_name(provider, simulator,
                                                                  vendor_http):
    """A remove-all request executed after the assignment would take the new SKU too."""
    state = await provider.read(DESIRED)
    changes = [Change(kind=ChangeKind.REMOVE, before=g, reason="t") for g in state.grants
               if g.subject.id == "contractor-7"]
    changes.append(Change(kind=ChangeKind.ADD, after=user_grant("contractor-7", "VISIOCLIENT"),
                          reason="t"))
    actions = provider.actions(changes, state)
    items = [json.loads(a.request.body["inputData"])[0] for a in actions]
    assert all(i.get("isRemoveAllO365License") != "true" for i in items)
    ids = [(await provider.execute(a)).vendor_request_id for a in actions]
    for request_id in sorted(ids, reverse=True):  # the approver takes the assignment first
        await approve(vendor_http, simulator, request_id)
    assert held(simulator, "contractor-7") == {"VISIOCLIENT"}


async def test_user_with_a_request_still_pending_never_gets_remove_all(provider, simulator,
                                                                       vendor_http):
    state = await provider.read(DESIRED)
    (assign,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("contractor-7", "VISIOCLIENT"),
                reason="t")], state)
    filed = (await provider.execute(assign)).vendor_request_id
    (resolution,) = await provider.resolve_pending([PendingRequest(assign, filed)])
    assert resolution.status == "pending"
    state = await provider.read(DESIRED)
    removals = [Change(kind=ChangeKind.REMOVE, before=g, reason="t") for g in state.grants
                if g.subject.id == "contractor-7"]
    actions = provider.actions(removals, state)
    assert [json.loads(a.request.body["inputData"])[0]["isRemoveAllO365License"]
            for a in actions] == ["false", "false"]
    removal_ids = [(await provider.execute(a)).vendor_request_id for a in actions]
    for request_id in (filed, *removal_ids):
        await approve(vendor_http, simulator, request_id)
    assert held(simulator, "contractor-7") == {"VISIOCLIENT"}


def seed_with_homonyms() -> dict:
    seed = ADManagerSimulator.default_seed()
    seed["domains"]["admp.local"]["users"] += [
        {"displayName": "Sam Lee", "sAMAccountName": f"slee{i}",
         "userPrincipalName": f"slee{i}@admp.local",
         "licences": {"POWER_BI_PRO": {"disabled": []}} if i == 1 else {}}
        for i in (1, 2)]
    return seed


async def test_shared_display_names_are_refused_and_upns_are_used(vendor_http):
    simulator = ADManagerSimulator(seed=seed_with_homonyms())
    provider = make_provider(simulator, vendor_http)
    by_name = DESIRED.model_copy(update={"subjects": (
        SubjectDecl(subject=Subject(kind="user", id="Sam Lee"), attrs={"domain": "admp.local"}),
        SubjectDecl(subject=Subject(kind="user", id="slee2@admp.local"),
                    attrs={"domain": "admp.local"}))})
    state = await provider.read(by_name)
    assert {g.subject.id for g in state.grants if g.license == "POWER_BI_PRO"} >= {
        "slee1@admp.local"}
    (problem,) = provider.check(by_name, state, [])
    assert "display name 'Sam Lee' is shared by several users" in problem.message
    assert "slee1@admp.local, slee2@admp.local" in problem.message
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("slee2@admp.local", "VISIOCLIENT"),
                reason="t")], state)
    (item,) = json.loads(action.request.body["inputData"])
    assert item["accounts"] == [{"userPrincipalName": "slee2@admp.local"}]
    filed = (await provider.execute(action)).vendor_request_id
    await approve(vendor_http, simulator, filed)
    users = simulator.state["domains"]["admp.local"]["users"]
    assert [u["sAMAccountName"] for u in users if "VISIOCLIENT" in u["licences"]] == [
        "raj", "slee2"]


async def test_disabled_plan_the_sku_settings_do_not_list_is_refused(provider):
    state = await provider.read(DESIRED)
    grant = user_grant("li", "ENTERPRISEPACK", disabled_plans=["YAMMER_ENTERPRISE"])
    desired = DESIRED.model_copy(update={"grants": (grant,)})
    (problem,) = provider.check(desired, state, [])
    assert "ENTERPRISEPACK has no service plan YAMMER_ENTERPRISE" in problem.message


async def test_update_enables_a_plan_the_settings_do_not_know(simulator, vendor_http):
    """john has TEAMS1 disabled; settings that omit TEAMS1 must still turn it back on,
    or the plan would ask for the same update forever."""
    skus = {"ENTERPRISEPACK": {"name": "Office 365 Enterprise E3", "plans": [
        "KAIZALA_O365_P3", "EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"]}}
    provider = make_provider(simulator, vendor_http, skus=skus)
    state = await provider.read(DESIRED)
    before = next(g for g in state.grants if g.subject.id == "john"
                  and g.license == "ENTERPRISEPACK")
    after = user_grant("john", "ENTERPRISEPACK",
                       disabled_plans=["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"])
    (action,) = provider.actions([Change(kind=ChangeKind.UPDATE, before=before, after=after,
                                         reason="t")], state)
    assert action.verb == "update"
    filed = (await provider.execute(action)).vendor_request_id
    await approve(vendor_http, simulator, filed)
    state = await provider.read(DESIRED)
    john = next(g for g in state.grants if g.subject.id == "john"
                and g.license == "ENTERPRISEPACK")
    assert john.value() == after.value()


async def test_confirm_answers_done_not_done_or_waiting(provider, simulator, vendor_http):
    state = await provider.read(DESIRED)
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")], state)
    assert await provider.confirm(action) is False, "never filed: plan it again"
    filed = (await provider.execute(action)).vendor_request_id
    assert await provider.confirm(action) is None, "filed and waiting: neither done nor undone"
    await approve(vendor_http, simulator, filed)
    assert await provider.confirm(action) is True


async def test_confirm_says_not_done_after_a_rejection(provider, simulator, vendor_http):
    state = await provider.read(DESIRED)
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")], state)
    filed = (await provider.execute(action)).vendor_request_id
    await approve(vendor_http, simulator, filed, "reject")
    assert await provider.confirm(action) is False


async def test_a_request_the_vendor_forgot_is_unknown_not_an_error(provider):
    """After a reset ADManager answers "No such request." for a journaled id: only a
    person can say whether it ran, so it is `unknown` (held back), never a failed plan."""
    state = await provider.read(DESIRED)
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")], state)
    (resolution,) = await provider.resolve_pending([PendingRequest(action, "9999")])
    assert (resolution.status, resolution.message) == ("unknown", "No such request.")


async def test_a_refused_status_call_is_still_an_error_naming_the_request(simulator,
                                                                         vendor_http):
    """A wrong AuthToken must not pass for a forgotten request."""
    right = make_provider(simulator, vendor_http)
    (action,) = right.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")],
        await right.read(DESIRED))
    await right.execute(action)
    wrong = ADManagerProvider(ADManagerConnection(auth_token_env="ADM_TOKEN"),
                              vendor_http(simulator), Secrets(environ={"ADM_TOKEN": "wrong"}))
    with pytest.raises(VendorError,
                       match=r"workflow request 7501 failed \(HTTP 200\): Invalid AuthToken"):
        await wrong.resolve_pending([PendingRequest(action, "7501")])


async def test_the_authtoken_appears_in_no_preview_outcome_or_log_line(simulator, vendor_http):
    """The token travels in every URL; logs go through the CLI's redacting handler."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        provider = make_provider(simulator, vendor_http)
        simulator.set_faults(Faults(burst_429=2))  # retried calls are logged too
        state = await provider.read(DESIRED)
        bad, ok = provider.actions([  # ordered by SKU: POWER_BI_PRO, then VISIOCLIENT
            Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t"),
            Change(kind=ChangeKind.ADD, after=user_grant("ghost", "POWER_BI_PRO"), reason="t")],
            state)
        outcomes = [await provider.execute(a) for a in (ok, bad)]
        resolutions = await provider.resolve_pending(
            [PendingRequest(ok, outcomes[0].vendor_request_id)])
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert [o.status for o in outcomes] == [OutcomeStatus.PENDING, OutcomeStatus.FAILED]
    texts = [*lines, ok.model_dump_json(), bad.model_dump_json(),
             *(o.model_dump_json() for o in outcomes), *(r.message for r in resolutions)]
    assert all(TOKEN not in text for text in texts)


async def test_a_server_capping_range_below_page_size_still_yields_every_user(vendor_http):
    seed = ADManagerSimulator.default_seed()
    seed["max_range"] = 2
    simulator = ADManagerSimulator(seed=seed)
    provider = make_provider(simulator, vendor_http, page_size=1000)
    state = await provider.read(DESIRED)
    assert {g.subject.id for g in state.grants} == {"john", "mary", "raj", "contractor-7"}
    starts = sorted(parse_qs(e["query"])["startIndex"][0] for e in simulator.request_log()
                    if e["path"] == "/RestAPI/SearchUser")
    assert starts == ["1", "3", "5"]


def filed_requests(simulator) -> list[dict]:
    return list(simulator.state["requests"].values())


async def test_a_lost_answer_finds_the_filed_request_instead_of_filing_again(
        provider, simulator, vendor_http):
    state = await provider.read(DESIRED)
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")], state)
    simulator.set_faults(Faults(drop_response_rate=1.0, only_changes=True))
    outcome = await provider.execute(action)
    (request,) = filed_requests(simulator)
    assert outcome.status is OutcomeStatus.PENDING
    assert outcome.vendor_request_id == str(request["requestId"]), "the one filed, found again"
    assert "answer lost" in outcome.message
    simulator.set_faults(Faults())
    (resolution,) = await provider.resolve_pending([PendingRequest(action, "7501")])
    assert resolution.status == "pending"
    assert len(filed_requests(simulator)) == 1


async def test_a_connection_dropped_before_filing_fails_so_the_next_plan_files_it(
        provider, simulator):
    state = await provider.read(DESIRED)
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")], state)
    simulator.set_faults(Faults(drop_connection_rate=1.0, only_changes=True))
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.FAILED and "was not filed" in outcome.message
    assert filed_requests(simulator) == []
    simulator.set_faults(Faults())
    assert await provider.confirm(action) is False, "nothing to wait for: plan it again"


async def test_without_a_request_search_a_lost_answer_is_left_to_confirm(simulator, vendor_http):
    provider = make_provider(simulator, vendor_http, requests_path=None)
    state = await provider.read(DESIRED)
    (action,) = provider.actions(
        [Change(kind=ChangeKind.ADD, after=user_grant("li", "VISIOCLIENT"), reason="t")], state)
    simulator.set_faults(Faults(drop_response_rate=1.0, only_changes=True))
    with pytest.raises(VendorError) as raised:
        await provider.execute(action)
    assert raised.value.code == "transport"
    simulator.set_faults(Faults())
    assert await provider.confirm(action) is None, "filed or not: truly unknowable here"


async def test_search_user_failures_name_the_status_and_message_never_none(provider, simulator):
    simulator.set_faults(Faults(error_rates={503: 1.0}))
    with pytest.raises(VendorError) as raised:
        await provider.read(DESIRED)
    assert "HTTP 503" in str(raised.value) and "None" not in str(raised.value)


async def test_a_server_without_count_is_paged_until_a_short_page(simulator, vendor_http):
    """Some servers answer neither `count` nor `Count` (filtered searches)."""

    class NoCount(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            body = json.loads(response.content)
            if isinstance(body, dict):
                body.pop("count", None)
            return httpx.Response(response.status_code, json=body)

    http = vendor_http(simulator)
    http.client._transport = NoCount(http.client._transport)
    provider = ADManagerProvider(ADManagerConnection(auth_token_env="ADM_TOKEN", page_size=2),
                                 http, Secrets(environ={"ADM_TOKEN": TOKEN}))
    state = await provider.read(DESIRED)
    assert {g.subject.id for g in state.grants} == {"john", "mary", "raj", "contractor-7"}
