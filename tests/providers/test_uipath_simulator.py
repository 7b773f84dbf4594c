"""The UiPath simulator rejects what Automation Suite rejects."""

from __future__ import annotations

import copy

import pytest

from reconciler.sandbox.uipath import UiPathSimulator
from tests.conftest import sandbox_client

HOST = "feb0dd79-85b6-483b-b297-0e49a1aa5b7d"
ORG = "6b0c7f55-0000-4000-8000-000000000001"
PROD = "0f1e2d3c-0000-4000-8000-00000000a001"
DEV = "0f1e2d3c-0000-4000-8000-00000000a002"
ORG_PATH = f"/lrm/api/host/{HOST}/organization/{ORG}/license"
PROD_PATH = f"/lrm/api/account/{ORG}/service-license/{PROD}/orchestrator"
DEV_PATH = f"/lrm/api/account/{ORG}/service-license/{DEV}/orchestrator"
USERS_PATH = f"/lease_/api/account/{ORG}/user-license"
NAMED_USERS_PATH = f"/acme{USERS_PATH}"
GROUP_PATH = f"{USERS_PATH}/group/automation-devs"


@pytest.fixture
async def client():
    async with sandbox_client(UiPathSimulator()) as opened:
        yield opened


async def host_token(client) -> dict[str, str]:
    answer = await client.post("/api/account/authenticate", json={
        "TenancyName": "Host", "UsernameOrEmailAddress": "admin",
        "Password": "sandbox-uipath-host-password"})
    assert answer.json()["success"] is True
    return {"Authorization": f"Bearer {answer.json()['result']}"}


async def app_token(client, scope: str = "PM.License") -> dict[str, str]:
    answer = await client.post("/identity_/connect/token", data={
        "grant_type": "client_credentials", "client_id": "reconciler-app",
        "client_secret": "sandbox-uipath-app-secret", "scope": scope})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def products(answer) -> dict[str, int]:
    return {p["code"]: p["quantity"] for p in answer.json()["license"]["products"]}


async def test_wrong_password_secret_or_scope_gets_no_token(client):
    ropc = await client.post("/api/account/authenticate", json={
        "TenancyName": "Host", "UsernameOrEmailAddress": "admin", "Password": "guess"})
    assert ropc.status_code == 400 and ropc.json()["errorCode"] == 1000
    app = await client.post("/identity_/connect/token", data={
        "grant_type": "client_credentials", "client_id": "reconciler-app",
        "client_secret": "guess", "scope": "PM.License"})
    assert app.json() == {"error": "invalid_client"}
    scope = await client.post("/identity_/connect/token", data={
        "grant_type": "client_credentials", "client_id": "reconciler-app",
        "client_secret": "sandbox-uipath-app-secret", "scope": "PM.User"})
    assert scope.json() == {"error": "invalid_scope"}


async def test_each_level_needs_its_kind_of_token(client):
    assert (await client.get(ORG_PATH)).status_code == 401
    assert (await client.get(ORG_PATH, headers=await app_token(client))).status_code == 403
    assert (await client.get(ORG_PATH, headers=await host_token(client))).status_code == 200
    assert (await client.get(USERS_PATH, headers=await host_token(client))).status_code == 403
    assert (await client.get(USERS_PATH, headers=await app_token(client))).status_code == 200


async def test_app_token_needs_the_write_permission_to_allocate(client):
    reader = await app_token(client, "PM.License.Read")
    assert (await client.get(GROUP_PATH, headers=reader)).status_code == 200
    refused = await client.put(GROUP_PATH, headers=reader, json={
        "userBundleCodes": ["RPADEVPRONU"], "useExternalLicense": False})
    assert refused.status_code == 403 and "PM.License.Write" in refused.json()["message"]
    writer = await app_token(client, "PM.License.Write")
    assert (await client.put(GROUP_PATH, headers=writer, json={
        "userBundleCodes": ["RPADEVPRONU"], "useExternalLicense": False})).status_code == 200


