"""Runs one `plan` in its own process and prints its measurements as JSON.

Kept apart from the simulators (served by plan_scale.py in another process) so
that peak RSS is the planner's alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import resource
import sys
import time
from typing import Any

from reconciler.pipeline import Session, load_desired
from reconciler.planner import build_plan, diff, order


def plain_dict_diff(desired: Any, current: Any) -> int:
    """The baseline: the same comparison with plain dicts of plain tuples."""
    want = {g.key: (g.quantity, g.expires, g.attrs) for g in desired.grants}
    have = {g.key: (g.quantity, g.expires, g.attrs) for g in current.grants}
    adds = [k for k in want if k not in have]
    removes = [k for k in have if k not in want]
    updates = [k for k, v in want.items() if k in have and have[k] != v]
    return len(adds) + len(removes) + len(updates)


async def measure(path: str) -> dict[str, Any]:
    started = time.perf_counter()
    desired = load_desired([path])
    loaded = time.perf_counter()
    async with Session(desired) as session:
        read_cpu = time.process_time()
        currents = await session.read()
        read_cpu = time.process_time() - read_cpu
        read = time.perf_counter()
        today = dt.date.today()
        cpu = time.process_time()
        diffs = {n: diff(desired.providers[n], currents[n], today=today) for n in currents}
        diff_cpu = time.process_time() - cpu
        actions = [a for n, d in diffs.items() for a in session.providers[n].actions(
            d.changes, currents[n])]
        cpu = time.process_time()
        ordered = order(actions, currents)
        order_cpu = time.process_time() - cpu
        cpu = time.process_time()
        baseline_changes = sum(plain_dict_diff(desired.providers[n], currents[n])
                               for n in currents)
        baseline_cpu = time.process_time() - cpu
        plan = build_plan(
            desired, currents,
            makers={n: p.actions for n, p in session.providers.items()},
            checkers={n: p.check for n, p in session.providers.items()},
            today=today, max_removals=10**9,
        )
        finished = time.perf_counter()
    return {
        "wall": finished - started,
        "load": loaded - started,
        "read": read - loaded,
        "read_cpu": read_cpu,
        "diff_cpu": diff_cpu,
        "order_cpu": order_cpu,
        "baseline_cpu": baseline_cpu,
        "changes": sum(len(d.changes) for d in diffs.values()),
        "baseline_changes": baseline_changes,
        "actions": len(plan.actions),
        "ordered": len(ordered),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(sys.argv[1]))))
