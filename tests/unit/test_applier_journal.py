"""When the journal says "started": only once a call has its slot and token and leaves.

A crash leaves every action with a "started" row and no "finished" row in doubt, and
each one in doubt costs a vendor lookup or an operator's `journal --resolve`. Rows
written while actions merely queued for a connection slot would put a whole queue in
doubt; these tests pin that at most `concurrency` actions are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from reconciler.applier import apply_plan
from reconciler.errors import VendorError
from reconciler.http import VendorHttp, describe, new_client
from reconciler.journal import Journal
from reconciler.model import (
    Action,
    Call,
    Change,
    CurrentState,
    Limits,
    Outcome,
    OutcomeStatus,
    Plan,
    ProviderDesired,
    RequestPreview,
    Subject,
    Summary,
)
from reconciler.providers.base import Connection, Provider
from reconciler.sandbox.transport import SandboxTransport
from reconciler.sandbox.yext import YextSimulator
from reconciler.secrets import Secrets
from reconciler.transport import TRANSPORT_ENV, TRANSPORTS
from tests.rawserver import raw_server

AUTH = {"v": "20240101", "api_key": "sandbox-yext-api-key"}
CONCURRENCY = 4


class Gate:
    """ASGI wrapper holding every vendor-changing request until opened.

    `arrived` is set once `expected` requests are held: the moment a crash would
    leave the most calls on the wire.
    """

    def __init__(self, app: ASGIApp, expected: int) -> None:
        self.app = app
        self.expected = expected
        self.held = 0
        self.arrived = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "GET":
            self.held += 1
            if self.held >= self.expected:
                self.arrived.set()
            await self.opened.wait()
        await self.app(scope, receive, send)


class SendsItsCall(Provider):
    """The provider contract reduced to its core: `execute` sends `action.call` as is."""

    id = "yext"
    connection_model = Connection
    default_base_url = "http://yext.sandbox"
    subject_kinds = frozenset({"entity"})
    fail_before_sending: bool = False
    confirmed: list[str]

    async def read(self, desired: ProviderDesired) -> CurrentState:
        raise NotImplementedError

    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        raise NotImplementedError

    async def execute(self, action: Action) -> Outcome:
        if self.fail_before_sending:
            raise VendorError("login: ConnectError: connection refused", code="transport")
        response = await self.http.send(action.call, repeatable=action.repeatable, query=AUTH)
        ok = response.is_success
        return Outcome(status=OutcomeStatus.SUCCEEDED if ok else OutcomeStatus.FAILED,
                       message="" if ok else describe(response))

    async def confirm(self, action: Action) -> bool | None:
        self.confirmed.append(action.id)
        return None


def roomy_yext() -> YextSimulator:
    """The Yext simulator with 200 more entities and seats for all of them."""
    seed = YextSimulator.default_seed()
    account = seed["accounts"]["me"]
    account["entities"].extend(f"store-{n:03d}" for n in range(100, 300))
    for pack in account["packs"]:
        pack["total"] = 1000
    return YextSimulator(seed)


def assign(entity: str) -> Action:
    call = Call.to("POST", "v2", "accounts", "me", "license-packs", "reviews-plus",
                   "assigned-entities", entity)
    return Action(
        id=f"yext:assign:{entity}", verb="assign", provider="yext", pool="reviews-plus",
        subject=Subject(kind="entity", id=entity), license="reviews-plus", phase=300,
        reason="test", request=RequestPreview(method="POST", url=f"/{entity}"),
        repeatable=False, call=call,
    )


def plan_of(actions: list[Action]) -> Plan:
    return Plan(config_digest="test", summary=Summary(counts={"assign": len(actions)}),
                actions=tuple(actions))


def provider_over(app: Any) -> tuple[SendsItsCall, Any]:
    client = new_client("http://yext.sandbox", SandboxTransport(app), 30.0, CONCURRENCY)
    limits = Limits(rate_limit=10_000, concurrency=CONCURRENCY)
    provider = SendsItsCall(Connection(), VendorHttp(client, limits), Secrets(environ={}))
    provider.confirmed = []
    return provider, client


async def test_a_crash_mid_apply_leaves_at_most_concurrency_actions_in_doubt(tmp_path: Path):
    simulator = roomy_yext()
    gate = Gate(simulator.app, expected=CONCURRENCY)
    provider, client = provider_over(gate)
    actions = [assign(f"store-{n:03d}") for n in range(100, 160)]
    journal = Journal(tmp_path / "journal.db")
    applying = asyncio.ensure_future(apply_plan(plan_of(actions), {"yext": provider}, journal))
    try:
        await asyncio.wait_for(gate.arrived.wait(), timeout=30)
        # What a kill -9 now would leave: the rows on disk, read by another connection.
        with Journal(tmp_path / "journal.db") as survivor:
            in_doubt = survivor.in_doubt()
        assert len(in_doubt) == CONCURRENCY, [e.action_id for e in in_doubt]
        assert gate.held == CONCURRENCY, "the other 56 actions wait for a slot, unsent"
    finally:
        applying.cancel()
        await asyncio.gather(applying, return_exceptions=True)
        journal.close()
        await client.aclose()


async def test_every_started_row_is_on_disk_before_its_request_reaches_the_vendor(tmp_path: Path):
    simulator = roomy_yext()
    journal = Journal(tmp_path / "journal.db")
    seen_unjournaled: list[str] = []

    async def checking(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            entity = scope["path"].rsplit("/", 1)[-1]
            with Journal(tmp_path / "journal.db") as reader:
                if f"yext:assign:{entity}" not in {e.action_id for e in reader.in_doubt()}:
                    seen_unjournaled.append(entity)
        await simulator.app(scope, receive, send)

    provider, client = provider_over(checking)
    actions = [assign(f"store-{n:03d}") for n in range(100, 140)]
    report = await apply_plan(plan_of(actions), {"yext": provider}, journal)
    await client.aclose()
    assert report.ok, [o.message for _, o in report.failed]
    assert seen_unjournaled == []
    assert journal.in_doubt() == []
    journal.close()


async def test_an_action_that_fails_before_sending_is_not_in_doubt(tmp_path: Path):
    simulator = roomy_yext()
    provider, client = provider_over(simulator.app)
    provider.fail_before_sending = True
    journal = Journal(tmp_path / "journal.db")
    report = await apply_plan(plan_of([assign("store-100")]), {"yext": provider}, journal)
    await client.aclose()
    [(_, outcome)] = report.results
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.message.startswith("not sent: login: ConnectError")
    assert provider.confirmed == [], "nothing was sent, so there is nothing to confirm"
    assert [row["event"] for row in journal.rows()] == ["finished"]
    assert journal.in_doubt() == []
    journal.close()


async def test_a_lost_response_still_asks_the_provider_and_stays_in_doubt(tmp_path: Path):
    from reconciler.sandbox.base import Faults

    simulator = roomy_yext()
    simulator.set_faults(Faults(drop_response_rate=1.0))
    provider, client = provider_over(simulator.app)
    journal = Journal(tmp_path / "journal.db")
    report = await apply_plan(plan_of([assign("store-100")]), {"yext": provider}, journal)
    await client.aclose()
    [(action, outcome)] = report.results
    assert outcome.status is OutcomeStatus.FAILED and "in doubt" in outcome.message
    assert provider.confirmed == [action.id]
    assert [e.action_id for e in journal.in_doubt()] == [action.id]
    journal.close()


class FailsForOneProvider(Journal):
    """A journal whose writes fail once they hold a "finished" row of one provider:
    a disk that filled up, a database connection or a lock lost mid-apply."""

    def __init__(self, path: Path, provider: str) -> None:
        super().__init__(path)
        self.failing = provider

    def write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        if any(row[3] == self.failing and row[4] == "finished" for row in rows):
            raise OSError(28, "No space left on device (injected)")
        super().write_rows(rows)


def assign_by(provider: str, entity: str) -> Action:
    return assign(entity).model_copy(update={"provider": provider,
                                             "id": f"{provider}:assign:{entity}"})


async def test_one_providers_journal_failure_stops_every_provider_and_in_flight_calls_are_journaled(
    tmp_path: Path,
):
    from reconciler.applier import ApplyStoppedError

    slow_vendor = Gate(roomy_yext().app, expected=CONCURRENCY)
    broken_vendor = roomy_yext()
    slow, slow_client = provider_over(slow_vendor)
    broken, broken_client = provider_over(broken_vendor.app)
    slow_actions = [assign_by("slow", f"store-{n:03d}") for n in range(100, 120)]
    broken_actions = [assign_by("broken", f"store-{n:03d}") for n in range(100, 102)]
    journal = FailsForOneProvider(tmp_path / "journal.db", "broken")
    failed = asyncio.Event()

    def listen(action: Action, outcome: Outcome) -> None:
        if action.provider == "broken" and "journal failed" in outcome.message:
            failed.set()

    async def release_the_slow_vendor_once_the_journal_failed() -> None:
        # The slow vendor answers only once it holds `concurrency` calls and the other
        # provider's journal write has failed: those calls are in flight at the failure.
        await slow_vendor.arrived.wait()
        await failed.wait()
        slow_vendor.opened.set()

    releasing = asyncio.ensure_future(release_the_slow_vendor_once_the_journal_failed())
    try:
        with pytest.raises(ApplyStoppedError, match=r"applying broken:assign:store-10\d "
                           r"\(broken\): \[Errno 28\] No space left") as stopped:
            await asyncio.wait_for(apply_plan(plan_of(slow_actions + broken_actions),
                                              {"slow": slow, "broken": broken}, journal,
                                              listen), timeout=30)
    finally:
        releasing.cancel()
        await asyncio.gather(releasing, return_exceptions=True)
        await slow_client.aclose()
        await broken_client.aclose()
    rows = journal.rows()
    journal.close()
    outcomes = {action.id: outcome for action, outcome in stopped.value.report.results}
    assert len(outcomes) == len(slow_actions) + len(broken_actions), "every action has one"
    finished = {row["action_id"] for row in rows if row["event"] == "finished"}
    started = {row["action_id"] for row in rows if row["event"] == "started"}
    in_flight = {a.id for a in slow_actions
                 if outcomes[a.id].status is OutcomeStatus.SUCCEEDED}
    assert len(in_flight) == slow_vendor.held == CONCURRENCY, (
        "the calls in flight at the failure finished; no further call was sent")
    assert in_flight <= finished, "their outcomes are journaled, not dropped"
    not_sent = {a.id for a in slow_actions} - in_flight
    assert all(outcomes[i].status is OutcomeStatus.SKIPPED for i in not_sent)
    assert not (not_sent & started), "nothing was announced (or sent) after the failure"
    sent_broken = {f"broken:assign:{e['path'].rsplit('/', 1)[-1]}"
                   for e in broken_vendor.requests if e["method"] == "POST"}
    assert sent_broken and sent_broken <= started - finished, (
        "the failing provider's sent calls stay in doubt for the next plan to check")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_reset_after_the_request_was_written_is_journaled_in_doubt_not_resent(
        transport: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Over a real socket: the vendor reads the whole one-shot POST, then drops the
    connection. The vendor may have acted, so the action stays in doubt and is asked
    about (`confirm`), never sent a second time."""
    monkeypatch.setenv(TRANSPORT_ENV, transport)
    async with raw_server(lambda n: None) as (server, url):
        client = new_client(url, None, 30.0, CONCURRENCY)
        limits = Limits(rate_limit=10_000, concurrency=CONCURRENCY, backoff_initial=0.0)
        provider = SendsItsCall(Connection(), VendorHttp(client, limits), Secrets(environ={}))
        provider.confirmed = []
        journal = Journal(tmp_path / "journal.db")
        report = await apply_plan(plan_of([assign("store-100")]), {"yext": provider}, journal)
        await client.aclose()
    [(action, outcome)] = report.results
    assert outcome.status is OutcomeStatus.FAILED and "in doubt" in outcome.message
    assert len(server.received) == 1, f"a one-shot call was sent again: {server.received}"
    assert provider.confirmed == [action.id]
    assert [e.action_id for e in journal.in_doubt()] == [action.id]
    journal.close()


@pytest.fixture(autouse=True)
def _no_leaked_secrets() -> None:
    """The sandbox key is registered by nothing here; keep the process-wide redactor clean."""
