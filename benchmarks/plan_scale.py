"""Plan N grants against simulators with injected latency; compare with the network floor.

    python benchmarks/plan_scale.py                 # 1k, 10k and 100k grants
    python benchmarks/plan_scale.py --grants 10000 --latency-ms 50

Grants are spread evenly over every provider that has a scenario in
benchmarks/scenarios/. Each simulator is served over real HTTP on loopback, in a
process of its own (benchmarks/served.py), with `latency_ms` injected per request;
the plan runs in a child process too (benchmarks/plan_probe.py), so its CPU time
and peak RSS are its own.

Columns: requests made vs minimal requests (Σ ⌈items / max page size⌉ per list
scope, from the scenario, not from the provider); the honest floor, per provider
max(longest chain of dependent requests x latency, minimal requests x latency ÷
that provider's concurrency), and the plan's as the max over providers (they read
in parallel); the old floor (all minimal requests ÷ the summed concurrency, which
no client can reach when a list is a chain of page tokens) for comparison; plan
wall time (load + read + plan) ÷ honest floor; the read against a bare asyncio +
httpx reader replaying exactly the same requests at the same concurrency
(benchmarks/bare_reader.py, its own process); client CPU per request during the
read; diff + order CPU vs a plain-dict diff of the same grants; peak RSS of the
planning process. Goals: wall ÷ floor ≤ 1.3, read ÷ bare ≤ 1.2, RSS < 300 MB.
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

from benchmarks.hostspeed import described, spin_seconds  # noqa: E402
from benchmarks.scenarios import Scenario, builders, replay_steps  # noqa: E402
from benchmarks.served import SimulatorProcess  # noqa: E402
from reconciler.model import DesiredState  # noqa: E402
from reconciler.pipeline import load_desired  # noqa: E402
from reconciler.sandbox.serve import environment_for  # noqa: E402


def build_all(grants: int, chosen: list[str], seed: int) -> list[Scenario]:
    makers = builders()
    share = max(1, grants // len(chosen))
    return [makers[name](share, random.Random(seed), 0.1) for name in chosen]


def _child(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs one benchmark script in its own process; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stderr[-3000:]}")
    if done.stderr.strip():
        print(done.stderr.rstrip(), file=sys.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _replay_plan(scenarios: list[Scenario], served: dict[str, SimulatorProcess],
                 logs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What the bare reader sends: each provider's logged requests, staged and chained."""
    steps = replay_steps()
    plan: dict[str, Any] = {}
    for scenario in scenarios:
        name = scenario.provider
        step = steps[name]
        requests = []
        for entry in logs[name]:
            stage, chain = step(entry["method"], entry["path"], entry["query"])
            requests.append({**entry, "stage": stage, "chain": chain})
        plan[name] = {"root": served[name].root, "concurrency": scenario.concurrency,
                      "requests": requests}
    return plan


def run_once(grants: int, latency_ms: float, chosen: list[str],
             tracemalloc: bool = False) -> dict[str, Any]:
    scenarios = build_all(grants, chosen, seed=grants)
    latency = latency_ms / 1000
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "desired"
        directory.mkdir()
        for scenario in scenarios:
            (directory / f"{scenario.provider}.yaml").write_text(
                yaml.safe_dump(scenario.document, sort_keys=False))
        desired: DesiredState = load_desired([str(directory)])
        served = {s.provider: SimulatorProcess(s.provider, s.seed, {"latency_ms": latency_ms},
                                               Path(scratch)) for s in scenarios}
        try:
            env = {**os.environ, **environment_for(desired, {n: p.url for n, p in served.items()})}
            del desired
            probe_args = [str(directory), *(["--tracemalloc"] if tracemalloc else [])]
            measured = _child("plan_probe.py", *probe_args, env=env)
            logs = {name: process.requests() for name, process in served.items()}
            replay_file = Path(scratch) / "replay.json"
            replay_file.write_text(json.dumps(_replay_plan(scenarios, served, logs)))
            bare = _child("bare_reader.py", str(replay_file))
        finally:
            for process in served.values():
                process.stop()
    made = sum(len(log) for log in logs.values())
    if bare["requests"] != made:
        raise SystemExit(f"the bare reader sent {bare['requests']} requests, the plan {made}")
    minimal = sum(s.minimal_requests for s in scenarios)
    floors = {s.provider: s.floor(latency) for s in scenarios}
    return {
        "grants": sum(s.grants for s in scenarios),
        "requests": made,
        "minimal": minimal,
        "old_floor": minimal * latency / sum(s.concurrency for s in scenarios),
        "floor": max(floors.values()),
        "floors": floors,
        "made": {name: len(log) for name, log in logs.items()},
        "bare_wall": bare["wall"],
        "bare_cpu": bare["cpu"],
        **measured,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| N | requests | minimal | ratio | old floor s | honest floor s | wall s | "
            "wall ÷ floor | read s | bare read s | read ÷ bare | CPU ms/request (bare) | "
            "diff+order ms | dict diff ms | ratio | peak RSS MB |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        ours = (r["diff_cpu"] + r["order_cpu"]) * 1000
        base = r["baseline_cpu"] * 1000
        per_request = r["read_cpu"] * 1000 / r["requests"]
        bare_per_request = r["bare_cpu"] * 1000 / r["requests"]
        lines.append(
            f"| {r['grants']:,} | {r['requests']:,} | {r['minimal']:,} | "
            f"{r['requests'] / r['minimal']:.2f} | {r['old_floor']:.2f} | {r['floor']:.2f} | "
            f"{r['wall']:.2f} | {r['wall'] / r['floor']:.2f} | {r['read']:.2f} | "
            f"{r['bare_wall']:.2f} | {r['read'] / r['bare_wall']:.2f} | "
            f"{per_request:.2f} ({bare_per_request:.2f}) | {ours:.0f} | {base:.0f} | "
            f"{ours / base if base else float('nan'):.2f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--providers", default=",".join(sorted(builders())))
    parser.add_argument("--json", action="store_true", help="Also print raw rows as JSON.")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="Trace the plan's allocations and print the largest (slower: "
                             "its wall and CPU figures are then not comparable).")
    args = parser.parse_args()
    chosen = [p for p in args.providers.split(",") if p]
    rows = []
    for grants in args.grants:
        before = spin_seconds()
        row = run_once(grants, args.latency_ms, chosen, args.tracemalloc)
        rows.append({**row, "host": described(before, spin_seconds())})
    print(f"providers: {', '.join(chosen)}; latency {args.latency_ms:g} ms per request")
    print(table(rows))
    for r in rows:
        floors = ", ".join(f"{name} {floor:.2f}s ({r['made'][name]:,} requests)"
                           for name, floor in sorted(r["floors"].items()))
        print(f"N={r['grants']:,}: load {r['load']:.2f}s, read {r['read']:.2f}s "
              f"({r['read_cpu']:.2f}s CPU in the planner), plan {r['plan']:.2f}s, "
              f"{r['changes']:,} changes, {r['actions']:,} actions; floors: {floors}; "
              f"{r['host']}")
        for line in r.get("allocations", []):
            print(f"    {line}")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