async def test_expired_tokens_get_401_until_a_new_one_is_fetched(client):
    headers = await host_token(client)
    assert (await client.get(ORG_PATH, headers=headers)).status_code == 200
    assert (await client.post("/_sandbox/expire-tokens")).json() == {"expired": 1}
    assert (await client.get(ORG_PATH, headers=headers)).status_code == 401
    assert (await client.get(ORG_PATH, headers=await host_token(client))).status_code == 200


async def test_tenant_allocation_takes_put_and_products_only(client):
    headers = await host_token(client)
    seed_form = await client.post(PROD_PATH, headers=headers, json={
        "productQuantities": [{"code": "UNATT", "quantity": 5}]})
    assert seed_form.status_code == 405
    assert "use PUT with a body {tenantName, products" in seed_form.json()["message"]
    wrong_field = await client.put(PROD_PATH, headers=headers, json={
        "tenantName": "acme-prod", "productQuantities": [{"code": "UNATT", "quantity": 5}]})
    assert wrong_field.status_code == 400 and "'products'" in wrong_field.json()["message"]
    ok = await client.put(PROD_PATH, headers=headers, json={
        "tenantName": "acme-prod", "products": [{"code": "UNATT", "quantity": 5}]})
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) == {"accountId", "serviceScopeId", "serviceType", "license",
                         "userLicensingEnabled", "accountLicenseCode"}
    assert (body["accountId"], body["serviceScopeId"], body["serviceType"]) == (
        ORG, PROD, "orchestrator")
    assert {"licenseCode", "bundleCode", "subscriptionCode", "licenseStatus", "startDate",
            "endDate", "gracePeriod", "products", "templates"} <= set(body["license"])
    assert body["license"]["products"] == [
        {"code": "UNATT", "quantity": 5, "type": "ROBOT", "features": []}]
    assert products(await client.get(PROD_PATH, headers=headers)) == {"UNATT": 5}


async def test_organization_allocation_takes_put_and_product_quantities_only(client):
    headers = await host_token(client)
    example_form = await client.post(ORG_PATH, headers=headers, json={
        "productQuantities": [{"code": "UNATT", "quantity": 10}]})
    assert example_form.status_code == 405 and "use PUT" in example_form.json()["message"]
    tenant_form = await client.put(ORG_PATH, headers=headers, json={
        "products": [{"code": "UNATT", "quantity": 10}]})
    assert tenant_form.status_code == 400 and "productQuantities" in tenant_form.json()["message"]


async def test_a_put_states_the_whole_allocation(client):
    """Codes a PUT leaves out drop to 0: y-y-y-delilah holds UNATT, NONPR and TIE."""
    headers = await host_token(client)
    path = f"/lrm/api/host/{HOST}/organization/y-y-y-delilah/license"
    answer = await client.put(path, headers=headers, json={
        "productQuantities": [{"code": "UNATT", "quantity": 5}]})
    assert answer.json() == {"productQuantities": [{"code": "UNATT", "quantity": 5}]}
    partial = await client.put(ORG_PATH, headers=headers, json={
        "productQuantities": [{"code": "UNATT", "quantity": 10}]})
    assert partial.status_code == 409, "dropping ATTUNU would undercut alice and bob"
    assert "ATTUNU cannot be set to 0" in partial.json()["message"]


async def test_levels_cannot_exceed_or_undercut_each_other(client):
    headers = await host_token(client)
    over = await client.put(PROD_PATH, headers=headers, json={
        "tenantName": "acme-prod", "products": [{"code": "UNATT", "quantity": 7}]})
    assert over.status_code == 409, "prod 7 + dev 4 > organization 10"
    assert "UNATT 11 exceeds the organization's 10" in over.json()["message"]
    missing = await client.put(PROD_PATH, headers=headers, json={
        "tenantName": "acme-prod", "products": [{"code": "UNATT", "quantity": 6},
                                                {"code": "NONPR", "quantity": 1}]})
    assert missing.status_code == 409 and "NONPR 1 exceeds the organization's 0" in \
        missing.json()["message"]
    everything = {"productQuantities": [{"code": "ATTUNU", "quantity": 4},
                                        {"code": "RPADEVPRONU", "quantity": 5}]}
    below = await client.put(ORG_PATH, headers=headers, json={"productQuantities": [
        *everything["productQuantities"], {"code": "UNATT", "quantity": 9}]})
    assert below.status_code == 409 and "hold 10" in below.json()["message"]
    beyond_host = await client.put(ORG_PATH, headers=headers, json={"productQuantities": [
        *everything["productQuantities"], {"code": "UNATT", "quantity": 16}]})
    assert beyond_host.status_code == 409, "acme 16 + delilah 5 > host 20"
    assert "exceeds the host license quantity 20" in beyond_host.json()["message"]


