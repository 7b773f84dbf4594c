"""The ADManager simulator rejects what ADManager rejects, and waits for approval."""

from __future__ import annotations

import json

import pytest

from reconciler.sandbox.admanager import ADManagerSimulator
from tests.conftest import sandbox_client

AUTH = {"AuthToken": "sandbox-admanager-authtoken", "domainName": "admp.local",
        "PRODUCT_NAME": "RESTAPI"}
SEED_SAMPLE = ('[{"RequestAction":"REMOVE_O365_LICENSES", "Subject":"Remove O365 licenses", '
               '"accounts":[{"displayName":"john"}], "isRemoveAllO365License":"true"}]')
# The seed page's second sample: remove only E3 (with its Kaizala plan) from john.
SEED_SECOND_SAMPLE = (
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
async def client(simulator):
    async with sandbox_client(simulator) as opened:
        yield opened


async def create(client, input_data: str, method: str = "GET"):
    if method == "GET":
        answer = await client.get("/RestAPI/CreateWorkFlowRequest",
                                  params={**AUTH, "inputData": input_data})
    else:
        answer = await client.post("/RestAPI/CreateWorkFlowRequest", params=AUTH,
                                   data={"inputData": input_data})
    return answer.json()


async def test_authtoken_and_product_name_are_checked(client):
    wrong = await client.get("/RestAPI/SearchUser", params={**AUTH, "AuthToken": "x"})
    assert wrong.json() == {"status": "0", "statusMessage": "Invalid AuthToken."}
    anonymous = await client.get("/RestAPI/SearchUser",
                                 params={k: v for k, v in AUTH.items() if k != "PRODUCT_NAME"})
    assert anonymous.json()["status"] == "0"


async def test_the_seed_sample_creates_a_pending_request_that_changes_nothing(client, simulator):
    answer = await create(client, SEED_SAMPLE)
    assert answer == [{"Subject": "Remove O365 licenses", "requestId": 7501,
                       "statusMessage": "Successfully created the request.", "status": "1"}]
    john = simulator.state["domains"]["admp.local"]["users"][0]
    assert john["licences"], "nothing changes before approval"
    status = await client.get("/RestAPI/WorkflowRequestStatus",
                              params={**AUTH, "requestId": "7501"})
    assert status.json()["requestStatus"] == "Pending"
    await client.post("/_sandbox/workflow/7501/approve")
    assert john["licences"] == {}
    status = await client.get("/RestAPI/WorkflowRequestStatus",
                              params={**AUTH, "requestId": "7501"})
    assert status.json()["requestStatus"] == "Executed"


@pytest.mark.parametrize("bad, message", [
    ({"RequestAction": "DELETE_USER", "Subject": "x", "accounts": [{"displayName": "john"}]},
     "Invalid RequestAction"),
    ({"RequestAction": "REMOVE_O365_LICENSES", "accounts": [{"displayName": "john"}],
      "isRemoveAllO365License": "true"}, "Subject is mandatory"),
    ({"RequestAction": "REMOVE_O365_LICENSES", "Subject": "x",
      "accounts": [{"displayName": "nobody"}], "isRemoveAllO365License": "true"},
     "User not found"),
    ({"RequestAction": "REMOVE_O365_LICENSES", "Subject": "x",
      "accounts": [{"displayName": "john"}], "isRemoveAllO365License": True},
     'isRemoveAllO365License must be "true" or "false"'),
    ({"RequestAction": "REMOVE_O365_LICENSES", "Subject": "x",
      "accounts": [{"displayName": "john"}], "isRemoveAllO365License": "false",
      "selectedO365Licenses": {"accountSKUDetailsList": [
          {"ACCOUNT_SKU_ID": "ENTERPRISEPACK", "IS_SELECTED": "true"}]}},
     "IS_SELECTED must be a boolean"),
    ({"RequestAction": "REMOVE_O365_LICENSES", "Subject": "x",
      "accounts": [{"displayName": "john"}], "isRemoveAllO365License": "false"},
     "selectedO365Licenses.accountSKUDetailsList is mandatory"),
    ({"RequestAction": "ASSIGN_O365_LICENSES", "Subject": "x",
      "accounts": [{"displayName": "li"}], "selectedO365Licenses": {"accountSKUDetailsList": [
          {"ACCOUNT_SKU_ID": "EMS", "IS_SELECTED": True, "ServicePlans": []}]}},
     "Unknown license 'EMS'"),
    ({"RequestAction": "ASSIGN_O365_LICENSES", "Subject": "x",
      "accounts": [{"displayName": "li"}], "selectedO365Licenses": {"accountSKUDetailsList": [
          {"ACCOUNT_SKU_ID": "VISIOCLIENT", "IS_SELECTED": True, "ServicePlans": [
              {"SERVICE_NAME": "TEAMS1", "IS_SELECTED": True}]}]}},
     "Unknown service plan in VISIOCLIENT"),
    ({"RequestAction": "REMOVE_O365_LICENSES", "Subject": "x", "accounts": [],
      "isRemoveAllO365License": "true"}, "accounts is mandatory"),
])
async def test_invalid_requests_get_status_0_and_no_request_id(client, bad, message):
    (answer,) = await create(client, json.dumps([bad]), method="POST")
    assert answer["status"] == "0" and "requestId" not in answer
    assert message in answer["statusMessage"]


async def test_rejected_request_never_executes(client, simulator):
    await create(client, SEED_SAMPLE)
    await client.post("/_sandbox/workflow/7501/reject")
    status = await client.get("/RestAPI/WorkflowRequestStatus",
                              params={**AUTH, "requestId": "7501"})
    assert status.json()["requestStatus"] == "Rejected"
    assert simulator.state["domains"]["admp.local"]["users"][0]["licences"]


async def test_assignment_beyond_sku_seats_is_rejected_on_execution(client):
    assign = [{"RequestAction": "ASSIGN_O365_LICENSES", "Subject": "x",
               "accounts": [{"displayName": "li"}, {"displayName": "mary"}],
               "selectedO365Licenses": {"accountSKUDetailsList": [
                   {"ACCOUNT_SKU_ID": "VISIOCLIENT", "IS_SELECTED": True, "ServicePlans": []}]}}]
    (answer,) = await create(client, json.dumps(assign), method="POST")
    await client.post(f"/_sandbox/workflow/{answer['requestId']}/approve")
    status = await client.get("/RestAPI/WorkflowRequestStatus",
                              params={**AUTH, "requestId": str(answer["requestId"])})
    assert status.json()["requestStatus"] == "Rejected"
    assert "Not enough VISIOCLIENT licences: 1 of 2 assigned, 2 more requested" in status.json()[
        "statusMessage"]


async def test_auto_approval_after_the_configured_delay():
    seed = ADManagerSimulator.default_seed()
    seed["auto_approve_after_s"] = 0
    simulator = ADManagerSimulator(seed=seed)
    async with sandbox_client(simulator) as client:
        await create(client, SEED_SAMPLE)
        status = await client.get("/RestAPI/WorkflowRequestStatus",
                                  params={**AUTH, "requestId": "7501"})
        assert status.json()["requestStatus"] == "Executed"


async def test_search_user_pages_with_range_and_start_index(client):
    first = (await client.get("/RestAPI/SearchUser",
                              params={**AUTH, "range": "2", "startIndex": "1"})).json()
    second = (await client.get("/RestAPI/SearchUser",
                               params={**AUTH, "range": "2", "startIndex": "3"})).json()
    assert first["count"] == 5 and "Count" not in first, "lower case, like real servers"
    names = [u["DISPLAY_NAME"] for u in first["UsersList"] + second["UsersList"]]
    assert names == ["john", "mary", "raj", "li"]
    assert first["UsersList"][0]["O365_LICENSES"][0] == {
        "ACCOUNT_SKU_ID": "ENTERPRISEPACK",
        "DISABLED_SERVICE_PLANS": ["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"]}


async def test_search_user_requires_range_and_start_index(client):
    answer = await client.get("/RestAPI/SearchUser", params={**AUTH, "range": "2"})
    assert answer.json() == {"status": "0",
                             "statusMessage": "range and startIndex are mandatory."}


async def test_the_seed_second_sample_removes_only_the_selected_sku(client, simulator):
    (answer,) = await create(client, SEED_SECOND_SAMPLE)
    assert answer["status"] == "1"
    await client.post(f"/_sandbox/workflow/{answer['requestId']}/approve")
    john = simulator.state["domains"]["admp.local"]["users"][0]
    assert set(john["licences"]) == {"POWER_BI_PRO"}


async def test_a_display_name_two_users_share_is_refused():
    seed = ADManagerSimulator.default_seed()
    seed["domains"]["admp.local"]["users"].append(
        {"displayName": "mary", "sAMAccountName": "mary2", "userPrincipalName": "mary2@admp.local",
         "licences": {}})
    async with sandbox_client(ADManagerSimulator(seed=seed)) as client:
        assign = [{"RequestAction": "ASSIGN_O365_LICENSES", "Subject": "x",
                   "accounts": [{"displayName": "mary"}],
                   "selectedO365Licenses": {"accountSKUDetailsList": [
                       {"ACCOUNT_SKU_ID": "VISIOCLIENT", "IS_SELECTED": True,
                        "ServicePlans": []}]}}]
        (answer,) = await create(client, json.dumps(assign), method="POST")
        assert answer["status"] == "0" and "More than one user matches" in answer["statusMessage"]
        assign[0]["accounts"] = [{"userPrincipalName": "mary2@admp.local"}]
        (answer,) = await create(client, json.dumps(assign), method="POST")
        assert answer["status"] == "1"


async def test_deciding_an_unknown_request_is_a_404(client):
    answer = await client.post("/_sandbox/workflow/9999/approve")
    assert answer.status_code == 404


async def test_a_decided_request_cannot_be_decided_again(client, simulator):
    await create(client, SEED_SAMPLE)
    assert (await client.post("/_sandbox/workflow/7501/reject")).status_code == 200
    again = await client.post("/_sandbox/workflow/7501/approve")
    assert again.status_code == 409
    assert simulator.state["domains"]["admp.local"]["users"][0]["licences"], "never executed"
