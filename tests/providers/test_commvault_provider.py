"""The Commvault provider against the Commvault simulator, over httpx (in-process ASGI)."""

from __future__ import annotations

import pytest

from reconciler.errors import VendorError
from reconciler.model import (
    Change,
    ChangeKind,
    Grant,
    OutcomeStatus,
    ProviderDesired,
    Subject,
)
from reconciler.providers.commvault import CommvaultConnection, CommvaultProvider
from reconciler.sandbox.commvault import CommvaultSimulator
from reconciler.secrets import Secrets

ENV = {"CV_USER": "admin", "CV_PASSWORD": "sandbox-commvault-password"}
# The request body of the seed page's release sample (seed 004), with real values.
SEED_RELEASE_SHAPE = {"licensesInfo": [{"platformType": 0, "license": {
    "licenseType": 0, "appType": 0, "licenseName": "string"}}], "clientEntity": {"clientId": 0}}


@pytest.fixture
def simulator() -> CommvaultSimulator:
    return CommvaultSimulator()


def make_provider(simulator, vendor_http, env=ENV) -> CommvaultProvider:
    connection = CommvaultConnection(username_env="CV_USER", password_env="CV_PASSWORD",
                                     capacity={"SQL Server": 2, "Exchange Mailbox": 2})
    http = vendor_http(simulator)
    http.client.base_url = "http://commvault.sandbox/commandcenter/api"
    return CommvaultProvider(connection, http, Secrets(environ=env))


@pytest.fixture
def provider(simulator, vendor_http) -> CommvaultProvider:
    return make_provider(simulator, vendor_http)


def client_grant(client: str, license: str) -> Grant:
    return Grant(provider="commvault", pool=license, subject=Subject(kind="client", id=client),
                 license=license)


def shape(value):
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def run_in_order(provider, actions):
    outcomes = []
    for action in sorted(actions, key=lambda a: a.phase):
        outcomes.append(await provider.execute(action))
    return outcomes


def held(simulator, client_id: int) -> set[str]:
    return set(simulator.state["clients"][str(client_id)]["consumed"])


async def test_read_lists_clients_once_then_each_clients_licenses(provider, simulator):
    state = await provider.read(ProviderDesired(provider="commvault"))
    assert {(g.subject.id, g.license) for g in state.grants} >= {
        ("vsa-01", "Virtual Server"), ("sql-01", "SQL Server")}
    pools = {p.id: (p.capacity, p.used) for p in state.pools}
    assert pools["SQL Server"] == (2, 2)
    paths = [e["path"] for e in simulator.request_log()]
    assert paths.count("/commandcenter/api/Client") == 1
    assert paths.count("/commandcenter/api/Login") == 1, "the token is fetched once"


async def test_release_one_of_three_licenses_previews_the_seed_request(provider, simulator):
    state = await provider.read(ProviderDesired(provider="commvault"))
    change = Change(kind=ChangeKind.REMOVE, before=client_grant("vsa-01", "SQL Server"),
                    reason="t")
    (action,) = provider.actions([change], state)
    assert action.verb == "release" and action.frees
    assert action.request.url.endswith("/commandcenter/api/Client/License/Release")
    assert action.request.body == {"licensesInfo": [{"platformType": 1, "license": {
        "licenseType": 30, "appType": 81, "licenseName": "SQL Server"}}],
        "clientEntity": {"clientId": 5}}
    assert shape(action.request.body) == shape(SEED_RELEASE_SHAPE)
    assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    assert held(simulator, 5) == {"Server File System", "Virtual Server"}


async def test_reapply_then_release_reaches_a_mixed_target(provider, simulator):
    simulator.state["clients"]["5"]["consumed"] = ["Server File System"]
    state = await provider.read(ProviderDesired(provider="commvault"))
    change = Change(kind=ChangeKind.ADD, after=client_grant("vsa-01", "Virtual Server"),
                    reason="declared")
    actions = provider.actions([change], state)
    assert [a.verb for a in sorted(actions, key=lambda a: a.phase)] == ["assign", "release"]
    reapply, release = sorted(actions, key=lambda a: a.phase)
    assert release.depends_on == (reapply.id,)
    assert "re-apply consumes every license" in release.reason
    outcomes = await run_in_order(provider, actions)
    assert all(o.status is OutcomeStatus.SUCCEEDED for o in outcomes), outcomes
    assert held(simulator, 5) == {"Server File System", "Virtual Server"}


async def test_client_that_should_hold_nothing_gets_a_client_level_release(provider, simulator):
    state = await provider.read(ProviderDesired(provider="commvault"))
    change = Change(kind=ChangeKind.REMOVE, before=client_grant("old-fs-09", "Server File System"),
                    reason="t")
    (action,) = provider.actions([change], state)
    assert action.request.body == {"isClientLevelOperation": True, "clientEntity": {"clientId": 7}}
    assert (await provider.execute(action)).ok
    assert held(simulator, 7) == set()


async def test_error_code_in_a_200_marks_the_action_failed(provider, simulator):
    seed = simulator.seed
    seed["clients"].append({"id": 8, "name": "sql-02", "agents": ["SQL Server"], "consumed": []})
    simulator.reset()
    state = await provider.read(ProviderDesired(provider="commvault"))
    change = Change(kind=ChangeKind.ADD, after=client_grant("sql-02", "SQL Server"), reason="t")
    (action,) = provider.actions([change], state)
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.FAILED
    assert "Commvault error 5" in outcome.message and "No license available" in outcome.message


async def test_release_of_what_is_already_released_counts_as_done(provider, simulator):
    state = await provider.read(ProviderDesired(provider="commvault"))
    change = Change(kind=ChangeKind.REMOVE, before=client_grant("vsa-01", "SQL Server"),
                    reason="t")
    (action,) = provider.actions([change], state)
    assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    assert (await provider.execute(action)).status is OutcomeStatus.ALREADY


async def test_expired_session_logs_in_again_once(provider, simulator):
    state = await provider.read(ProviderDesired(provider="commvault"))
    simulator.state["sessions"].clear()
    change = Change(kind=ChangeKind.REMOVE, before=client_grant("vsa-01", "SQL Server"),
                    reason="t")
    (action,) = provider.actions([change], state)
    assert (await provider.execute(action)).ok
    logins = [e for e in simulator.request_log() if e["path"].endswith("/Login")]
    assert len(logins) == 2


async def test_wrong_password_is_a_clear_error_without_the_password(simulator, vendor_http):
    provider = make_provider(simulator, vendor_http, {"CV_USER": "admin", "CV_PASSWORD": "nope!"})
    with pytest.raises(VendorError) as caught:
        await provider.read(ProviderDesired(provider="commvault"))
    assert "Invalid Username or Password" in str(caught.value)
    assert "nope!" not in str(caught.value)


async def test_desired_license_no_agent_uses_is_refused_by_check(provider):
    state = await provider.read(ProviderDesired(provider="commvault"))
    want = ProviderDesired(provider="commvault", grants=(client_grant("fs-01", "SQL Server"),))
    problems = provider.check(want, state)
    assert any("has no agent that consumes 'SQL Server'" in p.message for p in problems)
