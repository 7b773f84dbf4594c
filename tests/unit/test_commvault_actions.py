"""Commvault `actions()` and `check()` from typed facts alone: no HTTP is sent.

The provider is built over a client that is never used to send (only `preview` reads
its base URL) and an empty environment; the current state is hand-built with
`CommvaultFacts`, as `read` would return it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from reconciler.http import VendorHttp, new_client, url_path
from reconciler.model import (
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    Location,
    PoolState,
    ProviderDesired,
    Subject,
    SubjectDecl,
)
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE
from reconciler.providers.commvault import CommvaultConnection, CommvaultProvider
from reconciler.providers.commvault.facts import Agent, ClientFacts, CommvaultFacts, LicenseType
from reconciler.providers.commvault.provider import client_id_of, released_by
from reconciler.secrets import Secrets

BASE = "https://cv.example/commandcenter/api"
FS, VSA, SQL, MAIL, MA = ("Server File System", "Virtual Server", "SQL Server",
                          "Exchange Mailbox", "MediaAgent Management")
TYPES = {FS: LicenseType(1, 33, 10), VSA: LicenseType(1, 106, 20), SQL: LicenseType(1, 81, 30),
         MA: LicenseType(2, 1002, 11)}
AGENTS = {"File System": Agent("File System", 33), "Virtual Server": Agent("Virtual Server", 106),
          "SQL Server": Agent("SQL Server", 81), "Exchange Mailbox": Agent("Exchange Mailbox", 137)}
HOSTILE = ["a/b", "..", "x?y=1", "s#f", "%2D", "with space", "ünïcode-客户端"]


def client(client_id: int, name: str, licenses: Sequence[str],
           agents: Sequence[str] | None) -> ClientFacts:
    return ClientFacts(id=client_id, name=name, licenses=tuple(sorted(licenses)),
                       agents=None if agents is None else tuple(AGENTS[a] for a in agents))


def state(clients: Sequence[ClientFacts], capacity: Mapping[str, int] | None = None,
          types: Mapping[str, LicenseType] = TYPES) -> CurrentState:
    capacity = capacity or {FS: 6, VSA: 3, SQL: 2, MAIL: 2, MA: 2}
    grants = [Grant(provider="commvault", pool=lic, license=lic,
                    subject=Subject(kind="client", id=c.name))
              for c in clients for lic in c.licenses]
    used = {name: sum(name in c.licenses for c in clients) for name in capacity}
    pools = [PoolState(provider="commvault", id=name, capacity=cap, used=used[name])
             for name, cap in capacity.items()]
    return CurrentState(provider="commvault", grants=tuple(grants), pools=tuple(pools),
                        facts=CommvaultFacts(clients={c.name: c for c in clients},
                                             license_types=dict(types)))


VSA01 = client(5, "vsa-01", [FS, VSA, SQL], ["File System", "Virtual Server", "SQL Server"])
MAIL01 = client(6, "mail-01", [FS], ["File System", "Exchange Mailbox", "SQL Server"])
OLD = client(7, "old-fs-09", [FS], ["File System"])


@pytest.fixture
async def provider() -> AsyncIterator[CommvaultProvider]:
    http_client = new_client(BASE)
    connection = CommvaultConnection(username_env="U", password_env="P",
                                     capacity={FS: 6, VSA: 3, SQL: 2, MAIL: 2})
    yield CommvaultProvider(connection, VendorHttp(http_client), Secrets(environ={}))
    await http_client.aclose()


def remove(name: str, license: str) -> Change:
    before = Grant(provider="commvault", pool=license, license=license,
                   subject=Subject(kind="client", id=name))
    return Change(kind=ChangeKind.REMOVE, before=before, reason="not declared")


def add(name: str, license: str) -> Change:
    after = Grant(provider="commvault", pool=license, license=license,
                  subject=Subject(kind="client", id=name))
    return Change(kind=ChangeKind.ADD, after=after, reason="declared")


def release_body(client_id: int, info: dict[str, object]) -> dict[str, object]:
    return {"isClientLevelOperation": False, "licensesInfo": [info],
            "clientEntity": {"clientId": client_id}}


def test_release_of_one_license_names_it_as_read(provider):
    (action,) = provider.actions([remove("vsa-01", SQL)], state([VSA01]))
    assert (action.verb, action.pool, action.phase, action.frees) == (
        "release", SQL, PHASE_FREE, True)
    assert action.call.method == "POST"
    assert action.call.path == ("Client", "License", "Release")
    assert action.call.body == release_body(5, {"platformType": 1, "license": {
        "licenseType": 30, "appType": 81, "licenseName": SQL}})
    assert action.request.url == f"{BASE}/Client/License/Release"
    assert action.request.body == action.call.body
    assert action.repeatable is True


def test_two_releases_on_one_client_are_two_calls_one_per_pool(provider):
    planned = provider.actions([remove("vsa-01", SQL), remove("vsa-01", VSA)], state([VSA01]))
    assert [(a.license, a.call.body["licensesInfo"][0]["license"]["appType"])
            for a in planned] == [(SQL, 81), (VSA, 106)]


def test_client_that_should_hold_nothing_gets_one_client_level_release(provider):
    (action,) = provider.actions([remove("old-fs-09", FS)], state([OLD]))
    assert action.id == "commvault:client:old-fs-09:release-all"
    assert action.call.body == {
        "isClientLevelOperation": True,
        "licensesInfo": [{"platformType": 1, "license": {
            "licenseType": 0, "appType": 0, "licenseName": None}}],
        "clientEntity": {"clientId": 7}}
    assert released_by(action) == {FS}


def test_client_holding_two_platform_types_is_released_license_by_license(provider):
    media = client(9, "ma-01", [FS, MA], ["File System"])
    planned = provider.actions([remove("ma-01", FS), remove("ma-01", MA)], state([media]))
    assert [a.call.body["isClientLevelOperation"] for a in planned] == [False, False]
    assert sorted(a.call.body["licensesInfo"][0]["platformType"] for a in planned) == [1, 2]


def test_reapply_then_release_again_in_phases_with_exact_calls(provider):
    planned = provider.actions([add("mail-01", MAIL)], state([MAIL01, VSA01]))
    reapply, release_again = planned
    assert (reapply.verb, reapply.repeatable, reapply.phase) == ("assign", False, PHASE_TAKE - 50)
    assert reapply.call.path == ("Client", "License", "Reconfigure")
    assert reapply.call.body == {"clientInfo": {"clientId": 6}, "platformTypes": [1]}
    assert (release_again.verb, release_again.license) == ("release", SQL)
    assert release_again.phase == PHASE_TAKE + 50
    assert release_again.depends_on == (reapply.id,)
    assert release_again.changes == ()
    assert release_again.call.body == release_body(6, {"platformType": 1, "license": {
        "licenseType": 30, "appType": 81, "licenseName": SQL}})


def test_release_of_a_license_nobody_holds_uses_the_agents_application_id(provider):
    # Nobody holds Exchange Mailbox: no licenseType was read; the Exchange agent's
    # applicationId is the appType, so the request is complete at plan time.
    planned = provider.actions([add("mail-01", SQL)], state([MAIL01]))
    _, release_again = planned
    assert release_again.license == MAIL
    assert release_again.call.body == release_body(6, {"platformType": 1, "license": {
        "appType": 137, "licenseName": MAIL}})


def test_reapply_waits_for_the_free_only_when_the_pool_is_full(provider):
    sql01 = client(4, "sql-01", [FS, SQL], ["File System", "SQL Server"])
    changes = [add("mail-01", MAIL), remove("vsa-01", SQL)]
    free, reapply, _ = sorted(provider.actions(changes, state([MAIL01, VSA01, sql01])),
                              key=lambda a: a.phase)
    assert free.id in reapply.depends_on, "SQL 2 of 2 + the re-apply's seat: tight"
    roomy = state([MAIL01, VSA01, sql01], capacity={FS: 6, VSA: 3, SQL: 5, MAIL: 2})
    _, reapply_roomy, _ = sorted(provider.actions(changes, roomy), key=lambda a: a.phase)
    assert reapply_roomy.depends_on == ()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_client_name_never_reaches_a_url(provider, name):
    hostile = client(11, name, [FS, SQL], ["File System", "SQL Server"])
    (action,) = provider.actions([remove(name, SQL)], state([hostile]))
    assert action.call.path == ("Client", "License", "Release")
    assert url_path(action.call) == "/Client/License/Release"
    assert action.call.query == ()
    assert action.request.url == f"{BASE}/Client/License/Release"
    assert action.call.body["clientEntity"] == {"clientId": 11}
    assert action.subject == Subject(kind="client", id=name)


def test_read_path_of_a_client_id_is_one_segment():
    # The only ids in Commvault paths are clientIds read from GET /Client (integers).
    from reconciler.model import Call

    assert url_path(Call.to("GET", "Client", 5, "License")) == "/Client/5/License"
    assert url_path(Call.to("GET", "Client", "5/../x", "License")) == "/Client/5%2F..%2Fx/License"


def test_planning_needs_no_secret_and_nothing_from_an_earlier_read(provider):
    # A fresh provider that never read anything plans from the facts it is handed.
    current = state([VSA01])
    assert provider.actions([remove("vsa-01", SQL)], current) == provider.actions(
        [remove("vsa-01", SQL)], current)
    with pytest.raises(TypeError, match="CommvaultFacts"):
        provider.actions([remove("vsa-01", SQL)], CurrentState(provider="commvault"))


def test_confirm_reads_the_client_id_from_the_call(provider):
    (release,) = provider.actions([remove("vsa-01", SQL)], state([VSA01]))
    reapply, _ = provider.actions([add("mail-01", MAIL)], state([MAIL01, VSA01]))
    assert client_id_of(release.call) == 5 and client_id_of(reapply.call) == 6


def desired(clients: Mapping[str, Sequence[str]],
            protected: Sequence[str] = ()) -> ProviderDesired:
    where = Location(file="commvault.yaml", line=7)
    return ProviderDesired(
        provider="commvault", source=Location(file="commvault.yaml", line=1),
        grants=tuple(Grant(provider="commvault", pool=lic, license=lic, source=where,
                           subject=Subject(kind="client", id=name))
                     for name, licenses in clients.items() for lic in licenses),
        subjects=tuple(SubjectDecl(subject=Subject(kind="client", id=name),
                                   protected=name in protected) for name in clients))


def test_check_refuses_unknown_client_and_license_no_agent_consumes(provider):
    problems = provider.check(desired({"fs-77": [FS], "old-fs-09": [FS, SQL]}), state([OLD]), [])
    messages = [str(p) for p in problems]
    assert "commvault.yaml:7: commvault: no client named 'fs-77' in the CommCell" in messages
    assert any("has no agent that consumes 'SQL Server' (agents: File System)" in m
               for m in messages)


def test_check_refuses_a_reapply_peak_over_capacity(provider):
    sql01 = client(4, "sql-01", [FS, SQL], ["File System", "SQL Server"])
    problems = provider.check(desired({"mail-01": [FS, MAIL]}), state([MAIL01, VSA01, sql01]), [])
    assert [str(p) for p in problems] == [
        "commvault.yaml:1: commvault: re-applying licenses on mail-01 needs 3 seats of "
        "'SQL Server' at once but the CommCell has 2 (2 in use); a re-apply consumes every "
        "license the client's agents need"]
    freed = provider.check(desired({"mail-01": [FS, MAIL], "vsa-01": [FS, VSA]}),
                           state([MAIL01, VSA01, sql01]), [])
    assert freed == []
    kept = provider.check(desired({"mail-01": [FS, MAIL], "vsa-01": [FS, VSA]},
                                  protected=["vsa-01"]), state([MAIL01, VSA01, sql01]), [])
    assert len(kept) == 1, "a protected client's seat is not counted as freed"
