"""The UiPath simulator rejects what Automation Suite rejects."""

from __future__ import annotations

import pytest

from reconciler.sandbox.uipath import UiPathSimulator
from tests.conftest import sandbox_client

HOST = "feb0dd79-85b6-483b-b297-0e49a1aa5b7d"
ORG = "6b0c7f55-0000-4000-8000-000000000001"
PROD = "0f1e2d3c-0000-4000-8000-00000000a001"


@pytest.fixture
async def client():
    async with sandbox_client(UiPathSimulator()) as opened:
        yield opened


async def host_token(client) -> dict[str, str]:
    answer = await client.post("/api/account/authenticate", json={
        "TenancyName": "Host", "UsernameOrEmailAddress": "admin",
        "Password": "sandbox-uipath-host-password"})
    return {"Authorization": f"Bearer {answer.json()['result']}"}


async def app_token(client) -> dict[str, str]:
    answer = await client.post("/identity_/connect/token", data={
        "grant_type": "client_credentials", "client_id": "reconciler-app",
        "client_secret": "sandbox-uipath-app-secret", "scope": "PM.License PM.UserLicense"})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_wrong_password_and_wrong_secret_are_refused(client):
    ropc = await client.post("/api/account/authenticate", json={
        "TenancyName": "Host", "UsernameOrEmailAddress": "admin", "Password": "guess"})
    assert ropc.status_code == 400 and ropc.json()["success"] is False
    app = await client.post("/identity_/connect/token", data={
        "grant_type": "client_credentials", "client_id": "reconciler-app",
        "client_secret": "guess", "scope": "PM.License"})
    assert app.json() == {"error": "invalid_client"}


async def test_each_level_needs_its_kind_of_token(client):
    org_path = f"/lrm/api/host/{HOST}/organization/{ORG}/license"
    assert (await client.get(org_path)).status_code == 401
    assert (await client.get(org_path, headers=await app_token(client))).status_code == 403
    assert (await client.get(org_path, headers=await host_token(client))).status_code == 200
    users = f"/lease_/api/account/{ORG}/user-license"
    assert (await client.get(users, headers=await host_token(client))).status_code == 403


async def test_tenant_allocation_takes_put_and_products_only(client):
    path = f"/lrm/api/account/{ORG}/service-license/{PROD}/orchestrator"
    headers = await host_token(client)
    seed_form = await client.post(path, headers=headers, json={
        "productQuantities": [{"code": "UNATT", "quantity": 5}]})
    assert seed_form.status_code == 405 and "Use PUT" in seed_form.json()["message"]
    wrong_field = await client.put(path, headers=headers, json={
        "tenantName": "acme-prod", "productQuantities": [{"code": "UNATT", "quantity": 5}]})
    assert wrong_field.status_code == 400 and "'products'" in wrong_field.json()["message"]
    ok = await client.put(path, headers=headers, json={
        "tenantName": "acme-prod", "products": [{"code": "UNATT", "quantity": 5}]})
    assert ok.json()["license"]["products"] == [
        {"code": "UNATT", "quantity": 5, "type": "ROBOT", "features": []}]


async def test_levels_cannot_exceed_or_undercut_each_other(client):
    headers = await host_token(client)
    tenant = f"/lrm/api/account/{ORG}/service-license/{PROD}/orchestrator"
    over = await client.put(tenant, headers=headers, json={
        "tenantName": "acme-prod", "products": [{"code": "UNATT", "quantity": 7}]})
    assert over.status_code == 409, "prod 7 + dev 4 > organization 10"
    missing = await client.put(tenant, headers=headers, json={
        "tenantName": "acme-prod", "products": [{"code": "NONPRODUCTION", "quantity": 1}]})
    assert missing.status_code == 404
    org = f"/lrm/api/host/{HOST}/organization/{ORG}/license"
    below = await client.put(org, headers=headers, json={
        "productQuantities": [{"code": "UNATT", "quantity": 9}]})
    assert below.status_code == 409 and "hold 10" in below.json()["message"]
    beyond_host = await client.put(org, headers=headers, json={
        "productQuantities": [{"code": "UNATT", "quantity": 21}]})
    assert beyond_host.status_code == 409


async def test_user_licenses_are_bounded_by_the_organization(client):
    headers = await app_token(client)
    users = f"/lease_/api/account/{ORG}/user-license"
    # ATTUNU: org 4, held by alice and bob; carol and two more would need 5.
    ok = await client.put(users, headers=headers, json={
        "userIds": ["carol@acme.example"], "userBundleCodes": ["ATTUNU"],
        "useExternalLicense": False})
    assert ok.status_code == 200
    unknown = await client.put(users, headers=headers, json={
        "userIds": ["mallory@acme.example"], "userBundleCodes": ["ATTUNU"]})
    assert unknown.status_code == 404
