"""Apply many changes against simulators that throttle; how close to the limit do we get?

    python benchmarks/apply_rate.py                   # 10k changes, vendor limit 500/s
    python benchmarks/apply_rate.py --changes 2000 --rate 100

Each simulator enforces the vendor's rate limit itself (a token bucket answering
429 with Retry-After beyond it); reconciler is configured with the same limit in
`limits.rate_limit`. Prints achieved changing calls per second ÷ the limit, the
429s the vendor sent, and failed actions. Target: ≥ 0.8 of the limit, 0 failures.
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

from benchmarks.scenarios import builders  # noqa: E402
from benchmarks.served import SimulatorProcess  # noqa: E402
from reconciler.journal import Journal  # noqa: E402
from reconciler.pipeline import Session, load_desired  # noqa: E402
from reconciler.sandbox.serve import environment_for  # noqa: E402

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def run(provider: str, changes: int, rate: float, latency_ms: float) -> dict[str, Any]:
    scenario = builders()[provider](changes, random.Random(7), 1.0)
    block = scenario.document["providers"][provider]
    block["limits"] = {**block.get("limits", {}), "rate_limit": rate, "max_removals": changes}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "desired"
        directory.mkdir()
        (directory / f"{provider}.yaml").write_text(yaml.safe_dump(scenario.document))
        desired = load_desired([str(directory)])
        throttled = {"rate_limit": rate, "latency_ms": latency_ms}
        served = SimulatorProcess(provider, scenario.seed, throttled, Path(scratch))
        try:
            os.environ.update(environment_for(desired, {provider: served.url}))

            async def plan_and_apply() -> tuple[float, int, int]:
                with Journal(Path(scratch) / "journal.db") as journal:
                    async with Session(desired) as session:
                        plan = await session.plan(journal, max_removals=changes)
                        await asyncio.sleep(1.0)  # let the vendor's bucket refill after reads
                        started = time.perf_counter()
                        report = await session.apply(plan, journal)
                        return time.perf_counter() - started, len(plan.actions), len(
                            report.failed)

            elapsed, actions, failed = asyncio.run(plan_and_apply())
            log = served.requests()
        finally:
            served.stop()
    changing = [e for e in log if e["method"] in CHANGING]
    done = [e for e in changing if isinstance(e["status"], int) and e["status"] < 400]
    throttled_count = sum(1 for e in changing if e["status"] == 429)
    achieved = len(done) / elapsed
    return {"provider": provider, "actions": actions, "elapsed": elapsed, "achieved": achieved,
            "limit": rate, "ratio": achieved / rate, "throttled": throttled_count,
            "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0, help="vendor limit, calls/s")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--providers", default=",".join(sorted(builders())))
    args = parser.parse_args()
    print("| provider | actions | seconds | calls/s | limit | ratio | 429s | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for provider in [p for p in args.providers.split(",") if p]:
        r = run(provider, args.changes, args.rate, args.latency_ms)
        print(f"| {r['provider']} | {r['actions']:,} | {r['elapsed']:.1f} | {r['achieved']:.0f} | "
              f"{r['limit']:.0f} | {r['ratio']:.2f} | {r['throttled']} | {r['failed']} |")


if __name__ == "__main__":
    main()
