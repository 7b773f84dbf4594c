"""Calls sent straight to our aiohttp transport, without httpx's client machinery.

Why: on a 2-core runner the client's own CPU per request sets the pace of an apply
and of a per-client read (issue 23). Measured in place, on the event loop among
other requests (benchmarks/client_cpu.py), building an `httpx.Request` cost
~0.14 ms, most of it parsing a URL that `http.joined_url` had just written as a
string, and `AsyncClient.send` another ~0.1 ms on auth, redirect and cookie steps
that our clients never use. Together with the objects they build, a request cost
0.7 ms; sent this way it costs 0.4 ms (bare aiohttp: 0.2).

So when a client sends through `AiohttpTransport` (its own, or the one mounted for a
proxy) and has nothing `send` would act on (no auth, no cookies, no request hooks, no
redirect following), a `DirectSender` encodes the request itself: the same method,
URL, header list and body bytes as `client.build_request` (pinned by
tests/unit/test_wire.py), sent through the same transport with the same exception
mapping. The answer is an `httpx.Response` whose `request` is built only when
something asks for it (a response hook, an error). What `send` does that still
matters is done here too: response hooks run, cookies a vendor sets are kept for the
next calls (which then go through `send`), and httpx's own log line is written when
its logger is on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx._content import encode_request  # the body bytes and headers httpx would send

from reconciler.transport import AiohttpTransport, aiohttp_timeout

_HTTPX_LOG = logging.getLogger("httpx")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One attempt's request as it goes on the wire."""

    method: str
    url: str = field(repr=False)  # may hold an API key in its query; headers and body may
    headers: list[tuple[str, str]] = field(repr=False)  # hold credentials: none is printed
    body: bytes = field(repr=False)

    def as_request(self) -> httpx.Request:
        """The same request as httpx's own object (a hook or an exception names it)."""
        return httpx.Request(self.method, self.url, headers=self.headers, content=self.body)


class WireResponse(httpx.Response):
    """An `httpx.Response` whose `request` is made on first use."""

    _outgoing: Outgoing

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = self._outgoing.as_request()
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value

    def raise_for_status(self) -> httpx.Response:
        self._request = self.request  # httpx reads `_request` here, not the property
        return super().raise_for_status()


class DirectSender:
    """Sends a client's calls through its `AiohttpTransport` directly (see module doc)."""

    def __init__(self, client: httpx.AsyncClient, transport: AiohttpTransport) -> None:
        self.client = client
        self.transport = transport
        self._host = client.base_url.netloc.decode("ascii")

    @classmethod
    def of(cls, client: httpx.AsyncClient) -> DirectSender | None:
        """A sender for `client` when httpx would send its calls through one of our
        aiohttp transports (its own, or the one mounted for a proxy). Every call goes
        to the base URL's scheme, host and port, so one transport serves them all."""
        transport = _transport_for_base(client)
        if not isinstance(transport, AiohttpTransport):
            return None
        return cls(client, transport)

    def usable(self) -> bool:
        """Whether `client.send` would do nothing this path leaves out. Checked per
        call: hooks, cookies and even the transport can change after a client is made."""
        client = self.client
        return (_transport_for_base(client) is self.transport
                and client.auth is None and not client.follow_redirects
                and not client.event_hooks["request"] and not client.cookies.jar)

    def outgoing(self, method: str, url: str, headers: Mapping[str, str], json: Any,
                 form: dict[str, str] | None) -> Outgoing:
        """What `client.build_request(method, url, json=..., data=..., headers=...)`
        puts on the wire, for a `url` already joined to the client's base URL."""
        body_headers, stream = encode_request(data=form, json=json)
        merged = httpx.Headers(self.client.headers)
        merged.update(headers)
        for name, value in body_headers.items():
            merged.setdefault(name, value)
        lines = [("Host", self._host)] if "Host" not in merged else []
        if method in ("POST", "PUT", "PATCH") and "Content-Length" not in merged \
                and "Transfer-Encoding" not in merged:
            lines.append(("Content-Length", "0"))
        lines.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in merged.raw)
        if not isinstance(stream, httpx.ByteStream):  # pragma: no cover - json and form are
            raise TypeError("a body httpx would stream")  # always bytes in hand
        return Outgoing(method, url, lines, b"".join(stream))

    async def send(self, outgoing: Outgoing) -> httpx.Response:
        """One request on the wire; hooks, cookies and the log line as `send` has them."""
        client = self.client
        timeout = client.timeout
        started = time.perf_counter()
        answer = await self.transport.exchange(
            outgoing.method, outgoing.url, outgoing.headers, outgoing.body,
            aiohttp_timeout(timeout.pool, timeout.connect, timeout.read), outgoing.as_request)
        response = WireResponse(answer.status, headers=answer.headers, content=answer.content,
                                extensions=answer.extensions)
        response._outgoing = outgoing
        response.default_encoding = client._default_encoding
        response.elapsed = dt.timedelta(seconds=time.perf_counter() - started)
        if "set-cookie" in response.headers:
            client.cookies.extract_cookies(response)
        if _HTTPX_LOG.isEnabledFor(logging.INFO):
            _HTTPX_LOG.info('HTTP Request: %s %s "%s %d %s"', outgoing.method, outgoing.url,
                            response.http_version, response.status_code,
                            response.reason_phrase)
        for hook in client.event_hooks["response"]:
            await hook(response)
        return response


def _transport_for_base(client: httpx.AsyncClient) -> httpx.AsyncBaseTransport:
    """The transport httpx picks for the client's base URL: a mount (a proxy, or none
    for a `NO_PROXY` host) or its own."""
    return client._transport_for_url(client.base_url)
