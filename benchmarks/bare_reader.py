"""The peer baseline: bare asyncio + httpx sending exactly the requests a plan's read sent.

    python benchmarks/bare_reader.py REQUESTS.json      # written by plan_scale.py

REQUESTS.json maps each provider to `{"root", "concurrency", "requests": [...]}`,
every request as the simulator logged it (method, raw path, query, headers, body)
with its `stage` and `chain` (from the scenario's `replay_step`). Providers run
concurrently, each on one AsyncClient whose pool holds `concurrency` connections
and under a semaphore of the same size; a stage starts when the one before has
finished; requests of one chain go one after another, as a token-paged list must.
Each body is read and nothing else is done with it. Prints JSON: wall seconds,
CPU seconds and the number of requests.

Runs in its own process, like the plan it is compared with, so neither pays for
the other's CPU or memory.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

SKIPPED_HEADERS = {"host", "content-length", "connection", "accept-encoding", "user-agent"}


def _content(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


async def replay(root: str, concurrency: int, requests: list[dict[str, Any]]) -> int:
    """Sends one provider's requests stage by stage; returns how many were sent."""
    stages: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for entry in requests:
        stages[entry["stage"]][entry["chain"]].append(entry)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    slots = asyncio.Semaphore(concurrency)
    sent = 0
    async with httpx.AsyncClient(base_url=root, limits=limits, timeout=60) as client:

        async def chain(entries: list[dict[str, Any]]) -> None:
            nonlocal sent
            for entry in entries:
                headers = {k: v for k, v in entry["headers"].items()
                           if k not in SKIPPED_HEADERS}
                url = entry["raw_path"] + (f"?{entry['query']}" if entry["query"] else "")
                async with slots:
                    response = await client.request(entry["method"], url, headers=headers,
                                                    content=_content(entry["body"]))
                if response.status_code >= 400:
                    raise SystemExit(f"bare reader: {entry['method']} {url} answered "
                                     f"{response.status_code}")
                sent += 1

        for stage in sorted(stages):
            await asyncio.gather(*(chain(entries) for entries in stages[stage].values()))
    return sent


async def main(path: str) -> dict[str, Any]:
    plan = json.loads(Path(path).read_text())
    started, cpu = time.perf_counter(), time.process_time()
    counts = await asyncio.gather(*(
        replay(p["root"], p["concurrency"], p["requests"]) for p in plan.values()))
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "requests": sum(counts)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
