"""Commvault's official SDK, cvpysdk, unmodified against the simulator over real HTTP.

The simulator is served by uvicorn on 127.0.0.1 (as `reconciler sandbox serve` does).
`Commcell('<host>:<port>', ...)` tries https first, fails the TLS handshake against
plain HTTP and falls back to http (its `force_https=False` default), exactly as it
would against a Command Center without TLS. Every call cvpysdk makes is its own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cvpysdk.commcell import Commcell
from cvpysdk.exception import SDKException

from reconciler.sandbox.commvault import CommvaultSimulator
from reconciler.sandbox.serve import ServedSimulators
from reconciler.testing.served import served_sandbox
from tests.e2e.conftest import copy_example

PASSWORD = "sandbox-commvault-password"


class Served:
    def __init__(self, simulator: CommvaultSimulator, url: str) -> None:
        self.simulator = simulator
        self.url = url
        self.root = url.removesuffix("/commandcenter/api")
        self.host = self.root.removeprefix("http://")

    def calls(self) -> list[tuple[str, str]]:
        return [(e["method"], e["path"].removeprefix("/commandcenter/api"))
                for e in self.simulator.request_log()]

    def held(self, client_id: int) -> set[str]:
        return set(self.simulator.state["clients"][str(client_id)]["consumed"])


@pytest.fixture
def served() -> Iterator[Served]:
    simulator = CommvaultSimulator()
    with ServedSimulators({"commvault": simulator}) as running:
        yield Served(simulator, running.urls["commvault"])


def test_password_login_licenses_release_reapply_renewal_and_logout(served):
    commcell = Commcell(served.host, "admin", PASSWORD)
    client = commcell.clients.get("vsa-01")
    # The log is read once a later call was answered: each entry is written right after
    # its response, on the server's thread.
    assert served.calls()[:2] == [("GET", "/"), ("POST", "/Login")]
    assert client.client_id == "5"
    assert client.client_hostname == "vsa-01.acme.local"
    assert set(client.consumed_licenses) == {"Server File System", "Virtual Server",
                                             "SQL Server"}
    assert client.consumed_licenses["SQL Server"] == {
        "licenseType": 30, "appType": 81, "licenseName": "SQL Server", "platformType": 1}

    client.release_license("SQL Server")
    assert served.held(5) == {"Server File System", "Virtual Server"}
    assert "SQL Server" not in client.consumed_licenses

    client.reconfigure_client()
    assert served.held(5) == {"Server File System", "Virtual Server", "SQL Server"}

    httpx.post(f"{served.root}/_sandbox/expire-tokens").raise_for_status()
    client.release_license()
    assert served.held(5) == set(), "client-level release after the SDK renewed its token"

    token = commcell.auth_token
    assert commcell.logout() == "User logged out"
    after = httpx.get(f"{served.url}/Client", headers={"Authtoken": token})
    assert after.status_code == 401
    assert after.json() == {"errorCode": 5, "errorMessage": "Access denied"}
    release_statuses = [e["status"] for e in served.simulator.request_log()
                        if e["path"].endswith("/Release")]
    assert release_statuses[-2:] == [401, 200], "refused with the old token, then renewed"
    assert ("POST", "/RenewLoginToken") in served.calls()
    assert ("POST", "/Logout") in served.calls()


def test_access_token_login_as_qsdk_and_a_wrong_password(served):
    commcell = Commcell(served.host, authtoken="sandbox-commvault-token")
    assert commcell.commcell_username == "admin", "WhoAmI answered for the token"
    assert set(commcell.clients.get("fs-01").consumed_licenses) == {"Server File System"}
    sent = [e["headers"].get("authtoken") for e in served.simulator.request_log()
            if e["path"].endswith("/WhoAmI")]
    assert sent == ["QSDK sandbox-commvault-token"], "cvpysdk sends a bare token as QSDK"
    with pytest.raises(SDKException, match="Invalid Username or Password"):
        Commcell(served.host, "admin", "wrong")


def _document(clients: dict[str, list[str]]) -> dict[str, Any]:
    return {"providers": {"commvault": {
        "connection": {"base_url_env": "COMMVAULT_BASE_URL",
                       "username_env": "COMMVAULT_USERNAME",
                       "password_env": "COMMVAULT_PASSWORD",
                       "capacity": {"Server File System": 6, "Virtual Server": 3,
                                    "SQL Server": 2, "Exchange Mailbox": 2}},
        "subjects": [{"client": name, "licenses": licenses}
                     for name, licenses in clients.items()]}}}


def test_change_made_through_cvpysdk_shows_up_as_drift(served, workspace: Path, cli):
    desired = workspace / "commvault.yaml"
    desired.write_text(yaml.safe_dump(_document({
        "fs-01": ["Server File System"],
        "vsa-01": ["Server File System", "Virtual Server", "SQL Server"]})))
    env = {"COMMVAULT_BASE_URL": served.url, "COMMVAULT_USERNAME": "admin",
           "COMMVAULT_PASSWORD": PASSWORD}
    in_sync = cli("drift", str(desired), env=env)
    assert in_sync.exit_code == 0, in_sync.output

    commcell = Commcell(served.host, "admin", PASSWORD)
    commcell.clients.get("vsa-01").release_license("SQL Server")
    drifted = cli("drift", str(desired), env=env)
    assert drifted.exit_code == 2, drifted.output
    assert "vsa-01" in drifted.output and "SQL Server" in drifted.output
    assert "assign" in drifted.output, "the plan gives it back with a re-apply"

    commcell.clients.get("vsa-01").reconfigure_client()
    assert cli("drift", str(desired), env=env).exit_code == 0
    commcell.logout()


def test_sdk_against_sandbox_serve_and_its_admin_url(workspace: Path):
    # `reconciler sandbox serve` as a user runs it: its exports log cvpysdk in, and the
    # admin URL it prints answers (it lives at the host's root, not under /commandcenter).
    copy_example(workspace, "commvault.yaml")
    with served_sandbox("desired", workspace) as served:
        exports = served.exports
        (admin,) = [line.rsplit("(admin: ", 1)[1].rstrip(")\n") for line in served.lines
                    if line.startswith("# commvault simulator at ")]
        assert httpx.get(admin).status_code == 200, admin
        host = exports["COMMVAULT_BASE_URL"].removeprefix("http://").removesuffix(
            "/commandcenter/api")
        commcell = Commcell(host, exports["COMMVAULT_USERNAME"], exports["COMMVAULT_PASSWORD"])
        assert set(commcell.clients.get("old-fs-09").consumed_licenses) == {
            "Server File System"}
        commcell.logout()
