"""UiPath tokens: a host admin's (ROPC) and an external app's (client credentials).

Tokens are credentials, not facts: they are the one thing the provider keeps between
calls. They are added to a call at send time, never stored in it.
"""

from __future__ import annotations

import asyncio

import httpx

from reconciler.errors import VendorError
from reconciler.http import VendorHttp, describe, json_object
from reconciler.model import Call
from reconciler.providers.uipath.connection import TokenKind, UiPathConnection
from reconciler.secrets import REDACTOR, Secrets


class Tokens:
    """Fetches each kind of token once, and again only when the vendor refuses it."""

    def __init__(self, connection: UiPathConnection, http: VendorHttp, secrets: Secrets) -> None:
        self.connection = connection
        self.http = http
        self.secrets = secrets
        self._held: dict[TokenKind, str] = {}
        self._lock = asyncio.Lock()

    async def get(self, kind: TokenKind, *, stale: str | None = None) -> str:
        """The token of `kind`; a new one only when `stale` is the one held, so concurrent
        calls that all met a 401 with it log in once, not once each."""
        async with self._lock:
            held = self._held.get(kind)
            if held is not None and held != stale:
                return held
            token = await (self._host() if kind == "host" else self._app())
            REDACTOR.register(token)
            self._held[kind] = token
            return token

    async def _host(self) -> str:
        """`POST /api/account/authenticate` (ROPC, tenancy "Host") → `result`."""
        body = {"TenancyName": "Host",
                "UsernameOrEmailAddress": self.secrets.get(self.connection.host_username_env,
                                                           secret=False),
                "Password": self.secrets.get(self.connection.host_password_env)}
        response = await self.http.send(Call.to("POST", "api", "account", "authenticate",
                                                body=body), repeatable=True)
        return _token(response, "result", "host admin (ROPC)")

    async def _app(self) -> str:
        """`POST /identity_/connect/token` (client credentials) → `access_token`."""
        form = {"grant_type": "client_credentials",
                "client_id": self.secrets.get(self.connection.client_id_env, secret=False),
                "client_secret": self.secrets.get(self.connection.client_secret_env),
                "scope": self.connection.scope}
        response = await self.http.send(Call.to("POST", "identity_", "connect", "token",
                                                form=form), repeatable=True)
        return _token(response, "access_token", "external application")

    async def send(self, kind: TokenKind, call: Call, *, repeatable: bool) -> httpx.Response:
        """Sends `call` itself with a Bearer token; on a 401 gets a new token once and
        sends the same call once more."""
        token = await self.get(kind)
        response = await self.http.send(call, repeatable=repeatable, headers=_bearer(token))
        if response.status_code == 401:
            token = await self.get(kind, stale=token)
            response = await self.http.send(call, repeatable=repeatable, headers=_bearer(token))
        return response


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(response: httpx.Response, field: str, who: str) -> str:
    token = json_object(response).get(field)
    if not response.is_success or not isinstance(token, str) or not token:
        raise VendorError(f"UiPath {who} authentication failed: {describe(response)}",
                          code="auth", status=response.status_code)
    return token

