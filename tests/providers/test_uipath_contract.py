"""UiPath contract: provider and simulator both held to the vendor's published pages.

Each fixture in tests/fixtures/vendors/uipath/ is transcribed from a public UiPath page
(its `source`). The provider's parsers read the documented responses, its calls equal
the documented requests, and the simulator accepts the documented requests and answers
in the documented shapes. Neither side is checked against the other.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from reconciler.errors import VendorError
from reconciler.http import describe, url_path
from reconciler.providers.uipath import UiPathConnection, calls, facts
from reconciler.providers.uipath.auth import _token
from reconciler.sandbox.uipath import UiPathSimulator
from tests.conftest import sandbox_client
from tests.contract import VENDOR_FIXTURES, json_shape, vendor_fixtures

fixture = vendor_fixtures("uipath")
shape = json_shape
FIXTURES = VENDOR_FIXTURES / "uipath"
CONNECTION = UiPathConnection(host_username_env="U", host_password_env="P",
                              client_id_env="C", client_secret_env="S")


# ---- the provider reads what the vendor documents -----------------------------------------
def test_every_fixture_names_a_public_source():
    names = sorted(path.name for path in FIXTURES.glob("*.json"))
    assert len(names) >= 6
    for name in names:
        fixture(name)


def test_the_documented_tenant_answer_parses_to_its_products():
    documented = fixture("tenant_allocation.json")["response"]["body"]
    assert facts.tenant_quantities(documented) == {"string": 0}
    answered = json.loads(json.dumps(documented).replace('"quantity": 0', '"quantity": 5'))
    assert facts.tenant_quantities(answered) == {"string": 5}


def test_the_documented_ropc_answer_gives_the_token_and_its_refusal_a_message():
    ok = fixture("ropc_authenticate.json")["response"]["body"]
    assert _token(httpx.Response(200, json=ok), "result", "host") == "{access_token}"
    documented = fixture("ropc_authenticate_refused.json")
    refused = documented["response"]
    assert describe(httpx.Response(refused["status"], json=refused["body"])) == (
        "HTTP 400 Bad Request: Invalid username/email address or password.")
    with pytest.raises(VendorError) as caught:
        _token(httpx.Response(refused["status"], json=refused["body"]), "result", "host admin")
    assert caught.value.code == "auth"
    assert "Invalid username/email address or password." in str(caught.value)
    older = documented["older_envelope"]["body"]
    assert describe(httpx.Response(400, json=older)) == (
        "HTTP 400 Bad Request: Username cannot be empty.")


def test_a_documented_group_409_fails_the_action_with_the_vendor_meaning():
    documented = fixture("group_allocation_refused.json")["response"]
    described = describe(httpx.Response(documented["status"], json=documented["body"]))
    assert described == f"HTTP 409 Conflict: {documented['meaning']}"


def test_inferred_shapes_that_do_not_fit_are_errors_not_empty_holdings():
    for parse, bad in ((facts.organization_quantities, {"productQuantities": {"UNATT": 5}}),
                       (facts.group_bundles, {"userBundleCodes": "RPADEVPRONU"}),
                       (facts.user_bundles, {"users": [{"id": "x"}]}),
                       (facts.tenant_quantities, [])):
        with pytest.raises(VendorError):
            parse(bad)


# ---- the provider sends what the vendor documents -------------------------------------------
def test_the_provider_calls_are_the_documented_requests():
    tenant = fixture("tenant_allocation.json")["request"]
    call = calls.allocate_tenant(CONNECTION, "y-y-y-delilah", "y1968", "orchestrator",
                                 tenant["body"]["products"])
    assert (call.method, url_path(call), call.body) == (
        tenant["method"], tenant["path"], tenant["body"])
    org = fixture("organization_allocation.json")["request"]
    call = calls.allocate_organization(CONNECTION, "{organizationId}", org["body"][
        "productQuantities"])
    assert (call.method, url_path(call).replace("%7B", "{").replace("%7D", "}"),
            call.body) == (org["method"], org["path"], org["body"])
    group = fixture("group_allocation.json")["request"]
    call = calls.allocate_group(CONNECTION, "song-one", "group-01", ["RPADEVPRONU"])
    assert (call.method, url_path(call), call.body) == (group["method"], group["path"],
                                                        group["body"])
    user = fixture("user_allocation.json")["request"]
    call = calls.allocate_user(CONNECTION, "song-one", "singer-77", ["RPADEVPRONU"])
    assert (call.method, url_path(call)) == (user["method"], user["path"])
    assert set(call.body) == set(user["body"]), "userIds, userBundleCodes, useExternalLicense"


def test_the_named_base_is_the_later_group_pages_form():
    named = CONNECTION.model_copy(update={"user_license_base": "/{organization}/lease_"})
    call = calls.allocate_group(named, "song-one", "group-01", ["RPADEVPRONU"])
    documented = fixture("group_allocation.json")["request_named"]["path"]
    assert url_path(call) == documented.replace("{organizationName}", "song-one")


# ---- the simulator accepts the documented requests and answers in the documented shapes ----
def song_one_seed() -> dict[str, Any]:
    seed = UiPathSimulator.default_seed()
    seed["organizations"].append({
        "id": "song-one", "name": "music", "products": {"RPADEVPRONU": 5},
        "groups": [{"id": "group-01", "bundles": []}],
        "users": [{"id": user, "bundles": []} for user in ("singer-77", "singer-88",
                                                            "singer-111")]})
    seed["host_license"]["RPADEVPRONU"] = 15
    return seed


async def login(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    ropc = fixture("ropc_authenticate.json")["request"]["body"]
    answer = await client.post("/api/account/authenticate", json={
        **ropc, "UsernameOrEmailAddress": "admin", "Password": "sandbox-uipath-host-password"})
    assert shape(answer.json()) == shape(fixture("ropc_authenticate.json")["response"]["body"])
    app = await client.post("/identity_/connect/token", data={
        "grant_type": "client_credentials", "client_id": "reconciler-app",
        "client_secret": "sandbox-uipath-app-secret", "scope": "PM.License"})
    return ({"Authorization": f"Bearer {answer.json()['result']}"},
            {"Authorization": f"Bearer {app.json()['access_token']}"})


async def test_the_simulator_refuses_a_login_in_the_envelope_later_servers_use():
    documented = fixture("ropc_authenticate_refused.json")
    async with sandbox_client(UiPathSimulator()) as client:
        refused = await client.post("/api/account/authenticate",
                                    json=documented["request"]["body"])
    assert refused.status_code == documented["response"]["status"]
    assert refused.json() == documented["response"]["body"]


async def test_the_simulator_tokens_live_the_documented_30_minutes():
    lifetime = fixture("ropc_authenticate.json")["token_lifetime"]["seconds"]
    async with sandbox_client(UiPathSimulator()) as client:
        app = await client.post("/identity_/connect/token", data={
            "grant_type": "client_credentials", "client_id": "reconciler-app",
            "client_secret": "sandbox-uipath-app-secret", "scope": "PM.License"})
    assert app.json()["expires_in"] == lifetime == 1800
    seed = UiPathSimulator.default_seed()
    del seed["token_ttl_s"]
    async with sandbox_client(UiPathSimulator(seed=seed)) as client:
        app = await client.post("/identity_/connect/token", data={
            "grant_type": "client_credentials", "client_id": "reconciler-app",
            "client_secret": "sandbox-uipath-app-secret", "scope": "PM.License"})
    assert app.json()["expires_in"] == lifetime, "the default, with no seed setting"


@pytest.mark.parametrize("held,taken", [(0, 0), (2, 2)])
async def test_the_simulator_refuses_a_group_put_beyond_the_account_with_409(held, taken):
    """None of the code held, or every unit taken: the documented 409; the same rule
    already in place is not refused again."""
    documented = fixture("group_allocation_refused.json")
    request = documented["request"]
    seed = song_one_seed()
    org = seed["organizations"][-1]
    org["products"] = {"UNATT": 1, **({"RPADEVPRONU": held} if held else {})}
    for user in org["users"][:taken]:
        user["bundles"] = ["RPADEVPRONU"]
    async with sandbox_client(UiPathSimulator(seed=seed)) as client:
        _, app = await login(client)
        answer = await client.put(request["path"], headers=app, json=request["body"])
        unchanged = await client.put(request["path"], headers=app, json={"userBundleCodes": []})
    assert answer.status_code == documented["response"]["status"] == 409
    assert set(answer.json()) == set(documented["response"]["body"])
    assert answer.json()["message"].startswith(documented["response"]["meaning"].rstrip("."))
    assert unchanged.status_code == 200


async def test_the_simulator_takes_the_documented_tenant_put_and_answers_its_shape():
    request = fixture("tenant_allocation.json")["request"]
    async with sandbox_client(UiPathSimulator()) as client:
        host, _ = await login(client)
        answer = await client.request(request["method"], request["path"], headers=host,
                                      json=request["body"])
    assert answer.status_code == 200, answer.text
    documented = fixture("tenant_allocation.json")["response"]["body"]
    ours = answer.json()
    assert set(ours) == set(documented)
    assert set(ours["license"]) == set(documented["license"])
    for key in ("accountId", "serviceScopeId", "serviceType", "userLicensingEnabled",
                "accountLicenseCode"):
        assert shape(ours[key]) == shape(documented[key]), key
    for key, value in documented["license"].items():
        if key not in ("products", "templates"):
            assert shape(ours["license"][key]) == shape(value), key
    product = documented["license"]["products"][0]
    assert [set(p) for p in ours["license"]["products"]] == [set(product)] * 3
    assert all(shape(p)["quantity"] == "number" for p in ours["license"]["products"])
    assert facts.tenant_quantities(ours) == {"UNATT": 5, "NONPR": 4, "TIE": 2}


@pytest.mark.parametrize("name,key", [("group_allocation.json", "request"),
                                      ("group_allocation.json", "request_named"),
                                      ("user_allocation.json", "request")])
async def test_the_simulator_takes_the_documented_organization_level_puts(name, key):
    request = fixture(name)[key]
    path = request["path"].replace("{organizationName}", "music")
    async with sandbox_client(UiPathSimulator(seed=song_one_seed())) as client:
        _, app = await login(client)
        answer = await client.request(request["method"], path, headers=app,
                                      json=request["body"])
        assert answer.status_code == 200, answer.text
        elsewhere = "/nobody" + request["path"].replace("/{organizationName}", "")
        wrong_org = await client.request(request["method"], elsewhere, headers=app,
                                         json=request["body"])
    assert wrong_org.status_code == 404 and set(wrong_org.json()) == {"message", "errorCode"}


async def test_the_simulator_counts_each_user_as_one_unit():
    """'Each user consumes a license unit': three singers hold three of five."""
    request = fixture("user_allocation.json")["request"]
    seed = song_one_seed()
    seed["organizations"][-1]["products"] = {"RPADEVPRONU": 2}
    async with sandbox_client(UiPathSimulator(seed=seed)) as client:
        _, app = await login(client)
        answer = await client.put(request["path"], headers=app, json=request["body"])
    assert answer.status_code == 409
    assert "RPADEVPRONU 3 exceeds the account license quantity 2" in answer.json()["message"]
    assert "exceeds the account license quantit" in fixture("user_allocation.json")[
        "errors"]["409"]
