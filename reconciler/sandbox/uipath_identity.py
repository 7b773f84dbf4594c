"""UiPath's identity side, simulated: ROPC for host admins, client credentials for apps.

Split from the licensing simulator (reconciler/sandbox/uipath.py) so each reads on its
own: here how tokens are issued, expire and are checked (401 for a missing, unknown
or expired token; 403 for the other kind of token or a missing permission), there
what a license call does. Written from UiPath's API guide, as the simulator is.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]
READ_SCOPES = frozenset({"PM.License", "PM.License.Read"})
WRITE_SCOPES = frozenset({"PM.License", "PM.License.Write"})
DEFAULT_TOKEN_TTL_S = 1800
"""The ROPC reference: "By default, the access token is valid for 30 minutes"."""


class UiPathError(Exception):
    """A refusal, answered as `{"message": ..., "errorCode": status}` with that status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class UiPathIdentity:
    """Token endpoints and the guard every license endpoint sits behind."""

    state: dict[str, Any]
    seed: dict[str, Any]

    def _issue(self, kind: str, scopes: list[str]) -> str:
        token = secrets.token_urlsafe(24)
        ttl = float(self.seed.get("token_ttl_s", DEFAULT_TOKEN_TTL_S))
        self.state["tokens"][token] = {"kind": kind, "scopes": scopes,
                                       "expires": time.time() + ttl}
        return token

    async def authenticate(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        admins: dict[str, str] = self.seed.get("host_admins", {})
        if (not isinstance(body, dict) or body.get("TenancyName") != "Host"
                or admins.get(str(body.get("UsernameOrEmailAddress"))) != body.get("Password")):
            # The envelope servers since 2018 answer (quoted on UiPath's forum, HTTP 400),
            # not the 2016 `{"result": null, "success": false, "error": {...}, "__abp"}`.
            return JSONResponse({"message": "Invalid username/email address or password.",
                                 "errorCode": 1000, "resourceIds": None}, status_code=400)
        return JSONResponse({"result": self._issue("host", []), "targetUrl": None,
                             "success": True, "error": None, "unAuthorizedRequest": False,
                             "__abp": True})

    async def client_token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        apps: dict[str, Any] = self.seed.get("external_apps", {})
        app = apps.get(form.get("client_id", ""))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if app is None or app.get("secret") != form.get("client_secret"):
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        scopes = form.get("scope", "").split()
        if not scopes or set(scopes) - set(app.get("scopes", [])):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        return JSONResponse({"access_token": self._issue("app", scopes), "token_type": "Bearer",
                             "expires_in": int(self.seed.get("token_ttl_s",
                                                             DEFAULT_TOKEN_TTL_S)),
                             "scope": " ".join(scopes)})

    def _guard(self, kind: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("Authorization", "")
            token = self.state["tokens"].get(header.removeprefix("Bearer ").strip())
            if not header.startswith("Bearer ") or token is None or token["expires"] < time.time():
                return JSONResponse({"message": "Unauthorized: missing, unknown or expired "
                                                "token", "errorCode": 401}, status_code=401)
            if token["kind"] != kind:
                needed = "host admin (ROPC)" if kind == "host" else "external application"
                return JSONResponse({"message": f"Forbidden: this call needs a {needed} token",
                                     "errorCode": 403}, status_code=403)
            if kind == "app":
                allowed = READ_SCOPES if request.method == "GET" else WRITE_SCOPES
                if not allowed & set(token["scopes"]):
                    return JSONResponse({"message": f"Forbidden: the token's scope "
                                                    f"'{' '.join(token['scopes'])}' lacks "
                                                    f"{' or '.join(sorted(allowed))}",
                                         "errorCode": 403}, status_code=403)
            try:
                return await handler(request)
            except UiPathError as error:
                return JSONResponse({"message": error.message, "errorCode": error.status},
                                    status_code=error.status)

        return endpoint
