"""The Yext simulator rejects what the real API rejects."""

from __future__ import annotations

import httpx
import pytest

from reconciler.sandbox.yext import YextSimulator
from tests.conftest import sandbox_client

KEY = "sandbox-yext-api-key"
PACKS = "/v2/accounts/me/license-packs"


@pytest.fixture
async def client():
    async with sandbox_client(YextSimulator()) as opened:
        yield opened


async def test_version_parameter_is_required_and_validated(client: httpx.AsyncClient):
    missing = await client.get(PACKS, params={"api_key": KEY})
    assert missing.status_code == 400
    assert "Missing required parameter: v" in missing.json()["meta"]["errors"][0]["message"]
    bad = await client.get(PACKS, params={"api_key": KEY, "v": "2024-01-01"})
    assert bad.status_code == 400


async def test_api_key_is_checked_in_query_or_header(client: httpx.AsyncClient):
    wrong = await client.get(PACKS, params={"api_key": "nope", "v": "20240101"})
    assert wrong.status_code == 401
    assert wrong.json()["meta"]["errors"][0]["type"] == "FATAL_ERROR"
    header = await client.get(PACKS, params={"v": "20240101"}, headers={"api-key": KEY})
    assert header.status_code == 200


async def test_a_missing_api_key_is_a_400_as_yext_documents(client: httpx.AsyncClient):
    missing = await client.get(PACKS, params={"v": "20240101"})
    assert missing.status_code == 400
    (error,) = missing.json()["meta"]["errors"]
    assert error["type"] == "FATAL_ERROR" and "api_key" in error["message"]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v2/accounts/me/no-such-thing", 404),
    ("GET", "/v1/anything", 404),
    ("DELETE", PACKS, 405),
    ("PATCH", f"{PACKS}/listings-basic/assigned-entities/store-001", 405),
])
async def test_unrouted_requests_answer_the_yext_envelope(client: httpx.AsyncClient, method,
                                                          path, status):
    answer = await client.request(method, path, params={"api_key": KEY, "v": "20240101"})
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"meta", "response"} and isinstance(body["meta"]["uuid"], str)
    (error,) = body["meta"]["errors"]
    assert set(error) == {"name", "code", "type", "message"} and isinstance(error["code"], int)


async def test_packs_report_total_assigned_and_available(client: httpx.AsyncClient):
    body = (await client.get(PACKS, params={"api_key": KEY, "v": "20240101"})).json()
    packs = {p["id"]: p for p in body["response"]["licensePacks"]}
    assert packs["knowledge-pro"] == {
        "id": "knowledge-pro",
        "name": "Knowledge Tags Pro",
        "total": 5,
        "assigned": 4,
        "available": 1,
        "notes": "Store pages",
    }


async def test_pagination_uses_opaque_tokens_bound_to_the_query(client: httpx.AsyncClient):
    params = {"api_key": KEY, "v": "20240101", "pageSize": "3"}
    seen: list[str] = []
    token = None
    while True:
        page = dict(params, **({"pageToken": token} if token else {}))
        body = (await client.get(f"{PACKS}/-/assigned-entities", params=page)).json()["response"]
        for group in body["licenseAssignments"]:
            pack = group["licensePack"]["id"]
            seen += [f"{pack}/{e['entityId']}" for e in group["assignedEntities"]]
        token = body.get("nextPageToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 11
    first = (await client.get(f"{PACKS}/-/assigned-entities", params=params)).json()
    reused = await client.get(
        f"{PACKS}/-/assigned-entities",
        params=dict(
            params, assignedEntity="store-001", pageToken=first["response"]["nextPageToken"]
        ),
    )
    assert reused.status_code == 400


async def test_assigning_beyond_available_fails_with_the_envelope(client: httpx.AsyncClient):
    params = {"api_key": KEY, "v": "20240101"}
    ok = await client.post(f"{PACKS}/reviews-plus/assigned-entities/store-003", params=params)
    assert ok.status_code == 200
    full = await client.post(f"{PACKS}/reviews-plus/assigned-entities/store-004", params=params)
    assert full.status_code == 400
    assert "No available licenses" in full.json()["meta"]["errors"][0]["message"]


async def test_unknown_pack_entity_and_double_assignment_are_errors(client: httpx.AsyncClient):
    params = {"api_key": KEY, "v": "20240101"}
    assert (
        await client.post(f"{PACKS}/nope/assigned-entities/store-001", params=params)
    ).status_code == 404
    assert (
        await client.post(f"{PACKS}/listings-basic/assigned-entities/ghost", params=params)
    ).status_code == 404
    again = await client.post(f"{PACKS}/listings-basic/assigned-entities/store-001", params=params)
    assert again.status_code == 409
    gone = await client.delete(f"{PACKS}/listings-basic/assigned-entities/store-006", params=params)
    assert gone.status_code == 404


async def test_expiration_date_must_be_a_future_iso_date(client: httpx.AsyncClient):
    params = {"api_key": KEY, "v": "20240101"}
    path = f"{PACKS}/knowledge-pro/assigned-entities/store-001"
    assert (
        await client.put(path, params=params, json={"expirationDate": "tomorrow"})
    ).status_code == 400
    assert (
        await client.put(path, params=params, json={"expirationDate": "2020-01-01"})
    ).status_code == 400
    set_ = await client.put(path, params=params, json={"expirationDate": "2099-01-31"})
    assert set_.json()["response"]["assignedEntities"] == [
        {"entityId": "store-001", "expirationDate": "2099-01-31"}]
    assert set_.json()["response"]["licensePack"]["id"] == "knowledge-pro"
    cleared = await client.put(path, params=params, json={"expirationDate": None})
    assert cleared.json()["response"]["assignedEntities"] == [{"entityId": "store-001"}]


async def test_request_log_records_every_vendor_call(client: httpx.AsyncClient):
    await client.get(PACKS, params={"api_key": KEY, "v": "20240101"})
    log = (await client.get("/_sandbox/requests")).json()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [("GET", PACKS, 200)]
