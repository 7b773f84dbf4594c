"""How fast this machine's CPU is right now: a fixed pure-Python loop, timed.

The 2-core machines these benchmarks run on are shared virtual machines whose speed
drifts: the same loop's time varied by half within one minute on the project's own.
A ratio against a network floor moves with it (the load and the client's CPU are
on the critical path, the floor is not), so each benchmark prints this beside its
figures, before and after, and runs can be compared on like hosts.
"""

from __future__ import annotations

import time

LOOPS = 5_000_000


def spin_seconds(loops: int = LOOPS) -> float:
    """CPU seconds for `loops` integer additions in the interpreter (0.17 to 0.26 s on
    the project's machine)."""
    started = time.process_time()
    total = 0
    for step in range(loops):
        total += step
    return time.process_time() - started


def described(before: float, after: float) -> str:
    return (f"host speed: {LOOPS / 1e6:g}M-step loop {before:.2f} s before, "
            f"{after:.2f} s after (lower is faster)")