async def test_a_tenant_cannot_drop_below_the_robots_it_has_in_use(client):
    headers = await host_token(client)
    below = await client.put(DEV_PATH, headers=headers, json={
        "tenantName": "acme-dev", "products": [{"code": "UNATT", "quantity": 1}]})
    assert below.status_code == 409 and "the tenant has 2 in use" in below.json()["message"]
    assert (await client.put(DEV_PATH, headers=headers, json={
        "tenantName": "acme-dev", "products": [{"code": "UNATT", "quantity": 2}]})
    ).status_code == 200


async def test_no_license_above_is_404():
    seed = copy.deepcopy(UiPathSimulator.default_seed())
    seed["organizations"][0]["products"] = {}
    seed["organizations"][0]["tenants"][0]["services"] = {}
    seed["organizations"][0]["tenants"][1]["services"] = {}
    seed["organizations"][0]["users"] = [{"id": "alice@acme.example", "bundles": []}]
    seed["organizations"][0]["groups"] = []
    async with sandbox_client(UiPathSimulator(seed=seed)) as client:
        tenant = await client.put(PROD_PATH, headers=await host_token(client), json={
            "tenantName": "acme-prod", "products": [{"code": "UNATT", "quantity": 1}]})
        assert tenant.status_code == 404
        assert "No account license" in tenant.json()["message"]
        user = await client.put(USERS_PATH, headers=await app_token(client), json={
            "userIds": ["alice@acme.example"], "userBundleCodes": ["ATTUNU"]})
        assert user.status_code == 404
    seed["host_license"] = {}
    async with sandbox_client(UiPathSimulator(seed=seed)) as client:
        org = await client.put(ORG_PATH, headers=await host_token(client), json={
            "productQuantities": [{"code": "UNATT", "quantity": 1}]})
        assert org.status_code == 404 and "host license does not exist" in org.json()["message"]


async def test_user_licenses_are_bounded_by_the_organization(client):
    # ATTUNU: alice and bob hold 2; the organization goes down from 4 to 3.
    lowered = await client.put(ORG_PATH, headers=await host_token(client), json={
        "productQuantities": [{"code": "ATTUNU", "quantity": 3},
                              {"code": "RPADEVPRONU", "quantity": 5},
                              {"code": "UNATT", "quantity": 10}]})
    assert lowered.status_code == 200
    headers = await app_token(client)
    ok = await client.put(USERS_PATH, headers=headers, json={
        "userIds": ["carol@acme.example"], "userBundleCodes": ["ATTUNU"],
        "useExternalLicense": False})
    assert ok.status_code == 200, "the third unit"
    over = await client.put(USERS_PATH, headers=headers, json={
        "userIds": ["carol@acme.example"], "userBundleCodes": ["ATTUNU", "RPADEVPRONU"]})
    assert over.status_code == 200, "RPADEVPRONU: bob and dave hold 2 of 5"
    listed = await client.get(USERS_PATH, headers=headers)
    assert {u["userId"]: u["userBundleCodes"] for u in listed.json()["users"]} == {
        "alice@acme.example": ["ATTUNU"], "bob@acme.example": ["ATTUNU", "RPADEVPRONU"],
        "carol@acme.example": ["ATTUNU", "RPADEVPRONU"]}
    unknown = await client.put(USERS_PATH, headers=headers, json={
        "userIds": ["mallory@acme.example"], "userBundleCodes": ["ATTUNU"]})
    assert unknown.status_code == 404


