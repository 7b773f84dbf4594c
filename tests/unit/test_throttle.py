"""The adaptive client-side rate limit: AIMD on 429s, Retry-After pauses, fractional rates."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.throttle import FLOOR_FRACTION, INCREASE_FRACTION, AdaptiveRate
from tests.fakeclock import FakeClock


def limiter(rate: float) -> tuple[AdaptiveRate, FakeClock]:
    clock = FakeClock()
    return AdaptiveRate(rate, clock=clock.now, sleep=clock.sleep), clock


async def test_a_full_bucket_lets_one_second_of_calls_through_then_spaces_them():
    rate, clock = limiter(4)
    granted = []
    for _ in range(6):
        await rate.acquire()
        granted.append(clock.time)
    assert granted[:4] == [0.0] * 4
    assert granted[4:] == pytest.approx([0.25, 0.5])


async def test_a_fractional_rate_is_one_call_every_few_seconds():
    rate, clock = limiter(0.5)
    granted = []
    for _ in range(3):
        await rate.acquire()
        granted.append(clock.time)
    assert granted == pytest.approx([0.0, 2.0, 4.0])


def test_rates_that_would_never_send_are_refused():
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            AdaptiveRate(bad)


async def test_a_429_halves_the_rate_once_for_calls_let_through_together():
    rate, _ = limiter(100)
    together = [await rate.acquire() for _ in range(8)]
    for granted_at in together:
        rate.throttled(granted_at, retry_after=None)
    assert rate.rate == 50 and rate.decreases == 1


async def test_a_429_for_a_call_let_through_after_the_decrease_halves_again():
    rate, _ = limiter(100)
    rate.throttled(await rate.acquire(), retry_after=None)
    rate.throttled(await rate.acquire(), retry_after=None)
    assert rate.rate == 25 and rate.decreases == 2


async def test_the_rate_never_falls_below_its_floor():
    rate, _ = limiter(160)
    for _ in range(20):
        rate.throttled(await rate.acquire(), retry_after=None)
    assert rate.rate == pytest.approx(160 * FLOOR_FRACTION)


async def test_successes_win_the_rate_back_additively_up_to_the_configured_one():
    rate, _ = limiter(64)
    rate.throttled(await rate.acquire(), retry_after=None)
    assert rate.rate == 32
    rate.succeeded()
    assert rate.rate == pytest.approx(32 + 64 * INCREASE_FRACTION)
    for _ in range(100):
        rate.succeeded()
    assert rate.rate == 64


async def test_retry_after_pauses_every_caller_not_only_the_one_told():
    rate, clock = limiter(1000)
    rate.throttled(await rate.acquire(), retry_after=3.0)
    await rate.acquire()
    assert clock.time >= 3.0, "a call that was never throttled waits for the vendor too"


async def test_waiters_are_served_in_order_and_each_gets_one_token():
    rate, clock = limiter(2)
    order: list[int] = []

    async def take(index: int) -> None:
        await rate.acquire()
        order.append(index)

    await asyncio.gather(*(take(i) for i in range(6)))
    assert order == list(range(6))
    assert clock.time == pytest.approx(2.0)
