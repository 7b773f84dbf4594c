"""Simulator of the Commvault Command Center REST API (client licenses).

Written from Commvault's API pages and what the official SDK (cvpysdk) sends and
expects, never from reconciler's provider. Rules enforced:
- `POST /Login` takes `username` and a base64 `password`; a wrong one answers
  HTTP 200 with `{"errList": [{"errorCode", "errLogMessage"}]}`, the shape cvpysdk reads;
- every other call needs a token: a login token (`Authtoken: QSDK ...`), or an API
  access token as a bearer token (`Authorization: Bearer ...`, or `Authtoken: Bearer ...`
  as cvpysdk sends it); anything else is HTTP 401;
- `GET /Client`, `GET /Client/{id}/License`, `GET /Agent?clientId=` for reads;
- `POST /Client/License/Release` releases the listed licenses, or all of a client's
  with `isClientLevelOperation: true` (or, as cvpysdk sends it, one entry without a
  `licenseName`); `POST /Client/License/Reconfigure` re-consumes every license the
  client's installed agents need, all or nothing, capacity permitting;
- failures of those calls, and reads of an unknown client, are HTTP 200 with a non-zero
  `errorCode` (as the vendor does; cvpysdk checks the body, not the status).
The error codes other than 0 are the sandbox's own; docs/providers/commvault.md lists them.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator

PREFIX = "/commandcenter/api"
ERR_CLIENT_NOT_FOUND = 2
ERR_NOT_CONSUMED = 3
ERR_LICENSE_MISMATCH = 4
ERR_NO_LICENSE_AVAILABLE = 5
ERR_BAD_REQUEST = 6


class CommvaultError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def _result(code: int = 0, message: str = "") -> Response:
    return JSONResponse({"errorCode": code, "errorMessage": message})


class CommvaultSimulator(Simulator):
    name = "commvault"
    seed_resource = "commvault.yaml"
    base_path = PREFIX
    environment: ClassVar[dict[str, str]] = {
        "username_env": "admin",
        "password_env": "sandbox-commvault-password",
        "token_env": "sandbox-commvault-token",  # an access token: sent as a bearer token
    }

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        clients = {
            str(client["id"]): {
                "id": int(client["id"]),
                "name": client["name"],
                "host": client.get("host", client["name"]),
                "agents": list(client.get("agents", [])),
                "consumed": sorted(set(client.get("consumed", []))),
            }
            for client in seed.get("clients", [])
        }
        return {"clients": clients, "sessions": []}

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/Login", self.login, methods=["POST"]),
            Route(f"{PREFIX}/Client", self._authed(self.list_clients), methods=["GET"]),
            Route(f"{PREFIX}/Client/{{clientId:int}}/License",
                  self._authed(self.client_licenses), methods=["GET"]),
            Route(f"{PREFIX}/Agent", self._authed(self.list_agents), methods=["GET"]),
            Route(f"{PREFIX}/Client/License/Release", self._authed(self.release),
                  methods=["POST"]),
            Route(f"{PREFIX}/Client/License/Reconfigure", self._authed(self.reconfigure),
                  methods=["POST"]),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        async def expire(_: Request) -> Response:
            """Sandbox-only: every login token stops working (as after a session timeout)."""
            self.state["sessions"].clear()
            return JSONResponse({"expired": True})

        return [Route("/_sandbox/expire-tokens", expire, methods=["POST"])]

    # ---- auth ----------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        users: dict[str, str] = self.seed.get("users", {})
        if not isinstance(body, dict) or not body.get("username") or not body.get("password"):
            return self._login_error("Username and password are required")
        try:
            password = base64.b64decode(str(body["password"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return self._login_error("Invalid Username or Password")
        if users.get(str(body["username"])) != password:
            return self._login_error("Invalid Username or Password")
        token = f"QSDK {secrets.token_hex(16)}"
        self.state["sessions"].append(token)
        return JSONResponse({"token": token, "userName": body["username"],
                             "aliasName": "1", "userGUID": "sandbox"})

    @staticmethod
    def _login_error(message: str) -> Response:
        return JSONResponse({"errList": [{"errorCode": 5, "errLogMessage": message}]})

    def _token_valid(self, request: Request) -> bool:
        """A login session in `Authtoken`, or an access token as a bearer token."""
        authtoken = request.headers.get("Authtoken", "")
        if authtoken.startswith("QSDK "):
            return authtoken in self.state["sessions"]
        bearer = authtoken or request.headers.get("Authorization", "")
        if not bearer.startswith("Bearer "):
            return False
        return bearer.removeprefix("Bearer ") in self.seed.get("api_tokens", [])

    def _authed(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if not self._token_valid(request):
                return JSONResponse(
                    {"errorCode": 401, "errorMessage": "Access denied: invalid or expired token"},
                    status_code=401)
            try:
                return await handler(request)  # type: ignore[no-any-return]
            except CommvaultError as error:
                return _result(error.code, error.message)

        return endpoint

    # ---- reads -------------------------------------------------------------------------
    async def list_clients(self, _: Request) -> Response:
        rows = [
            {"client": {"clientEntity": {"clientId": c["id"], "clientName": c["name"],
                                         "hostName": c["host"]}}}
            for c in sorted(self.state["clients"].values(), key=lambda c: c["id"])
        ]
        return JSONResponse({"clientProperties": rows})

    async def client_licenses(self, request: Request) -> Response:
        client = self._client(request.path_params["clientId"])
        return JSONResponse({"licensesInfo": [self._license_info(name)
                                              for name in client["consumed"]]})

    async def list_agents(self, request: Request) -> Response:
        raw = request.query_params.get("clientId", "")
        if not raw.isdigit():
            raise CommvaultError(ERR_BAD_REQUEST, "clientId is required")
        client = self._client(int(raw))
        catalogue: dict[str, dict[str, Any]] = self.seed.get("agents", {})
        return JSONResponse({"agentProperties": [
            {"idaEntity": {"clientId": client["id"], "clientName": client["name"],
                           "appName": agent,
                           "applicationId": catalogue.get(agent, {}).get("applicationId", 0)}}
            for agent in client["agents"]
        ]})

    # ---- changes -------------------------------------------------------------------------
    async def release(self, request: Request) -> Response:
        body = await self._body(request)
        entity = body.get("clientEntity")
        if not isinstance(entity, dict) or not isinstance(entity.get("clientId"), int):
            raise CommvaultError(ERR_BAD_REQUEST, "clientEntity.clientId (integer) is required")
        client = self._client(entity["clientId"])
        if body.get("isClientLevelOperation") is True:
            client["consumed"] = []
            return _result()
        infos = body.get("licensesInfo")
        if not isinstance(infos, list) or not infos:
            raise CommvaultError(ERR_BAD_REQUEST, "licensesInfo is required unless "
                                                  "isClientLevelOperation is true")
        if all(isinstance(i, dict) and isinstance(i.get("license"), dict)
               and i["license"].get("licenseName") is None for i in infos):
            client["consumed"] = []  # cvpysdk's release_license() without a name: all
            return _result()
        names = [self._match(info) for info in infos]
        for name in names:
            if name not in client["consumed"]:
                raise CommvaultError(ERR_NOT_CONSUMED, f"License [{name}] is not consumed by "
                                                       f"client [{client['name']}]")
        client["consumed"] = [n for n in client["consumed"] if n not in names]
        return _result()

    async def reconfigure(self, request: Request) -> Response:
        body = await self._body(request)
        info = body.get("clientInfo")
        platforms = body.get("platformTypes")
        if not isinstance(info, dict) or not isinstance(info.get("clientId"), int):
            raise CommvaultError(ERR_BAD_REQUEST, "clientInfo.clientId (integer) is required")
        if not isinstance(platforms, list) or not platforms:
            raise CommvaultError(ERR_BAD_REQUEST, "platformTypes is required")
        client = self._client(info["clientId"])
        catalogue: dict[str, dict[str, Any]] = self.seed.get("licenses", {})
        agents: dict[str, dict[str, Any]] = self.seed.get("agents", {})
        needed = {
            name
            for agent in client["agents"]
            for name in agents.get(agent, {}).get("licenses", [])
            if catalogue.get(name, {}).get("platformType") in platforms
        }
        missing = sorted(needed - set(client["consumed"]))
        for name in missing:
            in_use = sum(1 for c in self.state["clients"].values() if name in c["consumed"])
            capacity = int(catalogue[name].get("capacity", 0))
            if in_use >= capacity:
                raise CommvaultError(ERR_NO_LICENSE_AVAILABLE,
                                     f"No license available for [{name}]: {in_use} of "
                                     f"{capacity} in use")
        client["consumed"] = sorted(set(client["consumed"]) | set(missing))
        return _result()

    # ---- helpers -------------------------------------------------------------------------
    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise CommvaultError(ERR_BAD_REQUEST, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise CommvaultError(ERR_BAD_REQUEST, "request body must be a JSON object")
        return body

    def _client(self, client_id: int) -> dict[str, Any]:
        client = self.state["clients"].get(str(client_id))
        if client is None:
            raise CommvaultError(ERR_CLIENT_NOT_FOUND, f"Client with id [{client_id}] not found")
        assert isinstance(client, dict)
        return client

    def _license_info(self, name: str) -> dict[str, Any]:
        entry = self.seed.get("licenses", {})[name]
        return {"platformType": entry["platformType"],
                "license": {"licenseType": entry["licenseType"], "appType": entry["appType"],
                            "licenseName": name}}

    def _match(self, info: Any) -> str:
        """The catalogue name of a licensesInfo entry; every field must agree."""
        license_ = info.get("license") if isinstance(info, dict) else None
        if not isinstance(license_, dict):
            raise CommvaultError(ERR_BAD_REQUEST, "licensesInfo[].license is required")
        name = license_.get("licenseName")
        catalogue: dict[str, dict[str, Any]] = self.seed.get("licenses", {})
        if name not in catalogue or self._license_info(name) != {
            "platformType": info.get("platformType"), "license": license_}:
            raise CommvaultError(ERR_LICENSE_MISMATCH, f"Unknown license {license_!r} "
                                                       f"(platformType {info.get('platformType')})")
        return str(name)
