"""A client-side rate limit that backs off when the vendor pushes back (AIMD).

The configured `rate_limit` is what the operator allows, not what the vendor will
take: a vendor whose own limit is lower answers 429 to everything above it, and a
client that keeps pushing at the configured rate spends its retry budget on 429s
(the failure this module exists for). So the rate adapts, as TCP's window does:

- a 429 halves the rate (multiplicative decrease), once per "generation": a 429
  for a request that was let through *before* the last decrease says nothing about
  the new rate, so a burst of concurrent 429s halves the rate once, not N times
  (requests are numbered as they are let through; a clock would tie);
- a `Retry-After` stops every request of this client until then, not only the one
  that was told (the vendor's word is about the client, not one call);
- each success adds `ceiling / 32` back (additive increase), never beyond the
  configured rate.

The bucket holds one second of tokens at the current rate and never less than one,
so a fractional rate (0.5/s: one call every two seconds) works; aiolimiter refuses
those (it cannot hand out a token when its capacity is below one).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

FLOOR_FRACTION = 1 / 16
"""The rate never drops below this share of the configured one: Retry-After and
the per-call backoff slow a client further when the vendor asks, and a collapsed
rate would take long to climb back after a short burst of 429s."""

INCREASE_FRACTION = 1 / 32
"""Share of the configured rate won back by each success (from the floor to the
full rate in 30 successes)."""


class AdaptiveRate:
    """Token bucket whose rate follows the vendor's 429s (AIMD); safe for one event loop."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate must be a positive number of calls per second, not {rate}")
        self.ceiling = rate
        self.floor = rate * FLOOR_FRACTION
        self.rate = rate
        self.decreases = 0
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._capacity()
        self._stamp = clock()
        self._paused_until = -math.inf
        self._issued = 0
        self._generation_start = 0
        self._lock = asyncio.Lock()

    def _capacity(self) -> float:
        return max(1.0, self.rate)

    def _refill(self, now: float) -> None:
        start = max(self._stamp, self._paused_until)
        if now > start:
            self._tokens = min(self._capacity(), self._tokens + (now - start) * self.rate)
        self._stamp = max(now, self._stamp)

    async def acquire(self) -> int:
        """Waits for a token; returns its number (hand it to `throttled`).

        Waiters are served first come, first served (asyncio.Lock is fair), and a
        waiter re-checks after every sleep because a 429 may have lowered the rate
        or paused the bucket meanwhile.
        """
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1.0 - 1e-9:  # float rounding must not cost a sleep
                    self._tokens = max(0.0, self._tokens - 1.0)
                    self._issued += 1
                    return self._issued
                await self._sleep((1.0 - self._tokens) / self.rate)

    def throttled(self, ticket: int, retry_after: float | None) -> None:
        """The vendor answered 429 to the request that got token number `ticket`."""
        now = self._clock()
        self._refill(now)
        self._tokens = 0.0
        if retry_after is not None and retry_after > 0:
            self._paused_until = max(self._paused_until, now + retry_after)
        if ticket > self._generation_start:
            self.rate = max(self.floor, self.rate / 2)
            self._generation_start = self._issued
            self.decreases += 1

    def succeeded(self) -> None:
        """A request went through: win back a little of the configured rate."""
        if self.rate < self.ceiling:
            self._refill(self._clock())
            self.rate = min(self.ceiling, self.rate + self.ceiling * INCREASE_FRACTION)
