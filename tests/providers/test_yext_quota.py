"""Yext's hourly quota: the simulator answers like Yext, the provider waits or stops.

Time is one FakeClock shared by the simulator (its quota window) and the HTTP layer
(its waits), so an hour passes only when something sleeps.
"""

from __future__ import annotations

import pytest

from reconciler.http import QuotaUsed, RetryPolicy, VendorHttp, utc_minute
from reconciler.model import (
    Change,
    ChangeKind,
    Grant,
    Limits,
    OutcomeStatus,
    ProviderDesired,
    Subject,
)
from reconciler.providers.yext import YextConnection, YextProvider
from reconciler.sandbox.yext import YextSimulator
from reconciler.sandbox.yext_quota import QuotaSettings
from reconciler.secrets import Secrets
from tests.conftest import sandbox_client
from tests.fakeclock import FakeClock

ENV = {"YEXT_API_KEY": "sandbox-yext-api-key"}
KEY = {"api_key": "sandbox-yext-api-key", "v": "20240101"}
START = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
READS = 4  # the pack list and one assignment list per pack (3 packs, 50 a page)


@pytest.fixture
def clock() -> FakeClock:
    clock = FakeClock()
    clock.time = START
    return clock


def simulator_at(clock: FakeClock, limit: int, window_s: float = 3600.0) -> YextSimulator:
    simulator = YextSimulator()
    simulator.clock = clock.now
    simulator.quota.configure(QuotaSettings(limit=limit, window_s=window_s))
    return simulator


async def test_every_answer_carries_the_quota_headers_and_429_lasts_until_the_reset(clock):
    simulator = simulator_at(clock, limit=2)
    async with sandbox_client(simulator) as client:
        path = "/v2/accounts/me/license-packs"
        first = await client.get(path, params=KEY)
        second = await client.get("/v2/accounts/me/nothing-here", params=KEY)
        refused = await client.get(path, params=KEY)
        admin = await client.get("/_sandbox/quota")
        clock.time = START + 3599
        still = await client.get(path, params=KEY)
        clock.time = START + 3600
        again = await client.get(path, params=KEY)
    reset = str(int(START + 3600))
    assert [(r.status_code, r.headers["Rate-Limit-Remaining"]) for r in (first, second)] == [
        (200, "1"), (404, "0")]
    assert {r.headers["Rate-Limit-Limit"] for r in (first, second, refused)} == {"2"}
    assert {r.headers["Rate-Limit-Reset"] for r in (first, second, refused, still)} == {reset}
    assert refused.status_code == still.status_code == 429
    assert refused.headers["Rate-Limit-Remaining"] == "0"
    assert refused.json()["meta"]["errors"][0]["type"] == "FATAL_ERROR"
    assert "Rate-Limit-Limit" not in admin.headers, "sandbox endpoints are not counted"
    assert again.status_code == 200 and again.headers["Rate-Limit-Remaining"] == "1"
    assert again.headers["Rate-Limit-Reset"] == str(int(START + 3600 + 3600))


async def test_the_quota_is_off_by_default_and_set_at_run_time():
    simulator = YextSimulator()
    async with sandbox_client(simulator) as client:
        plain = await client.get("/v2/accounts/me/license-packs", params=KEY)
        set_ = await client.put("/_sandbox/quota", json={"limit": 1, "window_s": 60})
        capped = await client.get("/v2/accounts/me/license-packs", params=KEY)
        bad = await client.put("/_sandbox/quota", json={"limit": -1})
    assert "Rate-Limit-Limit" not in plain.headers
    assert set_.json()["limit"] == 1 and capped.headers["Rate-Limit-Remaining"] == "0"
    assert bad.status_code >= 400 and simulator.quota.settings.limit == 1


def grant(entity: str, pack: str) -> Grant:
    return Grant(provider="yext", pool=pack, subject=Subject(kind="entity", id=entity),
                 license=pack)


