"""A clock for tests of waiting code: time passes only when something sleeps."""

from __future__ import annotations

import asyncio


class FakeClock:
    """Time that passes only when something sleeps: waits are checked, not spent."""

    def __init__(self) -> None:
        self.time = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds
        await asyncio.sleep(0)
