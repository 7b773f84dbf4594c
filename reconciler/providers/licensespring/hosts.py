"""The Management API's host, reached through the provider's own HTTP client.

LicenseSpring serves reads (Management API, `saas.licensespring.com`) and changes
(License API, `api.licensespring.com`) on two hosts. A `Call` holds no host and
`VendorHttp` sends every call to its client's base URL, so reads go through a second
`VendorHttp` that shares the first one's limits (rate, concurrency, retries) and whose
client only builds URLs on the Management host: it hands each request to the
provider's own client, so the transport (network or sandbox) still comes from outside
and nothing here opens a socket of its own.

Workaround until the core gives a provider one `VendorHttp` per configured host.
"""

from __future__ import annotations

import copy

import httpx

from reconciler.http import VendorHttp


class _Through(httpx.AsyncBaseTransport):
    """Sends an already-built request (absolute URL) with another client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        """The underlying client belongs to the caller, who closes it."""


def on_host(http: VendorHttp, base_url: str) -> VendorHttp:
    """`http` with the same limits, building its URLs on `base_url` instead."""
    other = copy.copy(http)
    other.client = httpx.AsyncClient(
        base_url=base_url, transport=_Through(http.client), timeout=http.client.timeout
    )
    return other
