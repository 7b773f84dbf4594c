"""Runs one `plan` in its own process and prints its measurements as JSON.

Kept apart from the simulators (each served by benchmarks/served.py in a process of
its own) so that CPU time and peak RSS are the planner's alone.

    python benchmarks/plan_probe.py DESIRED_DIR [--tracemalloc]

`--tracemalloc` adds the largest live allocations (by line) just after the plan
is built, and tracemalloc's own peak: where the memory goes, at some cost in speed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import resource
import sys
import time
import tracemalloc
from typing import Any

from reconciler.pipeline import Session, load_desired
from reconciler.planner import diff, order


def plain_dict_diff(desired: Any, current: Any) -> int:
    """The baseline: the same comparison with plain dicts of plain tuples."""
    want = {g.key: (g.quantity, g.expires, g.attrs) for g in desired.grants}
    have = {g.key: (g.quantity, g.expires, g.attrs) for g in current.grants}
    adds = [k for k in want if k not in have]
    removes = [k for k in have if k not in want]
    updates = [k for k, v in want.items() if k in have and have[k] != v]
    return len(adds) + len(removes) + len(updates)


def top_allocations(limit: int = 12) -> list[str]:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)])
    stats = snapshot.statistics("lineno")
    lines = [f"{stat.size / 2**20:7.1f} MB {stat.count:>9,} blocks  "
             f"{stat.traceback[0].filename.split('site-packages/')[-1]}:"
             f"{stat.traceback[0].lineno}" for stat in stats[:limit]]
    current, peak = tracemalloc.get_traced_memory()
    lines.append(f"traced now {current / 2**20:.0f} MB, traced peak {peak / 2**20:.0f} MB")
    return lines


async def measure(path: str) -> dict[str, Any]:
    """Times load, read and plan exactly as `reconciler plan` runs them (`Session.plan`:
    the config digest on a thread while the vendors are read); the diagnostic
    diff/order/baseline timings come after, outside the wall time. The read ends when
    the last provider's read does; its CPU is the event loop's thread alone."""
    started = time.perf_counter()
    desired = load_desired([path])
    loaded = time.perf_counter()
    peaks: dict[str, float] = {}
    _stage_peak(peaks, "load")
    marks: dict[str, float] = {}
    currents: dict[str, Any] = {}

    def read_done(name: str, state: Any, _seconds: float) -> None:
        currents[name] = state
        marks["read"] = time.perf_counter()
        marks["read_cpu"] = time.thread_time() - marks["cpu"]
        _stage_peak(peaks, "read")

    async with Session(desired, on_read=read_done) as session:
        marks["cpu"] = time.thread_time()
        plan = await session.plan(max_removals=10**9)
        finished = time.perf_counter()
        read, read_cpu = marks["read"], marks["read_cpu"]
        today = dt.date.today()
        _stage_peak(peaks, "plan")
        after_read: list[str] = []
        allocations = top_allocations() if tracemalloc.is_tracing() else []
        actions = len(plan.actions)
        del plan
        gc.collect()  # each timing below starts without the plan's garbage to collect
        cpu = time.process_time()
        diffs = {n: diff(desired.providers[n], currents[n], today=today) for n in currents}
        diff_cpu = time.process_time() - cpu
        made = [a for n, d in diffs.items() for a in session.providers[n].actions(
            d.changes, currents[n])]
        gc.collect()
        cpu = time.process_time()
        ordered = order(made, currents)
        order_cpu = time.process_time() - cpu
        gc.collect()
        cpu = time.process_time()
        baseline_changes = sum(plain_dict_diff(desired.providers[n], currents[n])
                               for n in currents)
        baseline_cpu = time.process_time() - cpu
    return {
        "allocations": allocations,
        "allocations_after_read": after_read,
        "plan": finished - read,
        "wall": finished - started,
        "load": loaded - started,
        "read": read - loaded,
        "read_cpu": read_cpu,
        "diff_cpu": diff_cpu,
        "order_cpu": order_cpu,
        "baseline_cpu": baseline_cpu,
        "changes": sum(len(d.changes) for d in diffs.values()),
        "baseline_changes": baseline_changes,
        "actions": actions,
        "ordered": len(ordered),
        "peak_rss_mb": _peak_rss_mb(),
        "peak_rss_by_stage": peaks,
    }


def _stage_peak(peaks: dict[str, float], stage: str) -> None:
    """Records the peak RSS so far and, when tracing, the traced peak of this stage."""
    peaks[stage] = _peak_rss_mb()
    if tracemalloc.is_tracing():
        peaks[f"{stage} traced"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.reset_peak()


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM), in MB.

    Not `getrusage().ru_maxrss`: Linux carries the parent's peak across fork and
    exec into it, so a probe started by a benchmark holding 100k grants in memory
    would report the benchmark's RSS, not its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    if "--tracemalloc" in sys.argv[2:]:
        tracemalloc.start()
    print(json.dumps(asyncio.run(measure(sys.argv[1]))))