async def test_a_fourth_direct_user_beyond_the_organization_is_409(client):
    headers = await app_token(client)
    await client.put(ORG_PATH, headers=await host_token(client), json={"productQuantities": [
        {"code": "ATTUNU", "quantity": 2}, {"code": "RPADEVPRONU", "quantity": 5},
        {"code": "UNATT", "quantity": 10}]})
    over = await client.put(USERS_PATH, headers=headers, json={
        "userIds": ["carol@acme.example"], "userBundleCodes": ["ATTUNU"]})
    assert over.status_code == 409
    assert "ATTUNU 3 exceeds the account license quantity 2" in over.json()["message"]


async def test_a_group_rule_uses_nothing_until_members_sign_in(client):
    """Automation Cloud's group rules: each member who signs in takes one unit of each of
    the group's codes, first come first served; the rule itself holds none."""
    app = await app_token(client)
    host = await host_token(client)
    # ATTUNU 4: alice and bob hold 2. Giving the whole group ATTUNU is no 409.
    rule = await client.put(GROUP_PATH, headers=app, json={
        "userBundleCodes": ["RPADEVPRONU", "ATTUNU"], "useExternalLicense": False})
    assert rule.status_code == 200
    full = {"productQuantities": [{"code": "ATTUNU", "quantity": 2},
                                  {"code": "RPADEVPRONU", "quantity": 5},
                                  {"code": "UNATT", "quantity": 10}]}
    assert (await client.put(ORG_PATH, headers=host, json=full)).status_code == 200, \
        "a rule nobody used yet holds nothing: ATTUNU can go down to alice and bob's 2"
    erin = await client.post("/_sandbox/sign-in", json={
        "organizationId": ORG, "userId": "erin@acme.example"})
    assert erin.json()["acquired"] == ["RPADEVPRONU"], "no ATTUNU left for erin"
    # RPADEVPRONU is now held by bob, dave and erin: 3, one unit per user.
    three = [{"code": "ATTUNU", "quantity": 2}, {"code": "RPADEVPRONU", "quantity": 2},
             {"code": "UNATT", "quantity": 10}]
    below = await client.put(ORG_PATH, headers=host, json={"productQuantities": three})
    assert below.status_code == 409 and "users hold 3" in below.json()["message"]
    dropped = await client.put(GROUP_PATH, headers=app, json={"userBundleCodes": []})
    assert dropped.status_code == 200
    assert (await client.put(ORG_PATH, headers=host, json={"productQuantities": [
        {"code": "ATTUNU", "quantity": 2}, {"code": "RPADEVPRONU", "quantity": 1},
        {"code": "UNATT", "quantity": 10}]})).status_code == 200, \
        "dropping the code from the rule released dave's and erin's units"


async def test_organization_level_paths_take_the_documented_and_the_named_form(client):
    headers = await app_token(client)
    documented = await client.get(USERS_PATH, headers=headers)
    named = await client.get(NAMED_USERS_PATH, headers=headers)
    assert documented.status_code == named.status_code == 200
    assert documented.json() == named.json()
    wrong_name = await client.get(f"/globex/lease_/api/account/{ORG}/user-license",
                                  headers=headers)
    assert wrong_name.status_code == 404 and "globex" in wrong_name.json()["message"]
    posted = await client.post(GROUP_PATH, headers=headers, json={
        "userBundleCodes": ["RPADEVPRONU"]})
    assert posted.status_code == 405 and "use PUT" in posted.json()["message"]


async def test_unknown_paths_and_methods_answer_in_the_json_error_shape(client):
    headers = await host_token(client)
    unknown = await client.get("/lrm/api/host/nowhere", headers=headers)
    assert unknown.status_code == 404
    assert set(unknown.json()) == {"message", "errorCode"} and unknown.json()["errorCode"] == 404
    deleted = await client.delete(ORG_PATH, headers=headers)
    assert deleted.status_code == 405 and deleted.json()["errorCode"] == 405
    assert "DELETE" in deleted.json()["message"]
    bad = await client.get(ORG_PATH, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and set(bad.json()) == {"message", "errorCode"}
