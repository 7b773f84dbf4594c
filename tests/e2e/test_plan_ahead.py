"""Each provider is planned as soon as its own read ends, not after the slowest vendor.

`Session.plan` diffs, checks and makes the actions of a provider on a worker thread
while the other vendors are still being read; `build_plan` then only assembles. The
plan must be the one built after every read, and an error found ahead must surface
exactly where it always did.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from reconciler.errors import ConfigError, Problem
from reconciler.model import Location
from reconciler.pipeline import Session, load_desired
from reconciler.planner import build_plan
from reconciler.render.json import render_json
from reconciler.sandbox.runtime import InProcessSandbox, SandboxConnector
from reconciler.targeting import Target, narrow_current
from tests.e2e.conftest import EXAMPLES, copy_example

GUARD = 30.0
"""Seconds before a test that would otherwise hang fails instead."""
TODAY = dt.date(2026, 12, 4)


async def test_a_provider_is_planned_while_a_slower_vendor_is_still_read(workspace):
    desired = load_desired([str(copy_example(workspace, "yext.yaml", "commvault.yaml"))])
    connector = SandboxConnector(InProcessSandbox(workspace / "sandbox"))
    async with Session(desired, connector=connector) as session:
        loop = asyncio.get_running_loop()
        yext_checked = asyncio.Event()
        commvault = session.providers["commvault"]
        yext = session.providers["yext"]
        read_commvault, check_yext = commvault.read, yext.check
        checked_during_read: list[bool] = []

        async def slow_read(provider_desired: Any) -> Any:
            # Commvault's answer waits until Yext has been checked: planned ahead.
            await asyncio.wait_for(yext_checked.wait(), GUARD)
            return await read_commvault(provider_desired)

        def check(*args: Any) -> list[Problem]:
            checked_during_read.append(not commvault_read.done())
            loop.call_soon_threadsafe(yext_checked.set)
            return check_yext(*args)

        commvault_read = loop.create_future()
        commvault.read = slow_read  # type: ignore[method-assign]
        yext.check = check  # type: ignore[method-assign]
        states: dict[str, Any] = {}
        session.on_read = lambda name, state, _: (
            states.__setitem__(name, state),
            name == "commvault" and commvault_read.set_result(None))
        plan = await session.plan(today=TODAY)
        assert checked_during_read[0] is True, "Yext was planned only after every read"
        again = build_plan(session.desired, states, today=TODAY,
                           makers={n: p.actions for n, p in session.providers.items()},
                           checkers={n: p.check for n, p in session.providers.items()})
    assert plan.has_changes
    assert render_json(plan.model_copy(update={"sandbox": False, "config_paths": ()})) == \
        render_json(again.model_copy(update={"sandbox": False, "config_paths": ()}))


async def test_an_error_making_actions_ahead_waits_for_every_providers_checks(workspace):
    """Yext's actions cannot be made, and Commvault's check finds a problem: the plan
    reports the problem (as it did before providers were planned ahead), not Yext's
    error, which would only matter once every check had passed."""
    desired = load_desired([str(copy_example(workspace, "yext.yaml", "commvault.yaml"))])
    connector = SandboxConnector(InProcessSandbox(workspace / "sandbox"))
    async with Session(desired, connector=connector) as session:
        yext, commvault = session.providers["yext"], session.providers["commvault"]

        def unmakeable(*_: Any) -> list[Any]:
            raise RuntimeError("yext actions cannot be made")

        def refusing(*_: Any) -> list[Problem]:
            return [Problem(Location(file="commvault.yaml", line=3), "refused by the check")]

        yext.actions = unmakeable  # type: ignore[method-assign]
        commvault.check = refusing  # type: ignore[method-assign]
        with pytest.raises(ConfigError, match="refused by the check"):
            await session.plan()
        commvault.check = lambda *_: []  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="yext actions cannot be made"):
            await session.plan()


def _without_run_fields(plan: Any) -> str:
    return render_json(plan.model_copy(update={"sandbox": False, "config_paths": (),
                                               "targets": (), "errors": ()}))


@pytest.mark.parametrize("targets", [(), (Target("yext", "listings-basic"),)],
                         ids=["everything", "one-pool"])
async def test_every_provider_planned_ahead_gives_the_plan_built_after_every_read(
        workspace, targets):
    """All five example providers, each planned as its read ended: the same plan, byte
    for byte, as `build_plan` working every provider out after the reads (also with a
    `--target` narrowing one provider to one pool)."""
    desired = load_desired([str(EXAMPLES)])
    connector = SandboxConnector(InProcessSandbox(workspace / "sandbox"))
    async with Session(desired, connector=connector, targets=targets) as session:
        states: dict[str, Any] = {}
        session.on_read = lambda name, state, _: states.__setitem__(name, state)
        planned_ahead: list[str] = []
        plan_ahead = session._plan_ahead

        def recording(name: str, *args: Any) -> Any:
            part = plan_ahead(name, *args)
            planned_ahead.append(name)
            return part

        session._plan_ahead = recording  # type: ignore[method-assign]
        plan = await session.plan(today=TODAY)
        currents = {n: narrow_current(s, session.target_pools.get(n)) for n, s in states.items()}
        again = build_plan(session.desired, currents, today=TODAY,
                           makers={n: p.actions for n, p in session.providers.items()},
                           checkers={n: p.check for n, p in session.providers.items()})
    assert sorted(planned_ahead) == sorted(session.providers)
    assert plan.has_changes
    assert _without_run_fields(plan) == _without_run_fields(again)
