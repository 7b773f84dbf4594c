"""The shared HTTP layer against a simulator's faults: what is retried, and how."""

from __future__ import annotations

import httpx
import pytest

from reconciler.errors import VendorError
from reconciler.http import RequestSpec, RetryPolicy, VendorHttp
from reconciler.model import Limits
from reconciler.sandbox.base import Faults
from reconciler.sandbox.yext import YextSimulator
from tests.conftest import sandbox_client

PARAMS = {"v": "20240101", "api_key": "sandbox-yext-api-key"}
LIST = RequestSpec("GET", "/v2/accounts/me/license-packs", params=PARAMS)
ASSIGN = RequestSpec("POST", "/v2/accounts/me/license-packs/reviews-plus/assigned-entities/"
                             "store-003", params=PARAMS)
QUICK = RetryPolicy(attempts=6, initial_wait=0.0, max_wait=0.0)


@pytest.fixture
async def setup():
    simulator = YextSimulator()
    client = sandbox_client(simulator)
    yield simulator, client
    await client.aclose()


def calls(simulator: YextSimulator, method: str) -> list[dict]:
    return [e for e in simulator.request_log() if e["method"] == method]


async def test_429_burst_is_retried_honouring_retry_after(setup):
    simulator, client = setup
    simulator.set_faults(Faults(burst_429=3, retry_after=0.01))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    response = await http.send(LIST, repeatable=True)
    assert response.status_code == 200
    assert [e["status"] for e in calls(simulator, "GET")] == [429, 429, 429, 200]
    assert http.waits == [0.01, 0.01, 0.01]


async def test_5xx_is_retried_for_repeatable_calls_only(setup):
    simulator, client = setup
    simulator.set_faults(Faults(error_rates={503: 1.0}))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    assert (await http.send(LIST, repeatable=True)).status_code == 503
    assert len(calls(simulator, "GET")) == QUICK.attempts
    assert (await http.send(ASSIGN, repeatable=False)).status_code == 503
    assert len(calls(simulator, "POST")) == 1, "a one-shot call is never re-sent after a 5xx"


async def test_429_is_retried_even_for_one_shot_calls(setup):
    simulator, client = setup
    simulator.set_faults(Faults(burst_429=2))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    assert (await http.send(ASSIGN, repeatable=False)).status_code == 200
    assert [e["status"] for e in calls(simulator, "POST")] == [429, 429, 200]


async def test_dropped_connection_is_retried_for_repeatable_calls(setup):
    simulator, client = setup
    simulator.set_faults(Faults(drop_connection_rate=0.5, seed=3))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=RetryPolicy(20, 60, 0, 0))
    for _ in range(10):
        assert (await http.send(LIST, repeatable=True)).status_code == 200
    statuses = [e["status"] for e in calls(simulator, "GET")]
    assert "dropped" in statuses and statuses.count(200) == 10


async def test_lost_response_of_a_one_shot_call_raises_a_transport_error(setup):
    simulator, client = setup
    simulator.set_faults(Faults(drop_response_rate=1.0))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    with pytest.raises(VendorError) as caught:
        await http.send(ASSIGN, repeatable=False)
    assert caught.value.code == "transport"
    assert "sandbox-yext-api-key" not in str(caught.value)
    assert len(calls(simulator, "POST")) == 1
    assert "store-003" in simulator.state["accounts"]["me"]["assignments"]["reviews-plus"]


async def test_stalled_call_times_out_and_is_retried(setup):
    simulator, _ = setup
    simulator.set_faults(Faults(stall_rate=0.5, stall_ms=2000, seed=1))
    from reconciler.http import new_client
    from reconciler.sandbox.transport import SandboxTransport

    async with new_client("http://yext.sandbox", SandboxTransport(simulator.app), 0.05) as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RetryPolicy(20, 60, 0, 0))
        for _ in range(4):
            assert (await http.send(LIST, repeatable=True)).status_code == 200
    assert http.retries >= 1


async def test_rate_limit_and_concurrency_bound_calls_in_flight(setup):
    import asyncio

    simulator, client = setup
    simulator.set_faults(Faults(latency_ms=5))
    http = VendorHttp(client, Limits(rate_limit=1000, concurrency=2), retry=QUICK)
    peak = 0
    active = 0
    original = client.request

    async def counting(*args, **kwargs) -> httpx.Response:
        nonlocal peak, active
        active += 1
        peak = max(peak, active)
        try:
            return await original(*args, **kwargs)
        finally:
            active -= 1

    client.request = counting  # type: ignore[method-assign]
    await asyncio.gather(*(http.send(LIST, repeatable=True) for _ in range(10)))
    assert peak == 2
