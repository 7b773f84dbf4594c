"""Yext contract: the Licenses API's documented shapes judge provider and simulator alike.

Fixtures (tests/fixtures/vendors/yext/, each naming its source: the reference page and
its OpenAPI spec) are fed to the provider over `httpx.MockTransport` (no simulator
involved), and the same requests are sent to the simulator, whose answers must have
exactly the documented keys and types.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.http import VendorHttp
from reconciler.model import Limits, ProviderDesired
from reconciler.providers.yext import YextConnection, YextProvider, pack_id_of
from reconciler.sandbox.yext import YextSimulator
from reconciler.secrets import Secrets
from tests.conftest import sandbox_client
from tests.contract import json_shape, vendor_fixtures

fixture = vendor_fixtures("yext")
shape = json_shape
KEY = "sandbox-yext-api-key"






def assert_fits(actual: Any, documented: Any, where: str = "$") -> None:
    """Every documented key is there with its type, and nothing undocumented is added
    (`meta.uuid` aside, values may differ; `meta.errors` appears only on errors)."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        extra = set(actual) - set(documented) - ({"errors"} if where.endswith("meta") else set())
        assert not extra, f"{where}: undocumented keys {sorted(extra)}"
        for key in documented:
            assert key in actual, f"{where}: missing '{key}'"
            assert_fits(actual[key], documented[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{where}: expected a list"
        for item in actual:  # each item fits one of the documented variants
            misfits = []
            for variant in documented:
                try:
                    assert_fits(item, variant, f"{where}[]")
                    break
                except AssertionError as misfit:
                    misfits.append(str(misfit))
            else:
                raise AssertionError("; ".join(misfits))
    else:
        assert shape(actual) == shape(documented), f"{where}: {actual!r} vs {documented!r}"


# ---- the provider reads the documented responses ------------------------------------------
def documented_vendor(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/license-packs"):
        return httpx.Response(200, json=fixture("license_packs.json")["response"]["body"])
    if path.endswith("/assigned-entities"):
        body = fixture("license_assignments.json")["response"]["body"]
        return httpx.Response(200, json=body)
    error = fixture("error.json")["missing_api_key"]["response"]
    return httpx.Response(404, json=error["body"])


async def test_the_provider_reads_the_documented_pack_object():
    async with httpx.AsyncClient(base_url="https://api.yextapis.example",
                                 transport=httpx.MockTransport(documented_vendor)) as client:
        provider = YextProvider(YextConnection(api_key_env="YEXT_KEY"),
                                VendorHttp(client, Limits(rate_limit=1000)),
                                Secrets(environ={"YEXT_KEY": KEY}))
        state = await provider.read(ProviderDesired(provider="yext"))
    assert [(g.pool, g.subject.id, str(g.expires)) for g in state.grants] == [
        ("listings-basic", "store-001", "None"), ("listings-basic", "store-002", "2099-01-31")]
    assert [(p.id, p.capacity, p.used) for p in state.pools] == [("listings-basic", 10, 2)]


def test_the_pack_of_a_documented_assignment_is_its_object_id():
    group = fixture("license_assignments.json")["response"]["body"]["response"][
        "licenseAssignments"][0]
    assert isinstance(group["licensePack"], dict)
    assert pack_id_of(group) == "listings-basic"


# ---- the simulator answers the documented requests in the documented shapes ---------------
@pytest.fixture
async def client():
    async with sandbox_client(YextSimulator()) as opened:
        yield opened


async def send(client: httpx.AsyncClient, request: dict[str, Any],
               with_key: bool = True) -> httpx.Response:
    params = {**request["query"], **({"api_key": KEY} if with_key else {})}
    return await client.request(request["method"], request["path"], params=params)


@pytest.mark.parametrize("name", ["license_packs.json", "license_assignments.json",
                                  "assignment_create.json"])
async def test_simulator_answers_have_the_documented_shape(client, name):
    documented = fixture(name)
    answer = await send(client, documented["request"])
    assert answer.status_code == documented["response"]["status"]
    assert_fits(answer.json(), documented["response"]["body"])


async def test_simulator_assignment_groups_carry_the_pack_object(client):
    documented = fixture("license_assignments.json")
    answer = await send(client, {**documented["request"],
                                 "path": "/v2/accounts/me/license-packs/-/assigned-entities"})
    groups = answer.json()["response"]["licenseAssignments"]
    assert groups and all(isinstance(g["licensePack"], dict) for g in groups)
    assert_fits(answer.json(), documented["response"]["body"])


async def test_simulator_delete_answers_the_documented_empty_response(client):
    documented = fixture("assignment_create.json")["delete"]
    answer = await send(client, {**documented["request"],
                                 "path": "/v2/accounts/me/license-packs/listings-basic/"
                                         "assigned-entities/store-001"})
    assert answer.status_code == documented["response"]["status"]
    assert_fits(answer.json(), documented["response"]["body"])


async def test_simulator_missing_key_is_the_documented_400_error(client):
    documented = fixture("error.json")["missing_api_key"]
    answer = await send(client, documented["request"], with_key=False)
    assert answer.status_code == documented["response"]["status"]
    assert_fits(answer.json(), documented["response"]["body"])
