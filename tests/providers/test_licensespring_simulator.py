"""The LicenseSpring simulator checks signatures and answers with the vendor's codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate

import pytest

from reconciler.sandbox.licensespring import LicenseSpringSimulator
from tests.conftest import sandbox_client

API_KEY = "sandbox-licensespring-api-key"
SHARED = "sandbox-licensespring-shared-key"


def signed(shared: str = SHARED, date: str | None = None) -> dict[str, str]:
    date = date or formatdate(usegmt=True)
    digest = hmac.new(shared.encode(), f"licenseSpring\ndate: {date}".encode(), hashlib.sha256)
    signature = base64.b64encode(digest.digest()).decode()
    return {"Date": date, "Authorization": f'algorithm="hmac-sha256",headers="date",'
                                           f'signature="{signature}",apiKey="{API_KEY}"'}


@pytest.fixture
async def client():
    async with sandbox_client(LicenseSpringSimulator()) as opened:
        yield opened


BODY = {"hardware_id": "ws-new", "product": "acmeviz", "license_key": "AVIZ-1QQ3-8TTR-2ZZ9"}


async def test_missing_headers_wrong_key_and_stale_date_are_rejected(client):
    missing = await client.post("/api/v4/activate_license", json=BODY)
    assert missing.status_code == 400 and missing.json()["code"] == "missing_headers"
    forged = await client.post("/api/v4/activate_license", json=BODY, headers=signed("wrong"))
    assert forged.status_code == 401 and forged.json()["message"] == "invalid signature"
    old = await client.post("/api/v4/activate_license", json=BODY,
                            headers=signed(date="Thu, 17 Nov 2022 20:51:35 GMT"))
    assert old.status_code == 401 and old.json()["code"] == "date_out_of_range"


async def test_max_activations_and_deactivation(client):
    first = await client.post("/api/v4/activate_license", json=BODY, headers=signed())
    assert first.status_code == 200 and first.json()["times_activated"] == 2
    third = await client.post("/api/v4/activate_license", headers=signed(),
                              json={**BODY, "hardware_id": "ws-third"})
    assert third.status_code == 400 and third.json()["code"] == "license_activated_max_times"
    released = await client.post("/api/v4/deactivate_license", json=BODY, headers=signed())
    assert released.text == "license_deactivated"
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


async def test_management_api_needs_its_key_and_pages_at_most_100(client):
    assert (await client.get("/api/v1/licenses/")).status_code == 401
    headers = {"Authorization": "Api-Key sandbox-licensespring-management-key"}
    page = (await client.get("/api/v1/devices/", params={"limit": "2"}, headers=headers)).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and "offset=2" in page["next"]
    capped = (await client.get("/api/v1/devices/", params={"limit": "500"},
                               headers=headers)).json()
    assert capped["next"] is None and len(capped["results"]) == 5