async def provider_for(simulator: YextSimulator, clock: FakeClock,
                       budget: float = 60.0) -> tuple[YextProvider, VendorHttp]:
    http = VendorHttp(sandbox_client(simulator), Limits(rate_limit=10_000),
                      retry=RetryPolicy(attempts=3, max_elapsed=budget, initial_wait=0.001,
                                        max_wait=0.01))
    http.clock, http.sleep = clock.now, clock.sleep
    provider = YextProvider(YextConnection(api_key_env="YEXT_API_KEY"), http,
                            Secrets(environ=ENV))
    return provider, http


CHANGES = [Change(kind=ChangeKind.ADD, after=grant(entity, "listings-basic"), reason="t")
           for entity in ("store-005", "store-006", "warehouse-east")]


async def test_a_reset_beyond_the_budget_stops_before_sending_more(clock):
    """The quota allows the read and one change: that answer says nothing is left, so
    the next changes are not sent at all, each failing with when the quota comes back."""
    simulator = simulator_at(clock, limit=READS + 1)
    provider, http = await provider_for(simulator, clock)
    async with http.client:
        state = await provider.read(ProviderDesired(provider="yext"))
        first, *rest = provider.actions(CHANGES, state)
        assert (await provider.execute(first)).status is OutcomeStatus.SUCCEEDED
        for action in rest:
            with pytest.raises(QuotaUsed) as caught:
                await provider.execute(action)
            assert str(caught.value) == ("yext: hourly quota used; quota resets at "
                                         f"{utc_minute(START + 3600)} (UTC)") \
                == "yext: hourly quota used; quota resets at 09:00 (UTC)"
    log = simulator.request_log()
    assert len(log) == READS + 1 and all(e["status"] != 429 for e in log), "nothing more sent"
    assert clock.slept == []


async def test_a_429_with_a_far_reset_is_not_retried_and_names_the_reset(clock):
    """Someone else used the hour: the one refused call did nothing, nothing follows it."""
    simulator = simulator_at(clock, limit=READS)
    provider, http = await provider_for(simulator, clock)
    async with http.client:
        state = await provider.read(ProviderDesired(provider="yext"))
        simulator.quota.used = simulator.quota.settings.limit  # another client's calls
        http.quota_until = None
        clock.time += 600
        [action, *_] = provider.actions(CHANGES, state)
        with pytest.raises(QuotaUsed) as caught:
            await provider.execute(action)
        with pytest.raises(QuotaUsed):
            await provider.read(ProviderDesired(provider="yext"))
    assert caught.value.code == "quota" and caught.value.status == 429
    assert "quota resets at 09:00 (UTC)" in str(caught.value)
    refused = [e for e in simulator.request_log() if e["status"] == 429]
    assert len(refused) == 1 and refused[0]["method"] == "POST"


async def test_a_reset_within_the_budget_is_waited_for_and_the_run_goes_on(clock):
    """A short window: the HTTP layer sleeps until `Rate-Limit-Reset` and carries on."""
    simulator = simulator_at(clock, limit=2, window_s=20)
    provider, http = await provider_for(simulator, clock)
    async with http.client:
        state = await provider.read(ProviderDesired(provider="yext"))
        outcomes = [await provider.execute(a) for a in provider.actions(CHANGES, state)]
    assert [o.status for o in outcomes] == [OutcomeStatus.SUCCEEDED] * 3
    # 7 requests at 2 a window: at least 3 waits of up to one window (the reset header is
    # whole seconds, so up to 21 s); the reads run concurrently, so one may meet a 429.
    assert len([w for w in clock.slept if w >= 1]) >= 3
    assert all(0 < wait <= 21 for wait in clock.slept)
    changes = [e for e in simulator.request_log() if e["method"] == "POST"]
    assert len(changes) == 3 and all(e["status"] < 300 for e in changes), \
        "sent one by one, each change heeds the last answer's Rate-Limit-Remaining: 0"


async def test_a_429_within_the_budget_is_retried_after_the_reset(clock):
    simulator = simulator_at(clock, limit=READS, window_s=30)
    provider, http = await provider_for(simulator, clock)
    async with http.client:
        state = await provider.read(ProviderDesired(provider="yext"))
        http.quota_until = None  # as if the last answer's headers were lost
        [action, *_] = provider.actions(CHANGES, state)
        outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert http.throttled == 1 and len(clock.slept) == 1 and 0 < clock.slept[0] <= 30
