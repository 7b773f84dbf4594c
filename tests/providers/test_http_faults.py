"""The shared HTTP layer against a simulator's faults: what is retried, how, and for how long."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from reconciler.errors import VendorError
from reconciler.http import RetryPolicy, VendorHttp, announcing, describe, new_client
from reconciler.model import Call, Limits
from reconciler.sandbox.base import Faults
from reconciler.sandbox.transport import SandboxTransport
from reconciler.sandbox.yext import YextSimulator
from reconciler.throttle import AdaptiveRate
from tests.conftest import sandbox_client
from tests.fakeclock import FakeClock

AUTH = {"v": "20240101", "api_key": "sandbox-yext-api-key"}
LIST = Call.to("GET", "v2", "accounts", "me", "license-packs")
ASSIGN = Call.to("POST", "v2", "accounts", "me", "license-packs", "reviews-plus",
                 "assigned-entities", "store-003")
QUICK = RetryPolicy(attempts=6, initial_wait=0.0, max_wait=0.0)


def on_fake_clock(http: VendorHttp) -> FakeClock:
    """Waits between attempts and for rate tokens run on a FakeClock: observed, not slept."""
    clock = FakeClock()
    http.sleep = clock.sleep
    http.rate = AdaptiveRate(http.rate.ceiling, clock=clock.now, sleep=clock.sleep)
    return clock


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
    response = await http.send(LIST, repeatable=True, query=AUTH)
    assert response.status_code == 200
    assert [e["status"] for e in calls(simulator, "GET")] == [429, 429, 429, 200]
    assert http.waits == [0.01, 0.01, 0.01]


async def test_fifty_429s_in_a_row_are_ridden_out_within_the_time_budget(setup):
    """429s do not count against `retries` (6 here): only the 60 s budget bounds them."""
    simulator, client = setup
    simulator.set_faults(Faults(burst_429=50, retry_after=0.01))
    http = VendorHttp(client, Limits(rate_limit=1000, retries=6), retry=None)
    started = time.monotonic()
    response = await http.send(ASSIGN, repeatable=False, query=AUTH)
    assert response.status_code == 200
    statuses = [e["status"] for e in calls(simulator, "POST")]
    assert statuses == [429] * 50 + [200]
    assert http.waits == [0.01] * 50, "every wait is the vendor's Retry-After, no more, no less"
    assert time.monotonic() - started < 10
    assert "store-003" in simulator.state["accounts"]["me"]["assignments"]["reviews-plus"]


async def test_retry_after_is_honoured_in_full_beyond_the_old_three_seconds(setup):
    """A 5 s Retry-After is waited out in full, not cut short. The waits run on a
    fake clock: observed, not slept."""
    simulator, client = setup
    simulator.set_faults(Faults(burst_429=2, retry_after=5.0))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    clock = on_fake_clock(http)
    assert (await http.send(LIST, repeatable=True, query=AUTH)).status_code == 200
    assert http.waits == [5.0, 5.0]
    assert clock.time == pytest.approx(10.0, abs=0.1)
    assert http.throttled == 2 and http.rate.decreases == 2


async def test_spent_retry_budget_names_the_status_and_the_vendors_message(setup):
    simulator, client = setup
    simulator.set_faults(Faults(burst_429=10_000, retry_after=0.01))
    http = VendorHttp(client, Limits(rate_limit=1000),
                      retry=RetryPolicy(attempts=6, max_elapsed=0.2, initial_wait=0, max_wait=0))
    with pytest.raises(VendorError) as caught:
        await http.send(LIST, repeatable=True, query=AUTH)
    message = str(caught.value)
    assert caught.value.code == "throttled" and caught.value.status == 429
    assert "HTTP 429 Too Many Requests: sandbox fault" in message
    assert "retry budget" in message and "None" not in message
    assert "sandbox-yext-api-key" not in message
    assert 10 <= len(calls(simulator, "GET")) < 100


async def test_a_retry_after_longer_than_the_budget_gives_up_at_once(setup):
    simulator, client = setup
    simulator.set_faults(Faults(burst_429=5, retry_after=120.0))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    started = time.monotonic()
    beyond = r"Retry-After 120\.0 s is beyond the retry budget of 60 s"
    with pytest.raises(VendorError, match=beyond):
        await http.send(LIST, repeatable=True, query=AUTH)
    assert time.monotonic() - started < 5
    assert len(calls(simulator, "GET")) == 1


async def test_5xx_is_retried_for_repeatable_calls_only(setup):
    simulator, client = setup
    simulator.set_faults(Faults(error_rates={503: 1.0}))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    assert (await http.send(LIST, repeatable=True, query=AUTH)).status_code == 503
    assert len(calls(simulator, "GET")) == QUICK.attempts
    assert (await http.send(ASSIGN, repeatable=False, query=AUTH)).status_code == 503
    assert len(calls(simulator, "POST")) == 1, "a one-shot call is never re-sent after a 5xx"


async def test_429_is_retried_even_for_one_shot_calls(setup):
    simulator, client = setup
    simulator.set_faults(Faults(burst_429=2))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    assert (await http.send(ASSIGN, repeatable=False, query=AUTH)).status_code == 200
    assert [e["status"] for e in calls(simulator, "POST")] == [429, 429, 200]


async def test_dropped_connection_is_retried_for_repeatable_calls(setup):
    simulator, client = setup
    simulator.set_faults(Faults(drop_connection_rate=0.5, seed=3))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=RetryPolicy(20, 60, 0, 0))
    for _ in range(10):
        assert (await http.send(LIST, repeatable=True, query=AUTH)).status_code == 200
    statuses = [e["status"] for e in calls(simulator, "GET")]
    assert "dropped" in statuses and statuses.count(200) == 10


async def test_lost_response_of_a_one_shot_call_raises_a_transport_error(setup):
    simulator, client = setup
    simulator.set_faults(Faults(drop_response_rate=1.0))
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    with pytest.raises(VendorError) as caught:
        await http.send(ASSIGN, repeatable=False, query=AUTH)
    assert caught.value.code == "transport"
    assert "RemoteProtocolError" in str(caught.value)
    assert "sandbox-yext-api-key" not in str(caught.value)
    assert len(calls(simulator, "POST")) == 1
    assert "store-003" in simulator.state["accounts"]["me"]["assignments"]["reviews-plus"]


async def test_stalled_call_times_out_and_is_retried(setup):
    simulator, _ = setup
    simulator.set_faults(Faults(stall_rate=0.5, stall_ms=2000, seed=1))
    async with new_client("http://yext.sandbox", SandboxTransport(simulator.app), 0.05) as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RetryPolicy(20, 60, 0, 0))
        for _ in range(4):
            assert (await http.send(LIST, repeatable=True, query=AUTH)).status_code == 200
    assert http.retries >= 1


async def test_rate_limit_and_concurrency_bound_calls_in_flight(setup):
    simulator, client = setup
    simulator.set_faults(Faults(latency_ms=5))
    http = VendorHttp(client, Limits(rate_limit=1000, concurrency=2), retry=QUICK)
    peak = 0
    active = 0
    original = client.send

    async def counting(*args, **kwargs) -> httpx.Response:
        nonlocal peak, active
        active += 1
        peak = max(peak, active)
        try:
            return await original(*args, **kwargs)
        finally:
            active -= 1

    client.send = counting  # type: ignore[method-assign]
    await asyncio.gather(*(http.send(LIST, repeatable=True, query=AUTH) for _ in range(10)))
    assert peak == 2


async def test_vendor_limit_at_half_the_configured_rate_fails_no_call(setup):
    """Configured 400/s against a vendor that takes 200/s: the client slows down (AIMD)
    and every call succeeds in one go, with 429s a small share of the requests."""
    simulator, client = setup
    simulator.set_faults(Faults(rate_limit=200))
    http = VendorHttp(client, Limits(rate_limit=400, concurrency=8), retry=None)
    results = await asyncio.gather(
        *(http.send(LIST, repeatable=True, query=AUTH) for _ in range(400)),
        return_exceptions=True,
    )
    assert [r.status_code for r in results if isinstance(r, httpx.Response)] == [200] * 400
    assert http.rate.decreases >= 1, "the 429s lowered the client's rate"
    statuses = [e["status"] for e in calls(simulator, "GET")]
    assert statuses.count(429) < 0.25 * len(statuses), statuses.count(429)


async def test_a_fractional_rate_limit_spaces_calls(setup):
    """`rate_limit: 0.5` is one call every two seconds (aiolimiter refused it outright)."""
    _, client = setup
    http = VendorHttp(client, Limits(rate_limit=0.5), retry=QUICK)
    clock = on_fake_clock(http)
    for _ in range(3):
        assert (await http.send(LIST, repeatable=True, query=AUTH)).status_code == 200
    assert clock.slept == pytest.approx([2.0, 2.0])


def test_describe_never_says_none():
    request = httpx.Request("GET", "http://vendor.test/x")
    assert describe(httpx.Response(503, request=request)) == "HTTP 503 Service Unavailable"
    assert describe(httpx.Response(429, json={"statusMessage": None, "error": "slow down"},
                                   request=request)) == "HTTP 429 Too Many Requests: slow down"
    assert describe(httpx.Response(500, text="<html>oops</html>", request=request)) == (
        "HTTP 500 Internal Server Error"
    )


# ---- when the journal's "started" row is written --------------------------------------
async def test_announcement_comes_after_the_slot_and_before_the_send(setup):
    simulator, client = setup
    http = VendorHttp(client, Limits(rate_limit=1000, concurrency=1), retry=QUICK)
    sent_before_hook: list[int] = []

    async def hook() -> None:
        sent_before_hook.append(len(calls(simulator, "POST")))

    with announcing(ASSIGN, hook) as announcement:
        assert not announcement.fired
        await http.send(LIST, repeatable=True, query=AUTH)
        assert not announcement.fired, "a lookup is not the action's call"
        await http.send(ASSIGN, repeatable=False, query=AUTH)
        await http.send(ASSIGN, repeatable=False, query=AUTH)
    assert announcement.fired
    assert sent_before_hook == [0], "announced once, before the first send of the call"


async def test_a_change_sent_with_a_different_call_object_is_still_announced(setup):
    """The safety net: a provider that rebuilt the call still gets its row first."""
    _, client = setup
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)
    fired: list[str] = []

    async def hook() -> None:
        fired.append("started")

    rebuilt = Call.to("POST", "v2", "accounts", "me", "license-packs", "reviews-plus",
                      "assigned-entities", "store-004")
    with announcing(ASSIGN, hook):
        await http.send(rebuilt, repeatable=False, query=AUTH)
    assert fired == ["started"]


async def test_a_failing_announcement_stops_the_send(setup):
    simulator, client = setup
    http = VendorHttp(client, Limits(rate_limit=1000), retry=QUICK)

    async def hook() -> None:
        raise OSError("journal disk full")

    with announcing(ASSIGN, hook), pytest.raises(OSError):
        await http.send(ASSIGN, repeatable=False, query=AUTH)
    assert calls(simulator, "POST") == []
