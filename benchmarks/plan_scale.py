"""Plan N grants against simulators with injected latency; compare with the network floor.

    python benchmarks/plan_scale.py                 # 1k, 10k and 100k grants
    python benchmarks/plan_scale.py --grants 10000 --latency-ms 50

Grants are spread evenly over every provider that has a scenario in
benchmarks/scenarios/. Each simulator is served over real HTTP on loopback with
`latency_ms` injected per request; the plan runs in a child process
(benchmarks/plan_probe.py) so its peak RSS is measured alone.

Columns: requests made vs minimal requests (Σ ⌈items / max page size⌉ per list
scope, from the scenario, not from the provider), plan wall time vs the network
floor (minimal requests x latency / total configured concurrency), diff + order
CPU time vs a plain-dict diff of the same grants, peak RSS of the planning process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import Scenario, builders  # noqa: E402
from reconciler.model import DesiredState  # noqa: E402
from reconciler.pipeline import load_desired  # noqa: E402
from reconciler.sandbox.base import Faults  # noqa: E402
from reconciler.sandbox.registry import simulators  # noqa: E402
from reconciler.sandbox.serve import ServedSimulators, environment_for  # noqa: E402


def build_all(grants: int, chosen: list[str], seed: int) -> list[Scenario]:
    makers = builders()
    share = max(1, grants // len(chosen))
    return [makers[name](share, random.Random(seed), 0.1) for name in chosen]


def run_once(grants: int, latency_ms: float, chosen: list[str]) -> dict[str, Any]:
    scenarios = build_all(grants, chosen, seed=grants)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "desired"
        directory.mkdir()
        for scenario in scenarios:
            (directory / f"{scenario.provider}.yaml").write_text(
                yaml.safe_dump(scenario.document, sort_keys=False))
        desired: DesiredState = load_desired([str(directory)])
        running = {s.provider: simulators()[s.provider](seed=s.seed) for s in scenarios}
        for simulator in running.values():
            simulator.set_faults(Faults(latency_ms=latency_ms))
        with ServedSimulators(running) as served:
            env = {**os.environ, **environment_for(desired, served.urls)}
            probe = subprocess.run(
                [sys.executable, str(ROOT / "benchmarks" / "plan_probe.py"), str(directory)],
                env=env, capture_output=True, text=True, check=False, cwd=ROOT,
            )
        if probe.returncode != 0:
            raise SystemExit(f"plan failed:\n{probe.stderr[-3000:]}")
        measured = json.loads(probe.stdout)
    made = sum(len(sim.requests) for sim in running.values())
    minimal = sum(s.minimal_requests for s in scenarios)
    concurrency = sum(p.limits.concurrency for p in desired.providers.values())
    floor = minimal * latency_ms / 1000 / concurrency
    return {
        "grants": sum(s.grants for s in scenarios),
        "requests": made,
        "minimal": minimal,
        "floor": floor,
        **measured,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| N | requests | minimal | ratio | wall s | floor s | ratio | diff+order ms | "
            "dict diff ms | ratio | peak RSS MB |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        ours = (r["diff_cpu"] + r["order_cpu"]) * 1000
        base = r["baseline_cpu"] * 1000
        lines.append(
            f"| {r['grants']:,} | {r['requests']:,} | {r['minimal']:,} | "
            f"{r['requests'] / r['minimal']:.2f} | {r['wall']:.2f} | {r['floor']:.2f} | "
            f"{r['wall'] / r['floor']:.2f} | {ours:.0f} | {base:.0f} | "
            f"{ours / base if base else float('nan'):.2f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--providers", default=",".join(sorted(builders())))
    parser.add_argument("--json", action="store_true", help="Also print raw rows as JSON.")
    args = parser.parse_args()
    chosen = [p for p in args.providers.split(",") if p]
    rows = [run_once(n, args.latency_ms, chosen) for n in args.grants]
    print(f"providers: {', '.join(chosen)}; latency {args.latency_ms:g} ms per request")
    print(table(rows))
    for r in rows:
        print(f"N={r['grants']:,}: load {r['load']:.2f}s, read {r['read']:.2f}s "
              f"({r['read_cpu']:.2f}s CPU in the planner), "
              f"{r['changes']:,} changes, {r['actions']:,} actions")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
