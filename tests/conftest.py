"""Shared fixtures: a provider wired to an in-process simulator over httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from reconciler.http import RetryPolicy, VendorHttp, new_client
from reconciler.model import Limits
from reconciler.sandbox.base import Simulator
from reconciler.sandbox.transport import SandboxTransport

FAST_RETRY = RetryPolicy(attempts=8, max_elapsed=20.0, initial_wait=0.001, max_wait=0.01)


def sandbox_client(simulator: Simulator) -> httpx.AsyncClient:
    """An AsyncClient that reaches `simulator` in-process (no socket)."""
    return new_client(f"http://{simulator.name}.sandbox", transport=SandboxTransport(simulator.app))


@pytest.fixture
async def vendor_http() -> AsyncIterator[Callable[..., VendorHttp]]:
    """Factory: VendorHttp for a simulator, closed after the test."""
    opened: list[httpx.AsyncClient] = []

    def make(simulator: Simulator, limits: Limits | None = None, **kwargs: Any) -> VendorHttp:
        client = sandbox_client(simulator)
        opened.append(client)
        return VendorHttp(client, limits or Limits(rate_limit=10_000), retry=FAST_RETRY, **kwargs)

    yield make
    for client in opened:
        await client.aclose()
