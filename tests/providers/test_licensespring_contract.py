"""LicenseSpring contract: the vendor's documented shapes judge provider and simulator alike.

Fixtures (tests/fixtures/vendors/licensespring/, each naming its source) are fed to the
provider's parser over `httpx.MockTransport` (no simulator involved), and the same
requests are sent to the simulator, whose answers must have the documented shapes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from reconciler.hosts import Hosts
from reconciler.http import VendorHttp
from reconciler.model import Limits, ProviderDesired
from reconciler.providers.licensespring import (
    LicenseSpringConnection,
    LicenseSpringProvider,
    describe,
    signed_headers,
)
from reconciler.sandbox.licensespring import LicenseSpringSimulator
from reconciler.secrets import Secrets
from tests.conftest import sandbox_client
from tests.contract import json_shape, vendor_fixtures

fixture = vendor_fixtures("licensespring")
shape = json_shape
SANDBOX_KEYS = {"K": "sandbox-licensespring-api-key", "S": "sandbox-licensespring-shared-key",
                "M": "sandbox-licensespring-management-key"}
MANAGEMENT = {"Authorization": "Api-Key sandbox-licensespring-management-key"}






def assert_fits(actual: Any, documented: Any, keys: set[str] | None = None,
                where: str = "$") -> None:
    """`actual` has the documented keys (or the chosen `keys`) with the documented types."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key in sorted(keys if keys is not None else set(documented)):
            assert key in actual, f"{where}: missing '{key}'"
            assert_fits(actual[key], documented[key], None, f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{where}: expected a list"
        if documented and actual:
            assert_fits(actual[0], documented[0], None, f"{where}[0]")
    elif documented is not None and actual is not None:
        assert shape(actual) == shape(documented), f"{where}: {actual!r} vs {documented!r}"


# ---- the provider reads the documented responses -----------------------------------------
PAGING = {"limit", "offset"}


def documented_filters(listing: str) -> set[str]:
    """The filter names the vendor documents for a list call (fixture `filters`)."""
    return set(fixture(f"management_{listing}.json")["filters"])


def undocumented(request: httpx.Request) -> set[str]:
    """Query names a Management list call sends that its reference does not name: the
    server would ignore them and answer the unfiltered list."""
    listing = request.url.path.strip("/").split("/")[-1]
    return set(request.url.params) - documented_filters(listing) - PAGING


def documented_vendor(request: httpx.Request) -> httpx.Response:
    """Answers exactly the documented pages; the one device is pointed at the documented
    user-based license (the two pages document different licenses)."""
    licenses = fixture("management_licenses.json")["page"]
    if request.url.path == "/api/v1/licenses/":
        return httpx.Response(200, json=licenses)
    if request.url.path == "/api/v1/devices/":
        page = fixture("management_devices.json")["page"]
        device = {**page["results"][0], "license": licenses["results"][0]["id"]}
        return httpx.Response(200, json={**page, "results": [device]})
    return httpx.Response(404, json={"detail": "Not found."})


@asynccontextmanager
async def documented_provider(vendor: Callable[[httpx.Request], httpx.Response],
                              **settings: Any) -> AsyncIterator[LicenseSpringProvider]:
    """The provider with the vendor's two hosts (License API, and the Management API at its
    default `saas.licensespring.com`), both answered by `vendor`, closed afterwards."""
    def http_at(base_url: str) -> VendorHttp:
        return VendorHttp(httpx.AsyncClient(base_url=base_url,
                                            transport=httpx.MockTransport(vendor)),
                          Limits(rate_limit=1000))

    primary = http_at("https://api.licensespring.example")
    hosts = Hosts(primary, http_at)
    connection = LicenseSpringConnection(api_key_env="K", shared_key_env="S",
                                         management_key_env="M", **settings)
    try:
        yield LicenseSpringProvider(connection, primary, Secrets(environ=SANDBOX_KEYS),
                                    hosts=hosts)
    finally:
        await hosts.aclose()
        await primary.client.aclose()


async def test_the_provider_parses_the_documented_management_pages():
    sent: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return documented_vendor(request)

    async with documented_provider(vendor) as provider:
        state = await provider.read(ProviderDesired(provider="licensespring"))
    documented_device = fixture("management_devices.json")["page"]["results"][0]
    assert [(g.license, g.subject.id) for g in state.grants] == [
        ("cloudapp/example@email.com", documented_device["hardware_id"])]
    pools = {p.id: (p.capacity, p.used) for p in state.pools}
    # The tagged `email|uss1` is read as the plain `true_email`; unlimited → no capacity.
    assert pools == {"cloudapp/example@email.com": (3, 1), "H62K-C35N-BS2J-VZ13": (None, 0)}
    assert sent and all(not undocumented(r) for r in sent), [str(r.url) for r in sent]
    assert {r.url.host for r in sent} == {"saas.licensespring.com"}, "reads: Management host"


async def test_the_provider_filters_licences_by_product_with_the_documented_name():
    """With `connection.products`, each product's licences are asked for with the List
    Licenses page's `product_short_code` (one underscore) and nothing undocumented."""
    sent: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return documented_vendor(request)

    async with documented_provider(vendor, products=("cloudapp", "other")) as provider:
        await provider.read(ProviderDesired(provider="licensespring"))
    licence_queries = sorted(r.url.params.get("product_short_code", "")
                             for r in sent if r.url.path == "/api/v1/licenses/")
    assert licence_queries == ["cloudapp", "other"]
    assert all(not undocumented(r) for r in sent), [str(r.url) for r in sent]


@pytest.mark.parametrize("name", ["device_not_found", "unknown_product", "signature_mismatch",
                                  "invalid_api_key"])
def test_documented_errors_are_described_with_status_code_and_message(name):
    documented = fixture("errors.json")[name]
    response = httpx.Response(documented["status"], json=documented["body"])
    body = documented["body"]
    assert describe(response) == f"{body['code']}: {body['message']} (HTTP {documented['status']})"


# ---- the simulator takes the documented requests and answers the documented shapes -------
@pytest.fixture
async def simulator_client():
    async with sandbox_client(LicenseSpringSimulator()) as opened:
        yield opened


def signed() -> dict[str, str]:
    return signed_headers(SANDBOX_KEYS["K"], SANDBOX_KEYS["S"])


@pytest.mark.parametrize("case", ["key_based", "user_based"])
async def test_the_simulator_takes_the_documented_deactivation(simulator_client, case):
    documented = fixture("deactivate_license.json")[case]
    request = documented["request"]
    answer = await simulator_client.request(request["method"], request["path"],
                                            json=request["body"], headers=signed())
    assert (answer.status_code, answer.text) == (documented["response"]["status"],
                                                 documented["response"]["text"])


@pytest.mark.parametrize(("name", "body", "headers"), [
    ("device_not_found", {"hardware_id": "ghost", "product": "acmecad",
                          "license_key": "ACAD-7H2K-99QX-4M1P"}, None),
    ("unknown_product", {"hardware_id": "x", "product": "nope", "license_key": "k"}, None),
    ("signature_mismatch", {}, signed_headers(SANDBOX_KEYS["K"], "wrong")),
    ("invalid_api_key", {}, signed_headers("unknown", SANDBOX_KEYS["S"])),
])
async def test_simulator_errors_have_the_documented_code_and_shape(simulator_client, name, body,
                                                                   headers):
    documented = fixture("errors.json")[name]
    answer = await simulator_client.post("/api/v4/deactivate_license", json=body,
                                         headers=headers or signed())
    assert answer.status_code == documented["status"]
    assert shape(answer.json()) == shape(documented["body"])  # exactly these keys
    assert answer.json()["code"] == documented["body"]["code"]


# The fields the provider reads from a license row and a device row.
LICENSE_FIELDS = {"id", "license_key", "product", "license_users", "max_activations",
                  "allow_unlimited_activations", "enabled", "validity_period", "start_date"}
DEVICE_FIELDS = {"id", "hardware_id", "device_active", "license", "time_activated",
                 "time_deactivated", "blacklisted"}


async def test_simulator_license_pages_have_the_documented_shape(simulator_client):
    documented = fixture("management_licenses.json")["page"]
    answer = await simulator_client.get("/api/v1/licenses/", headers=MANAGEMENT)
    page = answer.json()
    assert_fits(page, documented, {"count", "next", "previous"})
    rows = page["results"]
    user_based = next(r for r in rows if r["license_users"])
    key_based = next(r for r in rows if r["license_key"])
    assert_fits(user_based, documented["results"][0], LICENSE_FIELDS - {"product",
                                                                        "license_users"})
    assert_fits(key_based, documented["results"][1], LICENSE_FIELDS - {"product",
                                                                       "license_users"})
    assert_fits(user_based["product"], documented["results"][0]["product"], {"short_code"})
    assert_fits(user_based["license_users"][0],
                documented["results"][0]["license_users"][0], {"id", "email", "true_email"})
    user = user_based["license_users"][0]
    assert user["email"].split("|")[0] == user["true_email"], "email is tagged, as documented"


@pytest.mark.parametrize(("listing", "params", "expected"), [
    ("licenses", {"product_short_code": "acmecad"}, 2),
    ("licenses", {"product__short_code": "acmecad"}, 5),  # unknown name: ignored
    ("licenses", {"no_such_filter": "x"}, 5),
    ("devices", {"license": "1001"}, 3),
    ("devices", {"hardware_id": "ws-design-01"}, 2),
    ("devices", {"blacklisted": "true"}, 0),
    ("devices", {"device_active": "false"}, 5),  # not a documented filter: ignored
])
async def test_the_simulator_filters_as_documented_and_ignores_unknown_names(
        simulator_client, listing, params, expected):
    """Like the vendor's filter views: a documented name filters, any other name is
    ignored and the whole list comes back (so a misspelt filter shows as a wrong result)."""
    unknown = set(params) - documented_filters(listing)
    assert bool(unknown) == (expected == 5)
    page = (await simulator_client.get(f"/api/v1/{listing}/", params=params,
                                       headers=MANAGEMENT)).json()
    assert page["count"] == expected


async def test_simulator_device_pages_have_the_documented_shape(simulator_client):
    documented = fixture("management_devices.json")["page"]
    answer = await simulator_client.get("/api/v1/devices/", headers=MANAGEMENT)
    page = answer.json()
    assert_fits(page, documented, {"count", "next", "previous"})
    assert_fits(page["results"][0], documented["results"][0], DEVICE_FIELDS)
