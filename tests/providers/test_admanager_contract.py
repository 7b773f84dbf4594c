"""ADManager contract: the vendor's published answers and request shapes judge both sides.

Fixtures in tests/fixtures/vendors/admanager/ are transcribed from ManageEngine's API
pages and ManageEngine's own integration code (each names its source). The provider's
parsers read every documented answer; the simulator takes every documented request and
answers in the documented shapes (keys and types), so neither can drift into agreeing
with the other instead of the vendor.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest

from reconciler.errors import VendorError
from reconciler.model import Change, ChangeKind, ProviderDesired, Subject, SubjectDecl
from reconciler.providers.admanager import ADManagerConnection, ADManagerProvider, answers
from reconciler.sandbox.admanager import ADManagerSimulator
from reconciler.secrets import Secrets
from tests.conftest import sandbox_client
from tests.contract import json_shape, vendor_fixtures

fixture = vendor_fixtures("admanager")
shape = json_shape
TOKEN = "sandbox-admanager-authtoken"


def answer(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


# ---- the provider reads the vendor's answers ----------------------------------------------
@pytest.mark.parametrize("name", ["create_remove_all.json", "create_remove_selected.json"])
def test_provider_reads_the_documented_create_answer(name):
    created = answers.created(answer(fixture(name)["response"]))
    assert created.request_id == "7501"


def test_provider_reads_a_refusal_with_status_and_message():
    created = answers.created(answer(fixture("create_refused.json")["response"]))
    assert created.request_id is None
    assert "HTTP 200" in created.message and "status 0" in created.message
    assert "User not found." in created.message


@pytest.mark.parametrize("name", ["search_user_documented.json", "search_user_lower_count.json"])
def test_provider_reads_count_in_either_case_and_no_status(name):
    page = answers.user_page(answer(fixture(name)["response"]), "SearchUser", "UsersList")
    assert page.total == 1 and len(page.rows) == 1


@pytest.mark.parametrize("column", [["ENTERPRISEPACK"], [{"SKU": "ENTERPRISEPACK"}], "E3"])
def test_a_licence_column_of_another_shape_is_an_error_never_no_licences(column):
    with pytest.raises(VendorError, match=r"check connection\.licence_column"):
        answers.licences({"DISPLAY_NAME": "john", "O365_LICENSES": column}, "O365_LICENSES")


@pytest.mark.parametrize("case", fixture("error_severity.json")["responses"])
def test_provider_names_http_status_and_vendor_message_for_every_error_shape(case):
    with pytest.raises(VendorError) as raised:
        answers.checked(answer(case["body"]), "SearchUser in admp.local")
    assert str(raised.value) == f"ADManager SearchUser in admp.local failed (HTTP 200): " \
                                f"{case['message']}"


def test_a_throttled_answer_names_429_never_none():
    with pytest.raises(VendorError, match=r"failed \(HTTP 429\): sandbox fault"):
        answers.checked(answer({"error": "sandbox fault"}, 429), "SearchUser in admp.local")
    with pytest.raises(VendorError, match=r"HTTP 502, not JSON: <html>bad gateway</html>"):
        answers.checked(httpx.Response(502, text="<html>bad gateway</html>"), "SearchUser")


# ---- the simulator takes the documented requests and answers in the documented shapes ----
@pytest.fixture
async def client():
    async with sandbox_client(ADManagerSimulator()) as opened:
        yield opened


def sandbox_query(query: dict) -> dict:
    return {**query, "AuthToken": TOKEN}


@pytest.mark.parametrize("name", ["create_remove_all.json", "create_remove_selected.json"])
async def test_simulator_takes_the_documented_create_request(client, name):
    data = fixture(name)
    request = data["request"]
    response = await client.get(request["path"], params={
        **sandbox_query(request["query"]), "inputData": json.dumps(request["inputData"])})
    assert shape(response.json()) == shape(data["response"])
    assert response.json()[0]["status"] == "1"


async def test_simulator_refusal_has_the_documented_failure_shape(client):
    bad = [{"RequestAction": "REMOVE_O365_LICENSES", "Subject": "Remove O365 licenses",
            "accounts": [{"displayName": "nobody"}], "isRemoveAllO365License": "true"}]
    response = await client.post("/RestAPI/CreateWorkFlowRequest", params=sandbox_query(
        fixture("create_remove_all.json")["request"]["query"]), data={
        "inputData": json.dumps(bad)})
    assert shape(response.json()) == shape(fixture("create_refused.json")["response"])


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_simulator_search_user_answers_like_real_servers(client, method):
    """Lower-case `count`, no `status`: what ManageEngine's own Zendesk app reads."""
    documented = fixture("search_user_lower_count.json")
    query = sandbox_query(fixture("search_user_documented.json")["request"]["query"])
    response = await client.request(method, "/RestAPI/SearchUser", params=query)
    body = response.json()
    assert set(body) == set(documented["response"])
    assert isinstance(body["count"], int) and isinstance(body["UsersList"], list)
    assert {"DISPLAY_NAME", "SAM_ACCOUNT_NAME"} <= set(body["UsersList"][0])
    page = answers.user_page(response, "SearchUser", "UsersList")
    assert page.total == 5 and len(page.rows) == 2


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/RestAPI/NoSuchApi", 404),
    ("DELETE", "/RestAPI/SearchUser", 405),
    ("PUT", "/RestAPI/CreateWorkFlowRequest", 405),
])
async def test_simulator_answers_unknown_paths_and_methods_in_json(client, method, path, status):
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.json()["status"] == "0" and response.json()["statusMessage"]


async def test_simulator_answers_bad_auth_in_json_and_the_provider_says_so(vendor_http):
    simulator = ADManagerSimulator()
    provider = ADManagerProvider(ADManagerConnection(auth_token_env="T"), vendor_http(simulator),
                                 Secrets(environ={"T": "wrong"}))
    desired = ProviderDesired(provider="admanager", subjects=(SubjectDecl(
        subject=Subject(kind="user", id="li"), attrs={"domain": "admp.local"}),))
    with pytest.raises(VendorError, match=r"SearchUser in admp.local failed \(HTTP 200\): "
                                          r"Invalid AuthToken\."):
        await provider.read(desired)


# ---- the provider sends the documented request shapes -----------------------------------
async def test_provider_requests_carry_every_mandatory_parameter(vendor_http):
    simulator = ADManagerSimulator()
    provider = ADManagerProvider(ADManagerConnection(auth_token_env="T"), vendor_http(simulator),
                                 Secrets(environ={"T": TOKEN}))
    desired = ProviderDesired(provider="admanager", subjects=(SubjectDecl(
        subject=Subject(kind="user", id="john"), attrs={"domain": "admp.local"}),))
    state = await provider.read(desired)
    john_e3 = next(g for g in state.grants if g.subject.id == "john"
                   and g.license == "ENTERPRISEPACK")
    (action,) = provider.actions([Change(kind=ChangeKind.REMOVE, before=john_e3, reason="t")],
                                 state)
    await provider.execute(action)
    search, create = simulator.request_log()[0], simulator.request_log()[-1]
    documented = fixture("search_user_documented.json")["request"]["query"]
    assert set(documented) <= set(parse_qs(search["query"]))
    create_query = fixture("create_remove_selected.json")["request"]["query"]
    assert set(create_query) <= set(parse_qs(create["query"]))
    (sent,) = json.loads(parse_qs(create["body"])["inputData"][0])
    sent.pop("Description")
    assert [sent] == fixture("create_remove_selected.json")["request"]["inputData"]
