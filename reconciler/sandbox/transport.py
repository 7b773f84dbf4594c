"""In-process transport to a simulator, with dropped connections that look real.

`httpx.ASGITransport` re-raises an app's exception as-is; a simulator that drops
a connection must instead look to the client like a network failure, as it would
over a socket, so retry code is exercised the same way in-process and over HTTP.
"""

from __future__ import annotations

import httpx

from reconciler.sandbox.base import DroppedConnection


class SandboxTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except DroppedConnection as error:
            raise httpx.RemoteProtocolError(str(error), request=request) from None
