"""In-process transport to a simulator, with network failures that look real.

`httpx.ASGITransport` re-raises an app's exception as-is and applies no timeout.
A simulator that drops a connection or stalls must look to the client as it would
over a socket (a transport error, a read timeout), so the retry code is exercised
the same way in-process and over HTTP.
"""

from __future__ import annotations

import asyncio

import httpx

from reconciler.sandbox.base import DroppedConnection


class SandboxTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")
        try:
            return await asyncio.wait_for(super().handle_async_request(request), read_timeout)
        except DroppedConnection as error:
            raise httpx.RemoteProtocolError(str(error), request=request) from None
        except TimeoutError:
            raise httpx.ReadTimeout("sandbox: no response in time", request=request) from None
