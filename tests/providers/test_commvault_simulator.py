"""The Commvault simulator rejects what Command Center rejects."""

from __future__ import annotations

import base64

import httpx
import pytest

from reconciler.sandbox.commvault import CommvaultSimulator
from tests.conftest import sandbox_client

TOKEN = {"Authtoken": "Bearer sandbox-commvault-token"}


@pytest.fixture
async def client():
    simulator = CommvaultSimulator()
    async with sandbox_client(simulator) as opened:
        opened.base_url = "http://commvault.sandbox/commandcenter/api"
        yield opened


def password(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_login_takes_a_base64_password_and_answers_errlist_when_wrong(client):
    good = await client.post("/Login", json={"mode": 4, "username": "admin",
                                             "password": password("sandbox-commvault-password")})
    assert good.json()["token"].startswith("QSDK ")
    wrong = await client.post("/Login", json={"mode": 4, "username": "admin",
                                              "password": password("guess")})
    assert wrong.status_code == 200
    assert wrong.json() == {"errList": [{"errorCode": 5,
                                         "errLogMessage": "Invalid Username or Password"}]}
    plain = await client.post("/Login", json={"mode": 4, "username": "admin",
                                              "password": "sandbox-commvault-password"})
    assert "errList" in plain.json(), "a password that is not base64 is refused"


async def test_calls_need_a_valid_authtoken(client):
    assert (await client.get("/Client")).status_code == 401
    assert (await client.get("/Client", headers={"Authtoken": "QSDK forged"})).status_code == 401
    bare = {"Authtoken": "sandbox-commvault-token"}
    assert (await client.get("/Client", headers=bare)).status_code == 401, \
        "an access token is a bearer token"
    qsdk = {"Authtoken": "QSDK sandbox-commvault-token"}
    assert (await client.get("/Client", headers=qsdk)).status_code == 200, \
        "cvpysdk sends a bare token as QSDK <token>"
    other_header = {"Authorization": "Bearer sandbox-commvault-token"}
    assert (await client.get("/Client", headers=other_header)).status_code == 401
    login = await client.post("/Login", json={"mode": 4, "username": "admin",
                                              "password": password("sandbox-commvault-password")})
    session = {"Authtoken": login.json()["token"]}
    assert (await client.get("/Client", headers=session)).status_code == 200
    assert (await client.post("http://commvault.sandbox/_sandbox/expire-tokens")).is_success
    expired = await client.get("/Client", headers=session)
    assert expired.status_code == 401 and expired.json()["errorCode"] != 0
    listed = await client.get("/Client", headers=TOKEN)
    names = [row["client"]["clientEntity"]["clientName"]
             for row in listed.json()["clientProperties"]]
    assert names[:2] == ["fs-01", "fs-02"]


async def test_release_of_a_license_not_consumed_is_error_code_in_a_200(client):
    body = {"licensesInfo": [{"platformType": 1, "license": {
        "licenseType": 40, "appType": 137, "licenseName": "Exchange Mailbox"}}],
        "clientEntity": {"clientId": 2}}
    answer = await client.post("/Client/License/Release", json=body, headers=TOKEN)
    assert answer.status_code == 200
    assert answer.json()["errorCode"] == 3


async def test_release_must_name_the_license_exactly(client):
    body = {"licensesInfo": [{"platformType": 1, "license": {
        "licenseType": 99, "appType": 33, "licenseName": "Server File System"}}],
        "clientEntity": {"clientId": 2}}
    answer = await client.post("/Client/License/Release", json=body, headers=TOKEN)
    assert answer.json()["errorCode"] == 4


async def test_reconfigure_reconsumes_every_agent_license_or_nothing(client):
    release_all = {"isClientLevelOperation": True, "clientEntity": {"clientId": 5},
                   "licensesInfo": [{"platformType": 1, "license": {"appType": 0}}]}
    assert (await client.post("/Client/License/Release", json=release_all,
                              headers=TOKEN)).json()["errorCode"] == 0
    held = await client.get("/Client/5/License", headers=TOKEN)
    assert held.json()["licensesInfo"] == []
    again = {"clientInfo": {"clientId": 5}, "platformTypes": [1]}
    assert (await client.post("/Client/License/Reconfigure", json=again,
                              headers=TOKEN)).json()["errorCode"] == 0
    names = {i["license"]["licenseName"]
             for i in (await client.get("/Client/5/License", headers=TOKEN)).json()["licensesInfo"]}
    assert names == {"Server File System", "Virtual Server", "SQL Server"}


async def test_reconfigure_fails_whole_when_the_commcell_has_no_seat_left():
    seed = CommvaultSimulator.default_seed()
    seed["clients"].append({"id": 8, "name": "sql-02", "agents": ["File System", "SQL Server"],
                            "consumed": []})
    simulator = CommvaultSimulator(seed=seed)
    async with sandbox_client(simulator) as client:
        client.base_url = "http://commvault.sandbox/commandcenter/api"
        answer = await client.post("/Client/License/Reconfigure", headers=TOKEN,
                                   json={"clientInfo": {"clientId": 8}, "platformTypes": [1]})
        assert answer.status_code == 200
        assert answer.json()["errorCode"] == 5
        assert "No license available for [SQL Server]: 2 of 2 in use" in answer.json()[
            "errorMessage"]
        held = await client.get("/Client/8/License", headers=TOKEN)
        assert held.json()["licensesInfo"] == [], "all or nothing: no file-system seat either"


async def test_unknown_client_is_an_error_code(client: httpx.AsyncClient):
    answer = await client.post("/Client/License/Reconfigure",
                               json={"clientInfo": {"clientId": 99}, "platformTypes": [1]},
                               headers=TOKEN)
    assert answer.json()["errorCode"] == 2


async def test_agents_are_listed_per_client_as_cvpysdk_reads_them(client):
    answer = await client.get("/Agent", params={"clientId": 6}, headers=TOKEN)
    agents = {a["idaEntity"]["appName"]: a["idaEntity"]["applicationId"]
              for a in answer.json()["agentProperties"]}
    assert agents == {"File System": 33, "Exchange Mailbox": 137, "SQL Server": 81}
    missing = await client.get("/Agent", headers=TOKEN)
    assert missing.status_code == 200 and missing.json()["errorCode"] != 0


async def test_license_read_of_an_unknown_client_is_an_error_code_in_a_200(client):
    answer = await client.get("/Client/99/License", headers=TOKEN)
    assert answer.status_code == 200
    assert answer.json() == {"errorCode": 2, "errorMessage": "Client with id [99] not found"}


async def test_release_without_a_license_name_releases_all_as_cvpysdk_sends_it(client):
    body = {"isClientLevelOperation": True, "licensesInfo": [{"platformType": 1, "license": {
        "licenseType": 0, "appType": 0, "licenseName": None}}], "clientEntity": {"clientId": 4}}
    answer = await client.post("/Client/License/Release", json=body, headers=TOKEN)
    assert answer.json() == {"errorCode": 0, "errorMessage": ""}
    assert (await client.get("/Client/4/License", headers=TOKEN)).json()["licensesInfo"] == []


async def test_release_and_reconfigure_validate_their_bodies(client):
    no_client = await client.post("/Client/License/Release", headers=TOKEN, json={
        "licensesInfo": [{"platformType": 1, "license": {"licenseName": "SQL Server"}}]})
    assert no_client.status_code == 200 and no_client.json()["errorCode"] == 6
    no_licenses = await client.post("/Client/License/Release", headers=TOKEN,
                                    json={"clientEntity": {"clientId": 4}})
    assert no_licenses.json()["errorCode"] == 6
    no_platforms = await client.post("/Client/License/Reconfigure", headers=TOKEN,
                                     json={"clientInfo": {"clientId": 4}})
    assert no_platforms.json()["errorCode"] == 6
    not_json = await client.post("/Client/License/Reconfigure", headers=TOKEN,
                                 content=b"{")
    assert not_json.json()["errorCode"] == 6


async def test_reconfigure_of_a_client_holding_everything_changes_nothing(client):
    before = (await client.get("/Client/5/License", headers=TOKEN)).json()
    again = {"clientInfo": {"clientId": 5}, "platformTypes": [1]}
    assert (await client.post("/Client/License/Reconfigure", json=again,
                              headers=TOKEN)).json()["errorCode"] == 0
    assert (await client.get("/Client/5/License", headers=TOKEN)).json() == before
