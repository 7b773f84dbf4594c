"""What one request costs beyond the injected latency, on this machine, for the leanest
client and for ours: the part of `plan_scale.py`'s wall that no client change removes.

    python benchmarks/round_trip.py                 # 2,000 GETs at 16 connections, 50 ms
    python benchmarks/round_trip.py --requests 4000 --connections 32 --rounds 3

The honest floor of `plan_scale.py` counts only the injected latency (requests x latency
÷ concurrency). Here the Commvault simulator, in its own process with `latency_ms`
injected, answers `GET /Client/{id}/License` for N clients, read at `--connections` at a
time by bare aiohttp (its own session, nothing parsed) and by `VendorHttp.each` on the
default transport (what a provider's per-client read uses). Prints each client's time
per request cycle (wall x connections ÷ requests) and wall ÷ floor, rounds interleaved.
A bare client above 1.0 is the simulator's and the loopback's own time per request,
which the floor leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import builders  # noqa: E402
from benchmarks.served import SimulatorProcess  # noqa: E402
from reconciler.http import VendorHttp, new_client  # noqa: E402
from reconciler.model import Call, Limits  # noqa: E402

PASSWORD = b"sandbox-commvault-password"

Reader = Callable[[str, str, list[int], int], Coroutine[Any, Any, None]]


async def bare_aiohttp(url: str, token: str, ids: list[int], connections: int) -> None:
    headers = {"Authtoken": token, "Accept": "application/json"}
    pending = list(ids)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:

        async def worker() -> None:
            while pending:
                client_id = pending.pop()
                async with s.get(f"{url}/Client/{client_id}/License", headers=headers) as r:
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(connections)))


async def vendor_http(url: str, token: str, ids: list[int], connections: int) -> None:
    client = new_client(url, None, 30, connections)
    http = VendorHttp(client, Limits(rate_limit=100_000, concurrency=connections))
    headers = {"Authtoken": token, "Accept": "application/json"}

    async def one(client_id: int) -> None:
        response = await http.send(Call.to("GET", "Client", client_id, "License"),
                                   repeatable=True, headers=headers)
        response.json()

    try:
        await http.each(one, ids)
    finally:
        await client.aclose()


READERS: dict[str, Reader] = {"aiohttp (bare)": bare_aiohttp,
                              "reconciler VendorHttp.each (default transport)": vendor_http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    scenario = builders()["commvault"](args.requests, random.Random(7), 0.1)
    ids = [int(c["id"]) for c in scenario.seed["clients"]][:args.requests]
    floor = len(ids) * args.latency_ms / 1000 / args.connections
    cycles: dict[str, list[float]] = {name: [] for name in READERS}
    with tempfile.TemporaryDirectory() as scratch:
        served = SimulatorProcess("commvault", scenario.seed, {"latency_ms": args.latency_ms},
                                  Path(scratch))
        try:
            login = {"username": "admin", "password": base64.b64encode(PASSWORD).decode()}
            token = str(httpx.post(f"{served.url}/Login", json=login).json()["token"])
            for _ in range(args.rounds):
                for name, reader in READERS.items():
                    started = time.perf_counter()
                    asyncio.run(reader(served.url, token, ids, args.connections))
                    cycles[name].append(time.perf_counter() - started)
        finally:
            served.stop()
    print(f"{len(ids):,} GETs at {args.connections} connections, {args.latency_ms:g} ms "
          f"injected, {args.rounds} rounds interleaved, {os.cpu_count()} CPUs; the simulator "
          f"in its own process; floor {floor:.2f} s")
    print("| client | wall s (median) | ms per request cycle | wall ÷ floor |")
    print("|---|---|---|---|")
    for name, walls in cycles.items():
        wall = statistics.median(walls)
        print(f"| {name} | {wall:.2f} | {wall * args.connections / len(ids) * 1000:.1f} | "
              f"{wall / floor:.2f} |")


if __name__ == "__main__":
    main()
