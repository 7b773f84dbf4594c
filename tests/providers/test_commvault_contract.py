"""Commvault contract: the vendor's published shapes judge provider and simulator alike.

Fixtures in tests/fixtures/vendors/commvault/ are transcribed from Commvault's API
reference and from cvpysdk, the vendor's official SDK (each file names its sources).
The provider's parsers read the documented responses; the provider's requests have
the documented shapes; the simulator accepts the documented requests, refuses what
the reference marks required, and answers in the documented shapes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Change, ChangeKind, Grant, Subject
from reconciler.providers.commvault.facts import (
    Agent,
    LicenseType,
    parse_agents,
    parse_clients,
    parse_licenses,
)
from reconciler.sandbox.commvault import CommvaultSimulator
from tests.conftest import sandbox_client
from tests.unit.test_commvault_actions import MAIL01, OLD, VSA01, state

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vendors" / "commvault"
TOKEN = {"Authtoken": "QSDK sandbox-commvault-token"}
BASE = "http://commvault.sandbox/commandcenter/api"


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    assert data["source"], f"{name} names its source"
    return data


def conforms(actual: Any, documented: Any, where: str = "$") -> list[str]:
    """Where `actual` lacks a documented key or has another JSON type (None: any)."""
    if documented is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object"]
        return [problem for key, value in documented.items()
                for problem in (conforms(actual[key], value, f"{where}.{key}")
                                if key in actual else [f"{where}.{key}: missing"])]
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{where}: expected an array"]
        return [p for item in actual for p in conforms(item, documented[0], f"{where}[]")
                ] if documented else []
    kind = bool if isinstance(documented, bool) else (int if isinstance(documented, int)
                                                      else type(documented))
    if (kind is int and isinstance(actual, bool)) or not isinstance(actual, kind):
        return [f"{where}: expected {kind.__name__}, got {type(actual).__name__}"]
    return []


@pytest.fixture
async def client():
    simulator = CommvaultSimulator()
    async with sandbox_client(simulator) as opened:
        opened.base_url = BASE
        yield opened


# ---- the provider reads the documented responses ---------------------------------------
def test_provider_parses_the_documented_client_licenses_example():
    parsed = parse_licenses(fixture("get_client_licenses.json")["response"])
    assert parsed == {
        "Server File System - Windows File System": LicenseType(1, 33, 1),
        "MediaAgent - MediaAgent Management": LicenseType(2, 1002, 11),
        "Disk Library Connector (DDO) - Magnetic Library": LicenseType(2, 1020, 84),
    }


def test_provider_parses_the_documented_client_list_and_agents():
    assert parse_clients(fixture("get_client.json")["response"]) == [(24, "client01")]
    assert parse_agents(fixture("get_agents.json")["response"]) == (
        Agent("Windows File System", 33),)


# ---- the provider sends the documented requests ------------------------------------------
def _remove(name: str, license: str) -> Change:
    return Change(kind=ChangeKind.REMOVE, reason="t", before=Grant(
        provider="commvault", pool=license, license=license,
        subject=Subject(kind="client", id=name)))


def test_provider_requests_have_the_documented_and_sdk_shapes(provider_for_contract):
    release = fixture("release_license.json")
    sdk = fixture("release_license_sdk.json")
    (one,) = provider_for_contract.actions([_remove("vsa-01", "SQL Server")], state([VSA01]))
    assert conforms(one.call.body, release["request"]) == []
    assert one.call.body == sdk["request"], "exactly what cvpysdk sends for one license"
    (whole,) = provider_for_contract.actions([_remove("old-fs-09", "Server File System")],
                                             state([OLD]))
    assert whole.call.body == {**sdk["request_client_level"], "clientEntity": {"clientId": 7}}
    add = Change(kind=ChangeKind.ADD, reason="t", after=Grant(
        provider="commvault", pool="Exchange Mailbox", license="Exchange Mailbox",
        subject=Subject(kind="client", id="mail-01")))
    reapply = provider_for_contract.actions([add], state([MAIL01, VSA01]))[0]
    assert conforms(reapply.call.body, fixture("reconfigure_license.json")["request"]) == []
    assert reapply.call.body == {**fixture("reconfigure_license.json")["request_sdk"],
                                 "clientInfo": {"clientId": 6}}


@pytest.fixture
async def provider_for_contract():
    from reconciler.http import VendorHttp, new_client
    from reconciler.providers.commvault import CommvaultConnection, CommvaultProvider
    from reconciler.secrets import Secrets

    http_client = new_client(BASE)
    yield CommvaultProvider(CommvaultConnection(username_env="U", password_env="P"),
                            VendorHttp(http_client), Secrets(environ={}))
    await http_client.aclose()


# ---- the simulator answers in the documented shapes ----------------------------------------
async def test_simulator_reads_answer_in_the_documented_shapes(client):
    listed = (await client.get("/Client", headers=TOKEN)).json()
    assert conforms(listed, fixture("get_client.json")["response"]) == []
    licenses = (await client.get("/Client/5/License", headers=TOKEN)).json()
    assert conforms(licenses, fixture("get_client_licenses.json")["response"]) == []
    agents = (await client.get("/Agent", params={"clientId": 5}, headers=TOKEN)).json()
    assert conforms(agents, fixture("get_agents.json")["response"]) == []


async def test_simulator_login_and_session_calls_answer_as_cvpysdk_reads_them(client):
    login = fixture("login.json")
    good = await client.post("/Login", json=login["request"])
    assert conforms(good.json(), login["response"]) == []
    bad = {**login["request"], "password": base64.b64encode(b"nope").decode()}
    assert conforms((await client.post("/Login", json=bad)).json(),
                    login["error_response"]) == []
    session = fixture("session.json")
    headers = {"Authtoken": good.json()["token"]}
    who = await client.post("/WhoAmI", headers=headers)
    assert conforms(who.json(), session["whoami_response"]) == []
    renewed = await client.post("/RenewLoginToken", headers=headers, json={
        **session["renew_request"], "sessionId": good.json()["token"]})
    assert conforms(renewed.json(), session["renew_response"]) == []
    assert (await client.get("/Client", headers=headers)).status_code == 401, "old token"
    assert (await client.get(f"{BASE}/")).status_code == 200


async def test_simulator_accepts_the_documented_release_and_reconfigure_requests(client):
    release = fixture("release_license.json")
    # The reference's sample as is: understood (client 0 does not exist), not malformed.
    sample = (await client.post("/Client/License/Release", json=release["request"],
                                headers=TOKEN)).json()
    assert conforms(sample, release["response"]) == []
    assert sample["errorCode"] == 2 and "Client with id [0]" in sample["errorMessage"]
    sdk = fixture("release_license_sdk.json")
    for body in (sdk["request"], sdk["request_client_level"]):
        answer = await client.post("/Client/License/Release", json=body, headers=TOKEN)
        assert answer.json() == sdk["response"]
    reconfigure = fixture("reconfigure_license.json")
    answer = await client.post("/Client/License/Reconfigure", json=reconfigure["request_sdk"],
                               headers=TOKEN)
    assert conforms(answer.json(), reconfigure["response"]) == []
    assert answer.json()["errorCode"] == 0


@pytest.mark.parametrize("broken", [
    {"licensesInfo": [{"license": {"appType": 81, "licenseName": "SQL Server"}}]},
    {"licensesInfo": [{"platformType": 1, "license": {"licenseName": "SQL Server"}}]},
    {"licensesInfo": []},
    {"isClientLevelOperation": True},
    {"isClientLevelOperation": True,
     "licensesInfo": [{"platformType": 1, "license": {"appType": 81}}]},
], ids=["no-platformType", "no-appType", "empty", "client-level-without-licensesInfo",
        "client-level-appType-not-0"])
async def test_simulator_refuses_what_the_reference_marks_required(client, broken):
    body = {"clientEntity": {"clientId": 5}, **broken}
    answer = await client.post("/Client/License/Release", json=body, headers=TOKEN)
    assert answer.status_code == 200 and answer.json()["errorCode"] == 6, answer.json()
    assert len((await client.get("/Client/5/License", headers=TOKEN)).json()[
        "licensesInfo"]) == 3, "nothing released"


async def test_simulator_paths_are_case_insensitive_and_errors_are_json(client):
    upper = await client.get("http://commvault.sandbox/COMMANDCENTER/API/client/5/LICENSE",
                             headers=TOKEN)
    assert upper.status_code == 200 and len(upper.json()["licensesInfo"]) == 3
    webconsole = await client.get("http://commvault.sandbox/webconsole/api/Client",
                                  headers=TOKEN)
    assert webconsole.status_code == 200
    unknown = await client.get("/NoSuchThing", headers=TOKEN)
    assert unknown.status_code == 404 and set(unknown.json()) == {"errorCode", "errorMessage"}
    wrong = await client.delete("/Client/License/Release", headers=TOKEN)
    assert wrong.status_code == 405 and set(wrong.json()) == {"errorCode", "errorMessage"}
    denied = await client.get("/Client", headers={"Authtoken": "QSDK nope"})
    assert denied.status_code == 401 and denied.json() == {
        "errorCode": 5, "errorMessage": "Access denied"}
