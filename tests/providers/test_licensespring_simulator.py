"""The LicenseSpring simulator checks signatures and answers with the vendor's codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from email.utils import formatdate

import pytest

from reconciler.sandbox.licensespring import LicenseSpringSimulator
from tests.conftest import sandbox_client

API_KEY = "sandbox-licensespring-api-key"
SHARED = "sandbox-licensespring-shared-key"
MANAGEMENT = {"Authorization": "Api-Key sandbox-licensespring-management-key"}


def signed(shared: str = SHARED, date: str | None = None, api_key: str = API_KEY,
           algorithm: str = "hmac-sha256", headers: str = "date") -> dict[str, str]:
    date = date or formatdate(usegmt=True)
    digest = hmac.new(shared.encode(), f"licenseSpring\ndate: {date}".encode(), hashlib.sha256)
    signature = base64.b64encode(digest.digest()).decode()
    return {"Date": date, "Authorization": f'algorithm="{algorithm}",headers="{headers}",'
                                           f'signature="{signature}",apiKey="{api_key}"'}


@pytest.fixture
async def client():
    async with sandbox_client(LicenseSpringSimulator()) as opened:
        yield opened


BODY = {"hardware_id": "ws-new", "product": "acmeviz", "license_key": "AVIZ-1QQ3-8TTR-2ZZ9"}


async def code_of(client, headers: dict[str, str]) -> tuple[int, str]:
    answer = await client.post("/api/v4/activate_license", json=BODY, headers=headers)
    body = answer.json()
    assert set(body) == {"status", "code", "message"} and body["status"] == answer.status_code
    return answer.status_code, body["code"]


async def test_each_authorization_failure_has_its_documented_code(client):
    assert await code_of(client, {}) == (400, "missing_headers")
    assert await code_of(client, {"Date": formatdate(usegmt=True)}) == (400, "missing_headers")
    assert await code_of(client, {"Date": formatdate(usegmt=True),
                                  "Authorization": 'algorithm="hmac-sha256"'}) == (
        400, "authorization_missing_params")
    assert await code_of(client, signed(algorithm="hmac-sha1")) == (400, "hmac_required")
    assert await code_of(client, signed(headers="host")) == (
        400, "authorization_invalid_headers")
    assert await code_of(client, signed(api_key="nope")) == (400, "invalid_api_key")
    assert await code_of(client, signed("wrong")) == (400, "signature_mismatch")
    assert await code_of(client, signed(date="Thu, 17 Nov 2022 20:51:35 GMT")) == (
        400, "date_header_diff")
    assert await code_of(client, signed(date="yesterday")) == (400, "date_header_diff")


async def test_the_date_may_be_up_to_15_minutes_off(client):
    near = formatdate(time.time() - 14 * 60, usegmt=True)
    far = formatdate(time.time() - 16 * 60, usegmt=True)
    assert (await client.post("/api/v4/activate_license", json=BODY,
                              headers=signed(date=near))).status_code == 200
    assert await code_of(client, signed(date=far)) == (400, "date_header_diff")


async def test_the_documented_spelling_of_the_header_is_accepted(client):
    # The docs write `apikey` and put spaces after the commas; the SDK writes `apiKey`.
    headers = signed()
    headers["Authorization"] = headers["Authorization"].replace(",", ", ").replace(
        "apiKey", "apikey")
    answer = await client.post("/api/v4/activate_license", json=BODY, headers=headers)
    assert answer.status_code == 200, answer.text


async def test_max_activations_and_deactivation(client):
    first = await client.post("/api/v4/activate_license", json=BODY, headers=signed())
    assert first.status_code == 200 and first.json()["times_activated"] == 2
    third = await client.post("/api/v4/activate_license", headers=signed(),
                              json={**BODY, "hardware_id": "ws-third"})
    assert third.status_code == 400 and third.json()["code"] == "license_activated_max_times"
    released = await client.post("/api/v4/deactivate_license", json=BODY, headers=signed())
    assert released.status_code == 200 and released.text == "license_deactivated"
    again = await client.post("/api/v4/deactivate_license", json=BODY, headers=signed())
    assert again.json() == {"status": 400, "code": "device_not_found",
                            "message": "an active device matching the hardware_id not found"}


async def test_unknown_product_license_and_expired_license(client):
    unknown = await client.post("/api/v4/activate_license", headers=signed(),
                                json={**BODY, "product": "nope"})
    assert unknown.json()["code"] == "unknown_product"
    missing = await client.post("/api/v4/activate_license", headers=signed(),
                                json={**BODY, "license_key": "XXXX"})
    assert missing.json()["code"] == "license_not_found"
    expired = await client.post("/api/v4/activate_license", headers=signed(), json={
        "hardware_id": "ws-new", "product": "acmecad", "license_key": "ACAD-EXPD-0000-0001"})
    assert expired.json()["code"] == "license_expired"


async def test_user_based_products_activate_with_the_users_password_only(client):
    user = {"hardware_id": "render-01", "product": "acmerender", "username": "lee@acme.example"}
    without = await client.post("/api/v4/activate_license", json=user, headers=signed())
    assert without.json()["code"] == "license_not_found"
    ok = await client.post("/api/v4/activate_license", headers=signed(),
                           json={**user, "password": "sandbox-lee-password"})
    assert ok.status_code == 200 and ok.json()["product_details"]["authorization_method"] == "user"
    # A license key means nothing to a user-based product.
    keyed = await client.post("/api/v4/activate_license", headers=signed(),
                              json={**BODY, "product": "acmerender"})
    assert keyed.json()["code"] == "license_not_found"
    # Deactivation names the user only, as the official SDK sends it.
    released = await client.post("/api/v4/deactivate_license", json=user, headers=signed())
    assert released.text == "license_deactivated"


async def test_license_users_endpoints_need_a_user_based_product(client):
    listed = await client.get("/api/v4/customer_license_users", headers=signed(),
                              params={"product": "acmerender", "customer": "acme"})
    assert [u["email"] for u in listed.json()["users"]] == ["dana@acme.example",
                                                             "lee@acme.example"]
    keyed = await client.get("/api/v4/customer_license_users", headers=signed(),
                             params={"product": "acmecad", "customer": "acme"})
    assert keyed.json()["code"] == "invalid_product_auth_method"
    mine = await client.get("/api/v4/user_licenses", headers=signed(), params={
        "product": "acmecloud", "username": "dana@acme.example",
        "password": "sandbox-dana-password"})
    assert [row["license"]["id"] for row in mine.json()] == [1003]


async def test_management_api_needs_its_key_and_pages_at_most_100(client):
    assert (await client.get("/api/v1/licenses/")).status_code == 401
    page = (await client.get("/api/v1/devices/", params={"limit": "2"},
                             headers=MANAGEMENT)).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and "offset=2" in page["next"]
    capped = (await client.get("/api/v1/devices/", params={"limit": "500"},
                               headers=MANAGEMENT)).json()
    assert capped["next"] is None and len(capped["results"]) == 5


async def test_management_licenses_show_their_users_as_the_vendor_does(client):
    rows = (await client.get("/api/v1/licenses/", headers=MANAGEMENT,
                             params={"product_short_code": "acmerender"})).json()["results"]
    (render,) = rows
    assert render["license_key"] is None and render["max_activations"] == 4
    assert [(u["email"], u["true_email"]) for u in render["license_users"]] == [
        ("dana@acme.example|sandbox", "dana@acme.example"),
        ("lee@acme.example|sandbox", "lee@acme.example")]
    by_user = (await client.get("/api/v1/licenses/", headers=MANAGEMENT, params={
        "license_users__true_email": "dana@acme.example"})).json()
    assert sorted(r["id"] for r in by_user["results"]) == [1003, 1005]


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("POST", "/api/v4/no_such_endpoint", 404, "not_found"),
    ("GET", "/api/v4/activate_license", 405, "method_not_allowed"),
    ("DELETE", "/api/v4/deactivate_license", 405, "method_not_allowed"),
])
async def test_unrouted_license_api_requests_answer_the_vendor_json_error(client, method, path,
                                                                         status, code):
    answer = await client.request(method, path, headers=signed())
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"status": status, "code": code, "message": answer.json()["message"]}
    assert answer.status_code == status and answer.json()["message"]


async def test_unrouted_management_requests_answer_django_rest_framework_errors(client):
    missing = await client.get("/api/v1/no-such-list/", headers=MANAGEMENT)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})
    wrong = await client.post("/api/v1/licenses/", headers=MANAGEMENT)
    assert (wrong.status_code, wrong.json()) == (405, {"detail": 'Method "POST" not allowed.'})
    unauthorized = await client.get("/api/v1/licenses/", headers={"Authorization": "Api-Key x"})
    assert unauthorized.status_code == 401 and set(unauthorized.json()) == {"detail"}


async def test_user_based_deactivation_checks_a_given_password_and_allows_none(client):
    user = {"hardware_id": "dana-laptop", "product": "acmecloud",
            "username": "dana@acme.example"}
    wrong = await client.post("/api/v4/deactivate_license", headers=signed(),
                              json={**user, "password": "guess"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "license_not_found")
    right = await client.post("/api/v4/deactivate_license", headers=signed(),
                              json={**user, "password": "sandbox-dana-password"})
    assert (right.status_code, right.text) == (200, "license_deactivated")
    again = await client.post("/api/v4/deactivate_license", headers=signed(), json=user)
    assert (again.status_code, again.json()["code"]) == (400, "device_not_found")
