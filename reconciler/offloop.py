"""CPU-heavy steps of a plan on a worker thread, so the event loop stays responsive.

A plan reads every vendor at once on one event loop. Turning tens of thousands of
rows into a `CurrentState`, or diffing and checking one provider, is seconds of CPU;
on the loop it stalls every other provider's calls in flight until it ends (each
response waits for the loop), which is what a multi-vendor plan used to lose beyond
the network. On a thread the loop still gets the interpreter within a switch
interval each time a response arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

Built = TypeVar("Built")


async def off_loop(build: Callable[..., Built], *args: Any) -> Built:
    """`build(*args)` on a worker thread. `build` must only use its arguments and
    immutable state: no HTTP, nothing awaited, nothing the loop mutates meanwhile."""
    return await asyncio.to_thread(build, *args)
