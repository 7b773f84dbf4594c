"""One VendorHttp per vendor host, made like the first, closed with the session."""

from __future__ import annotations

import httpx
import pytest

from reconciler.errors import VendorError
from reconciler.hosts import Hosts
from reconciler.http import VendorHttp, to_request
from reconciler.model import Call, Limits
from reconciler.pipeline import Session, load_desired
from reconciler.sandbox.base import Faults
from reconciler.sandbox.runtime import InProcessSandbox, SandboxConnector
from tests.e2e.conftest import EXAMPLES
from tests.fakeclock import FakeClock


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={})


def http_at(base_url: str) -> VendorHttp:
    return VendorHttp(httpx.AsyncClient(base_url=base_url, transport=httpx.MockTransport(ok)),
                      Limits())


async def test_each_host_gets_one_client_of_its_own_and_only_those_are_closed():
    primary = http_at("https://api.vendor.test")
    clock = FakeClock()
    primary.sleep, primary.clock = clock.sleep, clock.now
    seen: list[str] = []

    async def hook(response: httpx.Response) -> None:
        seen.append(str(response.request.url))

    primary.client.event_hooks["response"].append(hook)
    hosts = Hosts(primary, http_at)
    assert hosts.at("https://api.vendor.test/") is primary
    other = hosts.at("https://reads.vendor.test")
    assert hosts.at("https://reads.vendor.test/") is other and other is not primary
    assert other.rate is not primary.rate, "a host's limits are its own"
    assert (other.sleep, other.clock) == (clock.sleep, clock.now), "waits observed alike"
    await other.client.get("/x")
    assert seen == ["https://reads.vendor.test/x"], "answers observed alike (probe)"
    await hosts.aclose()
    assert other.client.is_closed and not primary.client.is_closed
    await primary.client.aclose()


def test_a_provider_built_for_one_host_says_so_for_another():
    hosts = Hosts(http_at("https://api.vendor.test"))
    with pytest.raises(VendorError, match=r"no HTTP client for https://reads\.vendor\.test"):
        hosts.at("https://reads.vendor.test")


def test_a_secret_body_goes_into_the_request_and_never_into_the_call():
    client = httpx.AsyncClient(base_url="https://api.vendor.test")
    call = Call.to("POST", "api", "v4", "activate_license", body={"username": "dana"})
    request = to_request(client, call, secret_body={"password": "s3cr3t-pw"})
    assert request.read() == b'{"username":"dana","password":"s3cr3t-pw"}'
    assert call.body == {"username": "dana"}
    with pytest.raises(TypeError):
        to_request(client, Call.to("GET", "x"), secret_body={"password": "p"})


async def test_the_management_host_has_its_own_client_closed_with_the_session(tmp_path):
    """LicenseSpring reads on its Management host: a second client, not a copy of the
    first, whose requests and retries are its own, and which the session closes."""
    desired = load_desired([str(EXAMPLES / "licensespring.yaml")])
    sandbox = InProcessSandbox(tmp_path)
    sandbox.simulator("licensespring").set_faults(Faults(burst_429=2))
    async with Session(desired, connector=SandboxConnector(sandbox)) as session:
        await session.read()
        provider = session.providers["licensespring"]
        opened = provider.hosts.opened()
        assert [str(h.client.base_url) for h in opened] == [
            "http://licensespring.sandbox", "http://management.licensespring.sandbox"]
        primary, management = opened
        assert management.rate is not primary.rate
        assert (management.throttled, management.retries) == (2, 2), "counted where they hit"
        assert (primary.throttled, primary.retries) == (0, 0)
    assert all(h.client.is_closed for h in opened)
    hosts = {e["headers"]["host"] for e in sandbox.simulator("licensespring").request_log()}
    assert hosts == {"management.licensespring.sandbox"}, "every read went to its own host"
