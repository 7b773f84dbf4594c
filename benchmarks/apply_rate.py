"""Apply many changes against simulators that throttle; how close to the limit do we get?

    python benchmarks/apply_rate.py                   # 10k changes, vendor limit 500/s
    python benchmarks/apply_rate.py --changes 2000 --rate 100
    python benchmarks/apply_rate.py --concurrency 16 32 64 --transports aiohttp httpx

Each simulator enforces the vendor's rate limit itself (a token bucket answering
429 with Retry-After beyond it); reconciler is configured with the same limit in
`limits.rate_limit`. Prints achieved changing calls per second ÷ the limit, the
429s the vendor sent, failed actions and the client's CPU per change (this process:
the simulator runs in its own). Target: ≥ 0.8 of the limit, 0 failures, and no lower
at concurrency 32 than at 16. Every provider runs at each `--concurrency`
(`limits.concurrency`) on each of `--transports` (`RECONCILER_HTTP_TRANSPORT`), the
runs of one provider back to back (interleaved A/B: a load spike on a shared machine
hits neighbours alike).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.hostspeed import described, spin_seconds  # noqa: E402
from benchmarks.scenarios import builders  # noqa: E402
from benchmarks.served import SimulatorProcess  # noqa: E402
from reconciler.journal import Journal  # noqa: E402
from reconciler.pipeline import Session, load_desired  # noqa: E402
from reconciler.sandbox.serve import environment_for  # noqa: E402
from reconciler.transport import DEFAULT_TRANSPORT, TRANSPORT_ENV, TRANSPORTS  # noqa: E402

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def run(provider: str, changes: int, rate: float, latency_ms: float, concurrency: int,
        transport: str) -> dict[str, Any]:
    os.environ[TRANSPORT_ENV] = transport
    scenario = builders()[provider](changes, random.Random(7), 1.0)
    block = scenario.document["providers"][provider]
    block["limits"] = {**block.get("limits", {}), "rate_limit": rate, "max_removals": changes,
                       "concurrency": concurrency}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "desired"
        directory.mkdir()
        (directory / f"{provider}.yaml").write_text(yaml.safe_dump(scenario.document))
        desired = load_desired([str(directory)])
        throttled = {"rate_limit": rate, "latency_ms": latency_ms}
        served = SimulatorProcess(provider, scenario.seed, throttled, Path(scratch))
        try:
            os.environ.update(environment_for(desired, {provider: served.url}))

            async def plan_and_apply() -> tuple[float, float, int, int]:
                with Journal(Path(scratch) / "journal.db") as journal:
                    async with Session(desired) as session:
                        plan = await session.plan(journal, max_removals=changes)
                        await asyncio.sleep(1.0)  # let the vendor's bucket refill after reads
                        started, cpu = time.perf_counter(), time.process_time()
                        report = await session.apply(plan, journal)
                        return (time.perf_counter() - started, time.process_time() - cpu,
                                len(plan.actions), len(report.failed))

            elapsed, cpu, actions, failed = asyncio.run(plan_and_apply())
            log = served.requests()
        finally:
            served.stop()
    changing = [e for e in log if e["method"] in CHANGING]
    done = [e for e in changing if isinstance(e["status"], int) and e["status"] < 400]
    throttled_count = sum(1 for e in changing if e["status"] == 429)
    achieved = len(done) / elapsed
    return {"provider": provider, "actions": actions, "elapsed": elapsed, "achieved": achieved,
            "limit": rate, "ratio": achieved / rate, "throttled": throttled_count,
            "failed": failed, "concurrency": concurrency, "transport": transport,
            "cpu_ms": cpu * 1000 / max(actions, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0, help="vendor limit, calls/s")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--providers", default=",".join(sorted(builders())))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 32],
                        help="limits.concurrency values to compare")
    parser.add_argument("--transports", nargs="+", default=[DEFAULT_TRANSPORT],
                        choices=TRANSPORTS, help="network transports to compare")
    args = parser.parse_args()
    print(f"{args.changes:,} changes per provider, vendor limit {args.rate:g}/s, "
          f"{args.latency_ms:g} ms latency per request, {os.cpu_count()} CPUs; each simulator "
          f"in its own process")
    print("| provider | transport | concurrency | actions | seconds | calls/s | limit | ratio "
          "| 429s | failed | client CPU ms/change |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    before = spin_seconds()
    for provider in [p for p in args.providers.split(",") if p]:
        for concurrency in args.concurrency:
            for transport in args.transports:
                r = run(provider, args.changes, args.rate, args.latency_ms, concurrency,
                        transport)
                # A provider that batches (ADManager: 2 calls for 10,000 changes) has no
                # calls-per-second to compare with the limit.
                batched = r["actions"] < args.changes // 10
                calls = "—" if batched else f"{r['achieved']:.0f}"
                ratio = "n/a" if batched else f"{r['ratio']:.2f}"
                print(f"| {r['provider']} | {transport} | {concurrency} | {r['actions']:,} | "
                      f"{r['elapsed']:.1f} | {calls} | {r['limit']:.0f} | {ratio} | "
                      f"{r['throttled']} | {r['failed']} | {r['cpu_ms']:.2f} |", flush=True)
    print(described(before, spin_seconds()))

if __name__ == "__main__":
    main()
