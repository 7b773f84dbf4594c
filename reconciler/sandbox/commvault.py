"""Simulator of the Commvault Command Center REST API (client licenses).

Written from Commvault's API reference (api.commvault.com, documentation.commvault.com)
and from what the official SDK, cvpysdk, sends and reads; never from reconciler's
provider. cvpysdk runs against it unmodified. Rules enforced:
- paths are matched case-insensitively under `/commandcenter/api` or `/webconsole/api`,
  as the vendor's web server does; `GET <base>/` answers 200 (cvpysdk's service check);
- `POST /Login` takes `username` and a base64 `password`; a wrong one answers HTTP 200
  with `{"errList": [{"errorCode", "errLogMessage"}]}`, the shape cvpysdk reads;
- every other call needs `Authtoken`: a login session (`QSDK ...`) or an API access
  token (`QSDK <token>` as cvpysdk sends a bare token, or `Bearer <token>`); anything
  else is HTTP 401. An expired session can be renewed once with `POST /RenewLoginToken`
  (cvpysdk sends that with the expired token), and ends with `POST /Logout`;
- `POST /Client/License/Release` (release-license reference): `clientEntity.clientId`,
  and `licensesInfo[]` with `platformType` and `license.appType` are required;
  `isClientLevelOperation` defaults to false; when true, appType must be 0 and every
  license of that platform type is released; otherwise each entry names one consumed
  license (name, platformType, appType, and licenseType when given, must all agree);
- `POST /Client/License/Reconfigure` re-consumes every license the client's installed
  agents need, all or nothing, capacity permitting;
- failures of those calls, and reads of an unknown client, are HTTP 200 with a non-zero
  `errorCode` (as the vendor does; cvpysdk checks the body, not the status); unknown
  paths are 404 and wrong methods 405, both `{"errorCode", "errorMessage"}`.
The non-zero error codes are the sandbox's own; docs/providers/commvault.md lists them.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator

PREFIX = "/commandcenter/api"
PREFIXES = re.compile(r"^/(?:commandcenter|webconsole)/api(?=/|$)", re.IGNORECASE)
ERR_ACCESS_DENIED = 5
ERR_CLIENT_NOT_FOUND = 2
ERR_NOT_CONSUMED = 3
ERR_LICENSE_MISMATCH = 4
ERR_NO_LICENSE_AVAILABLE = 5
ERR_BAD_REQUEST = 6
ERR_MEDIA_AGENT_FIRST = 7
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]

Handler = Callable[[Request, re.Match[str]], Awaitable[Response]]


class CommvaultError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def _result(code: int = 0, message: str = "", status: int = 200) -> Response:
    return JSONResponse({"errorCode": code, "errorMessage": message}, status_code=status)


class CommvaultSimulator(Simulator):
    name = "commvault"
    seed_resource = "commvault.yaml"
    base_path = PREFIX
    environment: ClassVar[dict[str, str]] = {
        "username_env": "admin",
        "password_env": "sandbox-commvault-password",
        "token_env": "sandbox-commvault-token",  # an API access token
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
        # session token -> user name; `expired` sessions may still be renewed once.
        return {"clients": clients, "sessions": {}, "expired": {}}

    # ---- routing ---------------------------------------------------------------------
    def _table(self) -> list[tuple[str, re.Pattern[str], Handler, bool]]:
        """(method, path pattern after the prefix, handler, needs a token)."""
        def route(method: str, pattern: str, handler: Handler,
                  authed: bool = True) -> tuple[str, re.Pattern[str], Handler, bool]:
            return method, re.compile(f"^{pattern}$", re.IGNORECASE), handler, authed

        return [
            route("GET", r"/?", self.service, authed=False),
            route("POST", r"/Login", self.login, authed=False),
            route("POST", r"/RenewLoginToken", self.renew, authed=False),
            route("POST", r"/Logout", self.logout),
            route("POST", r"/WhoAmI", self.who_am_i),
            route("GET", r"/Client", self.list_clients),
            route("GET", r"/VSAClientAndClientGroupList", self.vsa_nodes),
            route("GET", r"/Client/(?P<id>\d+)", self.client),
            route("GET", r"/Client/(?P<id>\d+)/License", self.client_licenses),
            route("GET", r"/Agent", self.list_agents),
            route("POST", r"/Client/License/Release", self.release),
            route("POST", r"/Client/License/Reconfigure", self.reconfigure),
        ]

    def routes(self) -> list[BaseRoute]:
        table = self._table()

        async def dispatch(request: Request) -> Response:
            prefix = PREFIXES.match(request.url.path)
            if prefix is None:
                return _result(404, f"No such resource: {request.url.path}", 404)
            rest = request.url.path[prefix.end():]
            matches = [(m, entry) for entry in table if (m := entry[1].match(rest))]
            chosen = [(m, e) for m, e in matches if e[0] == request.method]
            if not chosen:
                if matches:
                    return _result(405, f"Method {request.method} is not allowed for "
                                        f"{request.url.path}", 405)
                return _result(404, f"No such resource: {request.url.path}", 404)
            found, (_, _, handler, authed) = chosen[0]
            if authed and self._user_of(request) is None:
                return _result(ERR_ACCESS_DENIED, "Access denied", 401)
            try:
                return await handler(request, found)
            except CommvaultError as error:
                return _result(error.code, error.message)

        return [Route("/{path:path}", dispatch, methods=ALL_METHODS)]

    def admin_routes(self) -> list[BaseRoute]:
        async def expire(_: Request) -> Response:
            """Sandbox-only: every session stops working (as after a session timeout);
            each can still be renewed once, as the vendor's RenewLoginToken allows."""
            self.state["expired"].update(self.state["sessions"])
            self.state["sessions"].clear()
            self.save()
            return JSONResponse({"expired": True})

        return [Route("/_sandbox/expire-tokens", expire, methods=["POST"])]

    # ---- auth --------------------------------------------------------------------------
    async def service(self, _: Request, __: re.Match[str]) -> Response:
        """The web service's root: cvpysdk's `_is_valid_service` needs a 200 here."""
        return JSONResponse({"service": "commandcenter", "status": "running"})

    async def login(self, request: Request, _: re.Match[str]) -> Response:
        body = await self._body_or_none(request)
        users: dict[str, str] = self.seed.get("users", {})
        if not isinstance(body, dict) or not body.get("username") or not body.get("password"):
            return self._login_error("Username and password are required")
        try:
            password = base64.b64decode(str(body["password"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return self._login_error("Invalid Username or Password")
        if users.get(str(body["username"])) != password:
            return self._login_error("Invalid Username or Password")
        token = self._new_session(str(body["username"]))
        return JSONResponse({"token": token, "userName": body["username"],
                             "aliasName": "1", "userGUID": "sandbox"})

    async def renew(self, request: Request, _: re.Match[str]) -> Response:
        """`{"sessionId": <token>, "deviceId"}` → a new token; the old one stops working."""
        body = await self._body_or_none(request)
        old = body.get("sessionId") if isinstance(body, dict) else None
        user = None
        if isinstance(old, str):
            user = self.state["sessions"].pop(old, None) or self.state["expired"].pop(old, None)
        if user is None:
            return JSONResponse({"error": {"errorCode": ERR_ACCESS_DENIED,
                                           "errLogMessage": "Session is not valid for renewal"}})
        return JSONResponse({"token": self._new_session(str(user))})

    async def logout(self, request: Request, _: re.Match[str]) -> Response:
        self.state["sessions"].pop(request.headers.get("Authtoken", ""), None)
        return PlainTextResponse("User logged out")

    async def who_am_i(self, request: Request, _: re.Match[str]) -> Response:
        user = self._user_of(request)
        return JSONResponse({"user": {"userName": user, "userId": 1}})

    def _new_session(self, user: str) -> str:
        token = f"QSDK {secrets.token_hex(16)}"
        self.state["sessions"][token] = user
        return token

    @staticmethod
    def _login_error(message: str) -> Response:
        return JSONResponse({"errList": [{"errorCode": 5, "errLogMessage": message}]})

    def _user_of(self, request: Request) -> str | None:
        """Whose session or access token `Authtoken` carries (None: not valid)."""
        authtoken = request.headers.get("Authtoken", "")
        if authtoken in self.state["sessions"]:
            return str(self.state["sessions"][authtoken])
        for prefix in ("QSDK ", "Bearer "):
            if authtoken.startswith(prefix):
                token = authtoken.removeprefix(prefix)
                if token in self.seed.get("api_tokens", []):
                    return "admin"
        return None

    # ---- reads -------------------------------------------------------------------------
    def _entity(self, client: dict[str, Any]) -> dict[str, Any]:
        return {"clientId": client["id"], "clientName": client["name"],
                "hostName": client["host"], "displayName": client["name"],
                "_type_": 3, "clientGUID": f"sandbox-{client['id']:08d}"}

    async def list_clients(self, _: Request, __: re.Match[str]) -> Response:
        rows = [{"client": {"cvdPort": 8400, "clientEntity": self._entity(c)}}
                for c in sorted(self.state["clients"].values(), key=lambda c: c["id"])]
        return JSONResponse({"clientProperties": rows})

    async def vsa_nodes(self, _: Request, __: re.Match[str]) -> Response:
        rows = [{"clientId": c["id"], "clientName": c["name"], "displayName": c["name"],
                 "hostName": c["host"]}
                for c in sorted(self.state["clients"].values(), key=lambda c: c["id"])
                if "Virtual Server" in c["agents"]]
        return JSONResponse({"clients": rows})

    async def client(self, _: Request, found: re.Match[str]) -> Response:
        client = self._client(int(found["id"]))
        return JSONResponse({"clientProperties": [client_properties(self._entity(client))]})

    async def client_licenses(self, _: Request, found: re.Match[str]) -> Response:
        client = self._client(int(found["id"]))
        return JSONResponse({"licensesInfo": [self._license_info(name)
                                              for name in client["consumed"]]})

    async def list_agents(self, request: Request, _: re.Match[str]) -> Response:
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
    async def release(self, request: Request, _: re.Match[str]) -> Response:
        body = await self._body(request)
        entity = body.get("clientEntity")
        if not isinstance(entity, dict) or not isinstance(entity.get("clientId"), int):
            raise CommvaultError(ERR_BAD_REQUEST, "clientEntity.clientId (integer) is required")
        infos = body.get("licensesInfo")
        if not isinstance(infos, list) or not infos:
            raise CommvaultError(ERR_BAD_REQUEST, "licensesInfo is required")
        for info in infos:
            license_ = info.get("license") if isinstance(info, dict) else None
            if not isinstance(license_, dict) or not isinstance(info.get("platformType"), int) \
                    or not isinstance(license_.get("appType"), int):
                raise CommvaultError(ERR_BAD_REQUEST, "licensesInfo[].platformType and "
                                                      "licensesInfo[].license.appType are "
                                                      "required integers")
        client = self._client(entity["clientId"])
        level = body.get("isClientLevelOperation", False)
        if not isinstance(level, bool):
            raise CommvaultError(ERR_BAD_REQUEST, "isClientLevelOperation must be a boolean")
        if level:
            return self._release_client(client, infos)
        names = [self._match(info) for info in infos]
        for name in names:
            if name not in client["consumed"]:
                raise CommvaultError(ERR_NOT_CONSUMED, f"License [{name}] is not consumed by "
                                                       f"client [{client['name']}]")
        client["consumed"] = [n for n in client["consumed"] if n not in names]
        return _result()

    def _release_client(self, client: dict[str, Any], infos: list[Any]) -> Response:
        """Client level: every license of the named platform types (MediaAgent ones,
        platformType 2, must be released before the client's own, as the reference says)."""
        if any(info["license"]["appType"] != 0 for info in infos):
            raise CommvaultError(ERR_BAD_REQUEST, "appType must be 0 when "
                                                  "isClientLevelOperation is true")
        platforms = {info["platformType"] for info in infos}
        held = {name: self._license_info(name)["platformType"] for name in client["consumed"]}
        if 2 not in platforms and 2 in held.values() and platforms - {2}:
            raise CommvaultError(ERR_MEDIA_AGENT_FIRST, "Release the MediaAgent licenses of "
                                                        f"client [{client['name']}] first")
        client["consumed"] = sorted(n for n, p in held.items() if p not in platforms)
        return _result()

    async def reconfigure(self, request: Request, _: re.Match[str]) -> Response:
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
    @staticmethod
    async def _body_or_none(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    async def _body(self, request: Request) -> dict[str, Any]:
        body = await self._body_or_none(request)
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

    def _match(self, info: dict[str, Any]) -> str:
        """The catalogue name of an agent-level entry: name, platformType and appType must
        agree, and licenseType too when the request gives it (the template omits it)."""
        license_ = info["license"]
        name = license_.get("licenseName")
        catalogue: dict[str, dict[str, Any]] = self.seed.get("licenses", {})
        entry = catalogue.get(name) if isinstance(name, str) else None
        if entry is None or entry["platformType"] != info["platformType"] \
                or entry["appType"] != license_["appType"] \
                or license_.get("licenseType", entry["licenseType"]) != entry["licenseType"]:
            raise CommvaultError(ERR_LICENSE_MISMATCH, f"Unknown license {license_!r} "
                                                       f"(platformType {info['platformType']})")
        return str(name)


def client_properties(entity: dict[str, Any]) -> dict[str, Any]:
    """`GET /Client/{id}` → `clientProperties[0]`: the fields the client-properties page
    lists and cvpysdk's `Client` reads when it is created (OS, CVD port, time zone,
    version, activity control). Values are a plain Windows file server's."""
    return {
        "client": {
            "clientEntity": entity,
            "osInfo": {"Type": "Windows", "SubType": "Server",
                       "OsDisplayInfo": {"ProcessorType": "WinX64",
                                         "OSName": "Windows Server 2022 Datacenter"}},
            "cvdPort": 8400,
            "TimeZone": {"TimeZoneName": "(UTC) Coordinated Universal Time"},
            "versionInfo": {"version": "ServicePack:36.0", "GalaxyRelease": {
                "ReleaseString": "11.36"}},
            "installDirectory": "C:\\Program Files\\Commvault\\ContentStore",
        },
        "clientProps": {
            "activityControl": {"EnableDataRecovery": True, "EnableDataManagement": True,
                                "EnableOnlineContentIndex": False},
            "clientActivityControl": {"activityControlOptions": [
                {"activityType": 1, "enableActivityType": True},
                {"activityType": 2, "enableActivityType": True},
                {"activityType": 16, "enableActivityType": True},
            ]},
            "EnableSnapBackups": False,
        },
    }
