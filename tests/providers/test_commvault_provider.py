"""The Commvault provider against the Commvault simulator, over httpx (in-process ASGI).

Plans go through the real planner (`build_plan`) and are executed by the real applier,
so ordering, dependencies and capacity refusals are the ones a user would get.

Seed (reconciler/sandbox/seeds/commvault.yaml): SQL Server 2 of 2 in use (sql-01,
vsa-01); mail-01 has File System, Exchange Mailbox and SQL Server agents but consumes
only Server File System; old-fs-09 consumes one Server File System seat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence

import httpx
import pytest

from reconciler.applier import apply_plan
from reconciler.errors import CapacityError, ConfigError, VendorError
from reconciler.journal import Journal
from reconciler.model import (
    Change,
    ChangeKind,
    DesiredState,
    Grant,
    Location,
    OutcomeStatus,
    Plan,
    ProviderDesired,
    Subject,
    SubjectDecl,
)
from reconciler.planner import build_plan
from reconciler.providers.commvault import CommvaultConnection, CommvaultProvider
from reconciler.sandbox.commvault import CommvaultSimulator
from reconciler.secrets import Secrets

ENV = {"CV_USER": "admin", "CV_PASSWORD": "sandbox-commvault-password",
       "CV_TOKEN": "sandbox-commvault-token"}
CAPACITY = {"Server File System": 6, "Virtual Server": 3, "SQL Server": 2, "Exchange Mailbox": 2}
# The request body of the seed page's release sample (seed 004).
SEED_RELEASE_SAMPLE = {"licensesInfo": [{"platformType": 0, "license": {
    "licenseType": 0, "appType": 0, "licenseName": "string"}}], "clientEntity": {"clientId": 0}}
TODAY = dt.date(2026, 11, 24)
BASE = "http://commvault.sandbox/commandcenter/api"


@pytest.fixture
def simulator() -> CommvaultSimulator:
    return CommvaultSimulator()


def make_provider(simulator, vendor_http, env=ENV, **settings) -> CommvaultProvider:
    login = {"username_env": "CV_USER", "password_env": "CV_PASSWORD"}
    connection = CommvaultConnection(**{"capacity": CAPACITY, **login, **settings})
    http = vendor_http(simulator)
    http.client.base_url = BASE
    return CommvaultProvider(connection, http, Secrets(environ=env))


@pytest.fixture
def provider(simulator, vendor_http) -> CommvaultProvider:
    return make_provider(simulator, vendor_http)


def declare(clients: Mapping[str, Sequence[str]], protected: Sequence[str] = ()) -> DesiredState:
    """The YAML `subjects:` list, as the loader would hand it over."""
    grants = tuple(
        Grant(provider="commvault", pool=license, subject=Subject(kind="client", id=name),
              license=license, source=Location(file="commvault.yaml", line=20 + i))
        for i, (name, licenses) in enumerate(clients.items()) for license in licenses)
    subjects = tuple(
        SubjectDecl(subject=Subject(kind="client", id=name), protected=name in protected,
                    source=Location(file="commvault.yaml", line=20 + i))
        for i, name in enumerate(clients))
    body = ProviderDesired(provider="commvault", grants=grants, subjects=subjects,
                           source=Location(file="commvault.yaml", line=1))
    return DesiredState(providers={"commvault": body}, paths=("commvault.yaml",))


async def plan(provider: CommvaultProvider, desired: DesiredState) -> Plan:
    current = await provider.read(desired.providers["commvault"])
    return build_plan(desired, {"commvault": current}, {"commvault": provider.actions},
                      {"commvault": provider.check}, today=TODAY)


async def apply(provider: CommvaultProvider, planned: Plan, tmp_path) -> dict[str, OutcomeStatus]:
    with Journal(tmp_path / "journal.db") as journal:
        report = await apply_plan(planned, {"commvault": provider}, journal)
    return {action.id: outcome.status for action, outcome in report.results}


def held(simulator, client_id: int) -> set[str]:
    return set(simulator.state["clients"][str(client_id)]["consumed"])


def changing_calls(simulator) -> list[str]:
    return [e["path"].removeprefix("/commandcenter/api") for e in simulator.request_log()
            if e["method"] == "POST" and not e["path"].endswith("/Login")]


def shape(value):
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_read_lists_clients_once_then_licenses_and_agents_only_of_named_clients(
        provider, simulator):
    """Agents are read only where a re-apply may be planned: a named client missing a
    declared license (mail-01 lacks Exchange Mailbox); vsa-01 holds all it declares."""
    state = await provider.read(declare({"vsa-01": ["Server File System"],
                                         "mail-01": ["Exchange Mailbox"]}).providers[
        "commvault"])
    assert {(g.subject.id, g.license) for g in state.grants} >= {
        ("vsa-01", "Virtual Server"), ("sql-01", "SQL Server"), ("old-fs-09", "Server File System")}
    pools = {p.id: (p.capacity, p.used) for p in state.pools}
    assert pools["SQL Server"] == (2, 2) and pools["Exchange Mailbox"] == (2, 0)
    paths = [e["path"].removeprefix("/commandcenter/api") for e in simulator.request_log()]
    assert paths.count("/Client") == 1
    assert paths.count("/Login") == 1, "the token is fetched once"
    assert sorted(p for p in paths if p.endswith("/License")) == [
        f"/Client/{i}/License" for i in range(2, 8)]
    agent_reads = [e["query"] for e in simulator.request_log() if e["path"].endswith("/Agent")]
    assert agent_reads == ["clientId=6"], "agents only of the named client missing one"


async def test_release_one_of_three_licenses_previews_the_seed_request(
        provider, simulator, tmp_path):
    desired = declare({"vsa-01": ["Server File System", "Virtual Server"]})
    planned = await plan(provider, desired)
    (action,) = planned.actions
    assert (action.verb, action.pool, action.frees) == ("release", "SQL Server", True)
    assert action.request.method == "POST"
    assert action.request.url == f"{BASE}/Client/License/Release"
    assert action.request.body == {"isClientLevelOperation": False, "licensesInfo": [
        {"platformType": 1, "license": {
            "licenseType": 30, "appType": 81, "licenseName": "SQL Server"}}],
        "clientEntity": {"clientId": 5}}
    assert action.call.body == action.request.body
    assert action.call.path == ("Client", "License", "Release")
    seed_part = {k: v for k, v in action.request.body.items() if k != "isClientLevelOperation"}
    assert shape(seed_part) == shape(SEED_RELEASE_SAMPLE)
    assert await apply(provider, planned, tmp_path) == {action.id: OutcomeStatus.SUCCEEDED}
    assert held(simulator, 5) == {"Server File System", "Virtual Server"}
    sent = [e["body"] for e in simulator.request_log() if e["path"].endswith("/Release")]
    assert sent == [action.request.body], "the preview is exactly what was sent"
    assert (await plan(provider, desired)).actions == ()


async def test_reapply_then_release_reaches_a_mixed_target(provider, simulator, tmp_path):
    # mail-01 gets its mailbox license back; its SQL agent makes the re-apply take a SQL
    # seat too, which vsa-01 frees first and mail-01 releases again afterwards.
    desired = declare({"mail-01": ["Server File System", "Exchange Mailbox"],
                       "vsa-01": ["Server File System", "Virtual Server"]})
    planned = await plan(provider, desired)
    steps = [(a.verb, a.subject.id, a.license) for a in planned.actions]
    assert steps == [("release", "vsa-01", "SQL Server"),
                     ("assign", "mail-01", "Exchange Mailbox"),
                     ("release", "mail-01", "SQL Server")]
    free, reapply, release_again = planned.actions
    assert reapply.request.url == f"{BASE}/Client/License/Reconfigure"
    assert reapply.request.body == {"clientInfo": {"clientId": 6}, "platformTypes": [1]}
    assert reapply.repeatable is False
    assert free.id in reapply.depends_on, "SQL is full: the re-apply waits for the free"
    assert release_again.depends_on == (reapply.id,)
    assert release_again.changes == (), "no declared change: it undoes the re-apply's extra"
    assert "re-apply consumes every license the client's agents need" in release_again.reason
    assert "Exchange Mailbox, SQL Server, Server File System" in reapply.reason
    outcomes = await apply(provider, planned, tmp_path)
    assert set(outcomes.values()) == {OutcomeStatus.SUCCEEDED}, outcomes
    assert held(simulator, 6) == {"Server File System", "Exchange Mailbox"}
    assert held(simulator, 5) == {"Server File System", "Virtual Server"}
    assert changing_calls(simulator) == ["/Client/License/Release", "/Client/License/Reconfigure",
                                         "/Client/License/Release"]
    assert (await plan(provider, desired)).actions == (), "a second plan changes nothing"


async def test_release_of_a_license_no_client_held_is_named_by_its_agents_app_type(
        provider, simulator, tmp_path):
    # Nobody consumes Exchange Mailbox at plan time, so no read shows its licenseType:
    # the release names it by platformType and the Exchange agent's applicationId (the
    # reference's appType), built at plan time and sent exactly as previewed.
    desired = declare({"mail-01": ["Server File System", "SQL Server"],
                       "vsa-01": ["Server File System", "Virtual Server"]})
    planned = await plan(provider, desired)
    release_again = planned.actions[-1]
    assert (release_again.verb, release_again.license) == ("release", "Exchange Mailbox")
    assert release_again.request.body["licensesInfo"] == [
        {"platformType": 1, "license": {"appType": 137, "licenseName": "Exchange Mailbox"}}]
    outcomes = await apply(provider, planned, tmp_path)
    assert set(outcomes.values()) == {OutcomeStatus.SUCCEEDED}, outcomes
    assert held(simulator, 6) == {"Server File System", "SQL Server"}
    sent = [e["body"] for e in simulator.request_log() if e["path"].endswith("/Release")][-1]
    assert sent == release_again.request.body
    assert (await plan(provider, desired)).actions == ()


async def test_reapply_peak_over_capacity_is_refused_with_zero_calls(provider, simulator):
    # End state fits (SQL stays 2 of 2), but the re-apply would hold a third SQL seat.
    desired = declare({"mail-01": ["Server File System", "Exchange Mailbox"]})
    with pytest.raises(ConfigError) as refused:
        await plan(provider, desired)
    message = str(refused.value)
    assert "re-applying licenses on mail-01 needs 3 seats of 'SQL Server'" in message
    assert "CommCell has 2" in message
    assert changing_calls(simulator) == []


async def test_peak_counts_no_free_from_a_protected_client(provider, simulator):
    # vsa-01 is declared without SQL but protected: its seat is not freed for mail-01.
    desired = declare({"mail-01": ["Server File System", "Exchange Mailbox"],
                       "vsa-01": ["Server File System", "Virtual Server"]}, protected=["vsa-01"])
    with pytest.raises(ConfigError) as refused:
        await plan(provider, desired)
    assert "needs 3 seats of 'SQL Server'" in str(refused.value)
    assert changing_calls(simulator) == []


async def test_end_state_over_capacity_is_refused_with_zero_calls(vendor_http, tmp_path):
    seed = CommvaultSimulator.default_seed()
    for client_id in (8, 9):
        seed["clients"].append({"id": client_id, "name": f"mail-0{client_id - 6}",
                                "agents": ["Exchange Mailbox"], "consumed": []})
    simulator = CommvaultSimulator(seed=seed)
    provider = make_provider(simulator, vendor_http)
    desired = declare({"mail-02": ["Exchange Mailbox"], "mail-03": ["Exchange Mailbox"],
                       "vsa-01": ["Server File System", "Virtual Server"],
                       "mail-01": ["Server File System", "Exchange Mailbox"]})
    with pytest.raises(CapacityError) as refused:
        await plan(provider, desired)
    assert "pool 'Exchange Mailbox' would hold 3 seats but has 2" in str(refused.value)
    assert changing_calls(simulator) == []


async def test_error_code_in_a_200_marks_the_action_failed(simulator, vendor_http, tmp_path):
    # Capacity not declared: the plan passes, and the CommCell refuses the re-apply.
    provider = make_provider(simulator, vendor_http, capacity={})
    planned = await plan(provider, declare({"mail-01": ["Server File System",
                                                        "Exchange Mailbox"]}))
    reapply, release_again = planned.actions
    with Journal(tmp_path / "journal.db") as journal:
        report = await apply_plan(planned, {"commvault": provider}, journal)
    outcomes = {action.id: outcome for action, outcome in report.results}
    assert outcomes[reapply.id].status is OutcomeStatus.FAILED
    assert "Commvault error 5" in outcomes[reapply.id].message
    assert "No license available for [SQL Server]" in outcomes[reapply.id].message
    assert outcomes[release_again.id].status is OutcomeStatus.SKIPPED
    assert held(simulator, 6) == {"Server File System"}, "all or nothing"


async def test_client_that_should_hold_nothing_gets_a_client_level_release(
        provider, simulator, tmp_path):
    planned = await plan(provider, declare({"old-fs-09": []}))
    (action,) = planned.actions
    assert action.request.body == {
        "isClientLevelOperation": True,
        "licensesInfo": [{"platformType": 1, "license": {
            "licenseType": 0, "appType": 0, "licenseName": None}}],
        "clientEntity": {"clientId": 7}}, "cvpysdk's release_license() shape; appType 0"
    assert "client-level release" in action.reason
    assert set((await apply(provider, planned, tmp_path)).values()) == {OutcomeStatus.SUCCEEDED}
    assert held(simulator, 7) == set()


async def test_protected_client_keeps_what_it_holds_but_the_reapply_extra_is_undone(
        provider, simulator, tmp_path):
    simulator.state["clients"]["5"]["consumed"] = ["Server File System"]
    desired = declare({"vsa-01": ["Virtual Server"]}, protected=["vsa-01"])
    planned = await plan(provider, desired)
    assert [(a.verb, a.license) for a in planned.actions] == [
        ("assign", "Virtual Server"), ("release", "SQL Server")]
    await apply(provider, planned, tmp_path)
    assert held(simulator, 5) == {"Server File System", "Virtual Server"}


async def test_release_of_what_is_already_released_counts_as_done(provider, simulator):
    state = await provider.read(declare({"vsa-01": []}).providers["commvault"])
    before = Grant(provider="commvault", pool="SQL Server",
                   subject=Subject(kind="client", id="vsa-01"), license="SQL Server")
    (action,) = provider.actions([Change(kind=ChangeKind.REMOVE, before=before, reason="t")],
                                 state)
    assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    assert (await provider.execute(action)).status is OutcomeStatus.ALREADY
    assert await provider.confirm(action) is True


async def test_read_fails_when_a_license_read_answers_an_error_code(simulator, vendor_http):
    provider = make_provider(simulator, vendor_http)

    async def client_deleted_after_listing(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/Client"):
            del simulator.state["clients"]["5"]

    provider.http.client.event_hooks["response"].append(client_deleted_after_listing)
    with pytest.raises(VendorError) as failed:
        await provider.read(declare({"fs-01": ["Server File System"]}).providers["commvault"])
    assert "error 2" in str(failed.value) and "Client with id [5] not found" in str(failed.value)


async def test_expired_session_logs_in_again_once(provider, simulator, tmp_path):
    planned = await plan(provider, declare({"vsa-01": ["Server File System", "Virtual Server"]}))
    simulator.state["sessions"].clear()
    assert set((await apply(provider, planned, tmp_path)).values()) == {OutcomeStatus.SUCCEEDED}
    logins = [e for e in simulator.request_log() if e["path"].endswith("/Login")]
    assert len(logins) == 2


async def test_calls_refused_together_after_a_session_timeout_log_in_once(provider,
                                                                           simulator):
    desired = declare({"fs-01": ["Server File System"]}).providers["commvault"]
    await provider.read(desired)
    simulator.state["sessions"].clear()
    # Three reads in flight when the session times out: all refused with the same token.
    states = await asyncio.gather(*(provider.read(desired) for _ in range(3)))
    assert all(state.grants == states[0].grants for state in states)
    logins = [e for e in simulator.request_log() if e["path"].endswith("/Login")]
    assert len(logins) == 2


async def test_bare_access_token_is_sent_as_qsdk_like_cvpysdk_does(simulator, vendor_http):
    provider = make_provider(simulator, vendor_http, username_env=None, password_env=None,
                             token_env="CV_TOKEN")
    state = await provider.read(declare({"fs-01": ["Server File System"]}).providers[
        "commvault"])
    assert state.grants
    log = simulator.request_log()
    assert not any(e["path"].endswith("/Login") for e in log)
    assert {e["headers"]["authtoken"] for e in log} == {"QSDK sandbox-commvault-token"}


async def test_wrong_password_is_a_clear_error_without_the_password(simulator, vendor_http):
    provider = make_provider(simulator, vendor_http, {"CV_USER": "admin", "CV_PASSWORD": "nope!"})
    with pytest.raises(VendorError) as caught:
        await provider.read(ProviderDesired(provider="commvault"))
    assert "Invalid Username or Password" in str(caught.value)
    assert "nope!" not in str(caught.value)


async def test_license_no_agent_of_the_client_uses_is_refused_by_check(provider, simulator):
    with pytest.raises(ConfigError) as refused:
        await plan(provider, declare({"fs-01": ["Server File System", "SQL Server"]}))
    assert "has no agent that consumes 'SQL Server' (agents: File System)" in str(refused.value)
    assert changing_calls(simulator) == []


async def test_unknown_client_is_refused_by_check(provider):
    with pytest.raises(ConfigError) as refused:
        await plan(provider, declare({"fs-77": ["Server File System"]}))
    assert "no client named 'fs-77' in the CommCell" in str(refused.value)


async def test_confirm_of_a_reapply_reads_whether_the_declared_adds_are_held(
        provider, simulator):
    desired = declare({"mail-01": ["Server File System", "Exchange Mailbox"],
                       "vsa-01": ["Server File System", "Virtual Server"]})
    planned = await plan(provider, desired)
    free, reapply, release_again = planned.actions
    assert await provider.confirm(reapply) is False, "not sent yet: not visible"
    assert await provider.confirm(free) is False, "vsa-01 still holds SQL Server"
    assert (await provider.execute(free)).status is OutcomeStatus.SUCCEEDED
    assert await provider.confirm(free) is True
    assert (await provider.execute(reapply)).status is OutcomeStatus.SUCCEEDED
    assert await provider.confirm(reapply) is True
    assert await provider.confirm(release_again) is False, "the extra SQL seat is held"
    assert (await provider.execute(release_again)).status is OutcomeStatus.SUCCEEDED
    assert await provider.confirm(release_again) is True
    assert await provider.confirm(reapply) is True, "still done after the release again"


async def test_confirm_of_a_client_level_release(provider, simulator):
    (action,) = (await plan(provider, declare({"old-fs-09": []}))).actions
    assert await provider.confirm(action) is False
    await provider.execute(action)
    assert await provider.confirm(action) is True


async def test_execute_names_the_http_status_and_the_vendors_message(simulator, vendor_http):
    provider = make_provider(simulator, vendor_http, {**ENV, "CV_TOKEN": "revoked-token"},
                             username_env=None, password_env=None, token_env="CV_TOKEN")
    good = make_provider(simulator, vendor_http)
    (action,) = (await plan(good, declare({"old-fs-09": []}))).actions
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.message == "HTTP 401: Access denied"
    with pytest.raises(VendorError) as failed:
        await provider.confirm(action)
    assert "HTTP 401: Access denied" in str(failed.value)
    assert held(simulator, 7) == {"Server File System"}
