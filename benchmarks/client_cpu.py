"""Client CPU per request: httpx, httpx over our transport, reconciler, aiohttp, one run.

    python benchmarks/client_cpu.py                       # 16 connections, 50 ms latency
    python benchmarks/client_cpu.py --connections 32 --requests 3000 --rounds 5

One simulator (Yext, a `GET` of its license packs: a small JSON page) is served in a
process of its own with `--latency-ms` injected per request, so this process's CPU
time (`time.process_time`) is the clients' alone. Every client keeps `--connections`
requests in flight on a pool of that size. The clients take turns, round after round
(interleaved A/B: a load spike on a shared machine hits all of them alike), and the
table gives the median and the best round per client. Target: reconciler's client
(`VendorHttp` on the default transport) ≤ 0.8 ms of CPU per request at 16 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.hostspeed import described, spin_seconds  # noqa: E402
from benchmarks.served import SimulatorProcess  # noqa: E402
from reconciler.http import VendorHttp, new_client  # noqa: E402
from reconciler.model import Call, Limits  # noqa: E402
from reconciler.sandbox.yext import YextSimulator  # noqa: E402
from reconciler.transport import TRANSPORT_ENV, AiohttpTransport  # noqa: E402

QUERY = {"api_key": "sandbox-yext-api-key", "v": "20240101"}
PATH = "/v2/accounts/me/license-packs"

Fetch = Callable[[], Awaitable[None]]
Client = Callable[[str, int], "Opened"]


class Opened:
    """One client under test: `fetch` sends one GET and reads the body; `close` ends it."""

    def __init__(self, fetch: Fetch, close: Callable[[], Awaitable[None]]) -> None:
        self.fetch = fetch
        self.close = close


def _httpx(transport: httpx.AsyncBaseTransport | None) -> Client:
    def make(root: str, connections: int) -> Opened:
        pool = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        client = httpx.AsyncClient(base_url=root, transport=transport, limits=pool, timeout=60)

        async def fetch() -> None:
            response = await client.get(PATH, params=QUERY)
            assert response.status_code == 200, response.text

        return Opened(fetch, client.aclose)
    return make


def _reconciler(transport: str) -> Client:
    def make(root: str, connections: int) -> Opened:
        os.environ[TRANSPORT_ENV] = transport
        client = new_client(root, None, 60.0, connections)
        http = VendorHttp(client, Limits(rate_limit=1_000_000, concurrency=connections))
        call = Call.to("GET", *PATH.strip("/").split("/"))

        async def fetch() -> None:
            response = await http.send(call, repeatable=True, query=QUERY)
            assert response.status_code == 200, response.text

        return Opened(fetch, client.aclose)
    return make


def _aiohttp(root: str, connections: int) -> Opened:
    session: list[aiohttp.ClientSession] = []

    async def fetch() -> None:
        if not session:
            session.append(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=connections)))
        async with session[0].get(root + PATH, params=QUERY) as response:
            await response.read()
            assert response.status == 200

    async def close() -> None:
        if session:
            await session[0].close()

    return Opened(fetch, close)


CLIENTS: dict[str, Client] = {
    "httpx (httpcore pool)": _httpx(None),
    "httpx over our aiohttp transport": lambda root, n: _httpx(AiohttpTransport(n))(root, n),
    "reconciler VendorHttp, httpx transport": _reconciler("httpx"),
    "reconciler VendorHttp, aiohttp transport (default)": _reconciler("aiohttp"),
    "aiohttp (bare)": _aiohttp,
}


async def one_round(make: Client, root: str, connections: int, requests: int) -> tuple[float,
                                                                                      float]:
    """CPU seconds and wall seconds for `requests` GETs with `connections` in flight."""
    opened = make(root, connections)
    for _ in range(connections):  # warm the pool outside the measurement
        await opened.fetch()
    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            await opened.fetch()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await opened.close()
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=1600, help="per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {name: [] for name in CLIENTS}
    rate: dict[str, list[float]] = {name: [] for name in CLIENTS}
    with tempfile.TemporaryDirectory() as scratch:
        served = SimulatorProcess("yext", YextSimulator.default_seed(),
                                  {"latency_ms": args.latency_ms}, Path(scratch))
        before = spin_seconds()
        try:
            for _ in range(args.rounds):
                for name, make in CLIENTS.items():
                    spent, wall = asyncio.run(one_round(make, served.root, args.connections,
                                                        args.requests))
                    cpu[name].append(spent * 1000 / args.requests)
                    rate[name].append(args.requests / wall)
        finally:
            served.stop()
    print(f"{args.requests:,} GETs per client per round, {args.rounds} rounds interleaved, "
          f"{args.connections} connections, {args.latency_ms:g} ms server latency, "
          f"{os.cpu_count()} CPUs; the simulator in its own process; "
          f"{described(before, spin_seconds())}")
    print("| client | CPU ms/request (median) | best round | requests/s (median) |")
    print("|---|---|---|---|")
    for name in CLIENTS:
        print(f"| {name} | {statistics.median(cpu[name]):.2f} | {min(cpu[name]):.2f} | "
              f"{statistics.median(rate[name]):.0f} |")


if __name__ == "__main__":
    main()
