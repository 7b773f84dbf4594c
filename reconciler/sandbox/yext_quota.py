"""Yext's request quota, simulated: so many requests a window, and 429 until it restarts.

Yext caps the Management API per account: "The Management API is capped at 5,000
requests per hour" (Yext Hitchhikers, "Monitoring App Usage"; the limits page:
https://hitchhikers.yext.com/docs/managementapis/introduction/overview-policies-and-conventions/).
Every answer says where the account stands, in the headers Yext's own Go client
(github.com/yext/yext-go, `client.go`) reads: `Rate-Limit-Limit`, `Rate-Limit-Remaining`
and `Rate-Limit-Reset` (epoch seconds: when the window restarts). Once the quota is
used, every request is refused with 429 until then; the Go client then sleeps until
`Rate-Limit-Reset` (+1 s) and tries once more.

Off by default (`limit: 0`: no headers, no quota) so benchmarks are not capped. Set it
in the seed (`quota: {limit: 5000, window_s: 3600}`) or at run time with
`PUT /_sandbox/quota` (a small `limit` and a short `window_s` for tests). The window
starts with the first request counted after the previous one ended (where Yext's hour
starts is not documented), so its reset is `window_s` after that request. A refused
request does not count and does nothing. Time comes from the simulator's `clock`
(epoch seconds), which a test can replace.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CODE_RATE_LIMITED = 1007
"""The sandbox's code for a refusal over quota (Yext documents the status, not a code)."""


class QuotaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=0, ge=0)
    """Requests a window; 0 turns the quota (and its headers) off."""
    window_s: float = Field(default=3600.0, gt=0)


class Quota:
    """The account's counter for the current window."""

    def __init__(self, settings: QuotaSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.window_end: float | None = None
        self.used = 0

    def configure(self, settings: QuotaSettings) -> None:
        self.settings = settings
        self.window_end = None
        self.used = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        """Counts one request if the window has room: (allowed, the headers to answer with)."""
        limit = self.settings.limit
        now = self.clock()
        if self.window_end is None or now >= self.window_end:
            self.window_end = now + self.settings.window_s
            self.used = 0
        allowed = self.used < limit
        if allowed:
            self.used += 1
        return allowed, {"Rate-Limit-Limit": str(limit),
                         "Rate-Limit-Remaining": str(limit - self.used),
                         "Rate-Limit-Reset": str(math.ceil(self.window_end))}

    def describe(self) -> dict[str, Any]:
        return {**self.settings.model_dump(), "used": self.used, "window_end": self.window_end}


class QuotaGate:
    """ASGI middleware in front of the simulator: headers on every vendor answer, 429 over
    quota. `/_sandbox/` endpoints are neither counted nor refused."""

    def __init__(self, quota: Quota, app: ASGIApp, record: Callable[[dict[str, Any]], None],
                 admin_prefix: str) -> None:
        self.quota = quota
        self.app = app
        self.record = record
        self.admin_prefix = admin_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or self.quota.settings.limit <= 0
                or str(scope["path"]).startswith(self.admin_prefix)):
            await self.app(scope, receive, send)
            return
        allowed, headers = self.quota.take()
        if not allowed:
            self.record({"method": scope["method"], "path": scope["path"],
                         "raw_path": scope["path"],
                         "query": scope.get("query_string", b"").decode("latin-1"),
                         "body": None, "headers": {}, "status": 429})
            await refusal(headers)(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())]}
            await send(message)

        await self.app(scope, receive, with_headers)


def refusal(headers: dict[str, str]) -> Response:
    """Yext's envelope with one error; the status and the headers are what clients read."""
    error = {"name": "", "code": CODE_RATE_LIMITED, "type": "FATAL_ERROR",
             "message": f"Rate limit exceeded: {headers['Rate-Limit-Limit']} requests per "
                        f"window; it resets at {headers['Rate-Limit-Reset']}"}
    return JSONResponse({"meta": {"uuid": str(uuid.uuid4()), "errors": [error]}, "response": {}},
                        status_code=429, headers=headers)


async def settings_endpoint(quota: Quota, request: Request) -> Response:
    """`GET|PUT /_sandbox/quota`: read or replace the quota (a PUT starts a fresh window)."""
    if request.method == "PUT":
        try:
            quota.configure(QuotaSettings.model_validate(await request.json()))
        except ValueError as error:  # pydantic's ValidationError, or a body that is not JSON
            return JSONResponse({"detail": str(error)}, status_code=400)
    return JSONResponse(quota.describe())
