"""Executes a plan: providers concurrently, each phase by phase, every call journaled.

Guarantees:
- the journal row announcing a call is on disk before the call is sent, and a
  second row records its outcome, so a crash leaves a visible "in doubt" entry.
  The announcing row is written by the HTTP layer's hook (`http.announcing`) once
  the call holds a connection slot and a rate-limit token, so after a crash at
  most `concurrency` actions per provider are in doubt, not every action that was
  merely queued. An action that fails before its call leaves gets no "started"
  row, only its "finished" one;
- a failed action does not stop independent ones; its dependants are skipped;
- a journal or lock failure (the row announcing or recording a call cannot be made
  durable) stops the whole apply, every provider: no further call is sent, calls
  already in flight run to their end and are journaled (finished, or in doubt when
  even that write fails), and `ApplyStoppedError` reports it once all have settled;
- a call whose response was lost is not re-sent unless its provider marked it
  repeatable (the HTTP layer retries those); otherwise the provider is asked
  whether the effect is visible (`confirm`), and when it cannot tell, the entry
  stays in doubt for the next plan to resolve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from reconciler.errors import ReconcilerError, VendorError
from reconciler.http import announcing, not_announcing
from reconciler.journal import GroupCommit, Journal
from reconciler.model import Action, Outcome, OutcomeStatus, Plan
from reconciler.providers.base import Provider
from reconciler.secrets import REDACTOR

MAX_IN_FLIGHT = 64

Listener = Callable[[Action, Outcome], None]


@dataclass
class ApplyReport:
    results: list[tuple[Action, Outcome]] = field(default_factory=list)

    @property
    def failed(self) -> list[tuple[Action, Outcome]]:
        return [(a, o) for a, o in self.results if not o.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, status: OutcomeStatus) -> int:
        return sum(1 for _, outcome in self.results if outcome.status is status)


class ApplyStoppedError(ReconcilerError):
    """The journal (or the lock guarding it) failed: the apply stopped, for every provider.

    Raised once nothing is in flight any more; `report` holds every action's outcome
    (those never sent are SKIPPED).
    """

    def __init__(self, provider: str, action_id: str, cause: BaseException,
                 report: ApplyReport) -> None:
        self.report = report
        done = sum(1 for _, outcome in report.results if outcome.ok)
        unsent = report.count(OutcomeStatus.SKIPPED)
        super().__init__(
            f"the journal failed while applying {action_id} ({provider}): "
            f"{REDACTOR.text(str(cause)) or type(cause).__name__}; the apply stopped for "
            f"every provider ({done} actions done, {unsent} not sent; calls that were in "
            "flight are journaled, or in doubt for the next plan to check)"
        )


class _Stop:
    """The first fatal error of an apply; once set, no action sends anything more."""

    def __init__(self) -> None:
        self.cause: BaseException | None = None
        self.provider = ""
        self.action_id = ""

    def fail(self, action: Action, cause: BaseException) -> None:
        if self.cause is None:
            self.cause, self.provider, self.action_id = cause, action.provider, action.id

    def check(self) -> None:
        """Raised from the announcement hook: the call has not left, and will not."""
        if self.cause is not None:
            raise _Stopped()


class _Stopped(Exception):
    """An action reached its send after the apply stopped: it is not sent."""


async def apply_plan(
    plan: Plan,
    providers: Mapping[str, Provider],
    journal: Journal,
    listener: Listener | None = None,
) -> ApplyReport:
    """Runs the plan; raises ApplyStoppedError (after everything in flight has settled)
    when the journal fails."""
    report = ApplyReport()
    not_ok: set[str] = set()
    """Actions whose outcome is not ok: what a dependent action is skipped for. Looked
    up in a set, not by asking each dependency's outcome: an organization's shrink in
    UiPath waits for every shrink below it, and 5,000 UiPath changes asked `ok` 1.25
    million times (a tenth of the apply's CPU)."""
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    writer = GroupCommit(journal)
    stop = _Stop()

    async def run(action: Action) -> None:
        blocked = [d for d in action.depends_on if d in not_ok] if not_ok else []
        if blocked:
            outcome = Outcome(
                status=OutcomeStatus.SKIPPED,
                message=f"skipped: depends on failed {', '.join(blocked)}",
            )
        elif stop.cause is not None:
            outcome = _not_sent(stop)
        else:
            async with in_flight:
                try:
                    outcome = await execute_one(action, providers[action.provider], writer,
                                                stop.check)
                except _Stopped:
                    outcome = _not_sent(stop)
                except Exception as error:  # the journal or its lock: fatal for the apply
                    stop.fail(action, error)
                    outcome = Outcome(status=OutcomeStatus.FAILED, message=(
                        f"journal failed ({REDACTOR.text(str(error))}); "
                        "the apply stopped"))
        if not outcome.ok:
            not_ok.add(action.id)
        report.results.append((action, outcome))
        if listener is not None:
            listener(action, outcome)

    by_provider: dict[str, list[Action]] = {}
    for action in plan.actions:
        by_provider.setdefault(action.provider, []).append(action)

    async def one_provider(actions: list[Action]) -> None:
        # Phases order one vendor's calls (frees before takes, a hierarchy top-down);
        # no dependency crosses vendors, so a slow vendor never holds up another.
        for _, phase_actions in groupby(sorted(actions, key=lambda a: a.phase),
                                        key=lambda a: a.phase):
            await _run_respecting_dependencies(list(phase_actions), run)

    # A task group, not a bare gather: no provider's task outlives the apply. Fatal
    # errors are caught in `run` rather than left to cancel siblings, because
    # cancelling a call in flight would drop its result instead of journaling it.
    async with asyncio.TaskGroup() as group:
        for actions in by_provider.values():
            group.create_task(one_provider(actions))
    order = {action.id: index for index, action in enumerate(plan.actions)}
    report.results.sort(key=lambda pair: order[pair[0].id])
    if stop.cause is not None:
        raise ApplyStoppedError(stop.provider, stop.action_id, stop.cause, report)
    return report


def _not_sent(stop: _Stop) -> Outcome:
    return Outcome(status=OutcomeStatus.SKIPPED,
                   message=f"not sent: the apply stopped (journal failed for {stop.provider})")


async def _run_respecting_dependencies(
    batch: Sequence[Action], run: Callable[[Action], object]
) -> None:
    """Runs one phase concurrently; an action waits for same-phase actions it depends on."""
    tasks: dict[str, asyncio.Task[None]] = {}

    async def start(action: Action) -> None:
        for dep in action.depends_on:
            if dep in tasks:
                await asyncio.shield(tasks[dep])
        result = run(action)
        assert asyncio.iscoroutine(result)
        await result

    async with asyncio.TaskGroup() as group:
        for action in batch:
            tasks[action.id] = group.create_task(start(action))


async def execute_one(action: Action, provider: Provider, journal: GroupCommit,
                      may_send: Callable[[], None] = lambda: None) -> Outcome:
    """Journal, send, journal. Never raises for a vendor failure: it becomes an outcome.

    "started" is journaled by the HTTP layer just before the action's call leaves
    (see the module docstring); when the provider fails before that, nothing was
    sent and a transport error needs no `confirm`. `may_send` runs just before that
    row is written and raises to keep the call from leaving (the apply stopped).
    A journal failure raises: the caller stops the apply.
    """

    async def announce() -> None:
        may_send()
        await journal.started(action)

    with announcing(action.call, announce) as announcement:
        try:
            outcome: Outcome | None = await provider.execute(action)
            error: VendorError | None = None
        except VendorError as caught:
            outcome, error = None, caught
    if error is not None:
        if not announcement.fired:
            outcome = Outcome(
                status=OutcomeStatus.FAILED,
                message=f"not sent: {REDACTOR.text(str(error))}; the next plan retries",
            )
            await journal.finished(action, outcome)
            return outcome
        with not_announcing():
            settled = await _after_lost_call(action, provider, error)
        if settled is None:
            return Outcome(
                status=OutcomeStatus.FAILED,
                message=f"outcome unknown ({REDACTOR.text(str(error))}); "
                "left in doubt for the next plan to check",
            )
        outcome = settled
    assert outcome is not None
    await journal.finished(action, outcome)
    return outcome


async def _after_lost_call(
    action: Action, provider: Provider, error: VendorError
) -> Outcome | None:
    """A call failed in transit. Did it happen? None when nobody can tell yet."""
    message = REDACTOR.text(str(error))
    if error.code != "transport" or action.repeatable:
        return Outcome(status=OutcomeStatus.FAILED, message=message)
    try:
        seen = await provider.confirm(action)
    except VendorError:
        seen = None
    if seen is True:
        return Outcome(
            status=OutcomeStatus.SUCCEEDED,
            message=f"response lost ({message}), change confirmed at the vendor",
        )
    if seen is False:
        return Outcome(
            status=OutcomeStatus.FAILED,
            message=f"{message}; the vendor shows no change, the next plan retries",
        )
    return None
