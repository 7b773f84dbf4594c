"""Does one apply converge while the vendor pushes back? Figures per provider.

    python benchmarks/backpressure.py                       # every registered provider
    python benchmarks/backpressure.py --changes 300 --providers yext,uipath

Two cases, each simulator in its own process over real HTTP:
- `429x50`: the vendor answers 50 changing calls in a row with 429 and
  `Retry-After: 0.5` (the retry budget must count time, not attempts);
- `half-rate`: the vendor's own limit is half of reconciler's `limits.rate_limit`
  (the client must slow down, AIMD, instead of spending its budget on 429s).
Prints per provider: actions, seconds for plan + apply (the 429s may fall on reads,
logins or changes), 429s the vendor sent, failed actions, and the actions a fresh
plan still finds (0 = converged in one apply).
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
from reconciler.providers import registry  # noqa: E402
from reconciler.sandbox.serve import environment_for  # noqa: E402

CASES: dict[str, tuple[dict[str, Any], float]] = {
    "429x50": ({"burst_429": 50, "retry_after": 0.5, "only_changes": True}, 200.0),
    "half-rate": ({"rate_limit": 100.0}, 200.0),
}
"""case → (vendor faults, reconciler's configured rate_limit)."""


def run(provider: str, case: str, changes: int) -> dict[str, Any]:
    faults, configured = CASES[case]
    scenario = builders()[provider](changes * 10, random.Random(7), 0.1)
    block = scenario.document["providers"][provider]
    block["limits"] = {**block.get("limits", {}), "rate_limit": configured,
                       "max_removals": changes * 10}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "desired"
        directory.mkdir()
        (directory / f"{provider}.yaml").write_text(yaml.safe_dump(scenario.document))
        desired = load_desired([str(directory)])
        served = SimulatorProcess(provider, scenario.seed, faults, Path(scratch))
        try:
            os.environ.update(environment_for(desired, {provider: served.url}))

            async def plan_apply_replan() -> tuple[float, int, int, int]:
                with Journal(Path(scratch) / "journal.db") as journal:
                    started = time.perf_counter()
                    async with Session(desired) as session:
                        plan = await session.plan(journal, max_removals=changes * 10)
                        report = await session.apply(plan, journal)
                        elapsed = time.perf_counter() - started
                    async with Session(desired) as session:
                        again = await session.plan(journal, max_removals=changes * 10)
                return elapsed, len(plan.actions), len(report.failed), len(again.actions)

            elapsed, actions, failed, left = asyncio.run(plan_apply_replan())
            log = served.requests()
        finally:
            served.stop()
    throttled = sum(1 for e in log if e["status"] == 429)
    return {"provider": provider, "case": case, "actions": actions, "elapsed": elapsed,
            "throttled": throttled, "failed": failed, "left": left}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--changes", type=int, default=300, help="about this many per provider")
    parser.add_argument("--providers", default=",".join(sorted(registry())))
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    print("| provider | case | actions | plan+apply s | 429s sent | failed | left after 1 apply |")
    print("|---|---|---|---|---|---|---|")
    for provider in [p for p in args.providers.split(",") if p]:
        for case in [c for c in args.cases.split(",") if c]:
            try:
                r = run(provider, case, args.changes)
            except Exception as error:  # a provider mid-refactor must not hide the others
                print(f"| {provider} | {case} | error: {type(error).__name__}: {error} |||||")
                continue
            print(f"| {r['provider']} | {r['case']} | {r['actions']} | {r['elapsed']:.1f} | "
                  f"{r['throttled']} | {r['failed']} | {r['left']} |", flush=True)


if __name__ == "__main__":
    main()
