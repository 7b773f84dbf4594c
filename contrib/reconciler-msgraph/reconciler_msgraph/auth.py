"""OAuth2 client credentials against the Microsoft identity platform.

The token endpoint lives on another host than Graph (`login.microsoftonline.com`); a
`Call` holds no host, so the token call goes through the login host's own `VendorHttp`
(`reconciler.hosts`: made by the session with the same transport, its own pool and
limits, since Microsoft's limits are per service). The token is a credential, not a
fact: the one thing the provider keeps between calls, renewed before it expires and
after a 401.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from reconciler.errors import VendorError
from reconciler.hosts import Hosts
from reconciler.http import VendorHttp, json_object
from reconciler.model import Call
from reconciler.secrets import REDACTOR, Secrets
from reconciler_msgraph.connection import GRAPH_SCOPE, LOGIN_URL, GraphConnection

EARLY_RENEWAL_S = 60.0
"""A token is renewed this long before Graph would refuse it."""


class Tokens:
    """One app-only token at a time, fetched once and again only when it runs out."""

    def __init__(self, connection: GraphConnection, hosts: Hosts, secrets: Secrets) -> None:
        self.connection = connection
        self.secrets = secrets
        self.hosts = hosts
        self.login_url = secrets.optional(connection.login_url_env, LOGIN_URL).rstrip("/")
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.issued = 0
        """Tokens fetched so far (tests check renewal with it)."""

    async def get(self, *, stale: str | None = None) -> str:
        """The token; a new one when it expires soon or when `stale` is the one held
        (calls that all met a 401 with it fetch one new token, not one each)."""
        async with self._lock:
            fresh = self._token is not None and self._token != stale \
                and time.monotonic() < self._expires
            if fresh and self._token is not None:
                return self._token
            self._token, lifetime = await self._fetch()
            self._expires = time.monotonic() + max(lifetime - EARLY_RENEWAL_S, lifetime / 2)
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"client_id": self.secrets.get(self.connection.client_id_env, secret=False),
                "scope": GRAPH_SCOPE,
                "client_secret": self.secrets.get(self.connection.client_secret_env),
                "grant_type": "client_credentials"}
        tenant = self.secrets.get(self.connection.tenant_env, secret=False)
        call = Call.to("POST", tenant, "oauth2", "v2.0", "token", form=form)
        response = await self.hosts.at(self.login_url).send(call, repeatable=True)
        body = json_object(response)
        token = body.get("access_token")
        if not response.is_success or not isinstance(token, str) or not token:
            why = body.get("error_description") or body.get("error") or "no access_token"
            raise VendorError(f"Microsoft identity platform refused the client credentials: "
                              f"{why} (HTTP {response.status_code})", code="auth",
                              status=response.status_code)
        REDACTOR.register(token)
        self.issued += 1
        try:
            lifetime = float(body.get("expires_in", 3599))
        except (TypeError, ValueError):
            lifetime = 3599.0
        return token, lifetime

    async def send(self, http: VendorHttp, call: Call, *, repeatable: bool) -> httpx.Response:
        """Sends `call` with the token; after a 401, once more with a new token."""
        token = await self.get()
        response = await http.send(call, repeatable=repeatable, headers=_bearer(token))
        if response.status_code == 401:
            token = await self.get(stale=token)
            response = await http.send(call, repeatable=repeatable, headers=_bearer(token))
        return response


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
