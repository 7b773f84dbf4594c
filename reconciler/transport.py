"""The network transport under every vendor client: aiohttp's HTTP/1.1 behind httpx's API.

Providers, retries and tests speak httpx (`httpx.Request`, `httpx.Response`, its
exceptions); only the bytes on the wire move to aiohttp here. Why: on a 2-core runner
httpx's own transport (httpcore) cost 1.3-2 ms of CPU per request at 16 connections
(it scans every pooled connection on each request and calls `getpeername` for each
idle one), so the client, not the vendor's limit, set the pace of an apply. aiohttp's
connector takes one idle connection off a per-host stack.

Choose with `RECONCILER_HTTP_TRANSPORT=aiohttp|httpx` (default `aiohttp`); `httpx`
keeps httpcore's pool, sized the same way.

The exception mapping is ours, because retries depend on it (`http._never_reached_vendor`):
only a failure while *connecting* (refused, DNS, TLS handshake, connect timeout)
becomes `httpx.ConnectError` / `httpx.ConnectTimeout`, "never reached the vendor",
safe to send again. Anything after the connection was made (a reset or disconnect
while writing or reading, a read timeout, a truncated body) means the request may
have been written and acted on: it becomes `httpx.ReadError`, `httpx.RemoteProtocolError`
or `httpx.ReadTimeout`, "in doubt", never resent for a one-shot call. aiohttp's own
resend of idempotent methods on a reused connection is switched off for the same
reason: whether a call may be sent twice is the provider's decision (`repeatable`).
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx
from httpx._utils import get_environment_proxies  # what httpx's own clients read

from reconciler.errors import ReconcilerError
from reconciler.secrets import REDACTOR

if TYPE_CHECKING:
    import aiohttp  # imported on first use: ~0.1 s of every command's start, and
    # `--sandbox` runs never need it

TRANSPORT_ENV: Final = "RECONCILER_HTTP_TRANSPORT"
TRANSPORTS: Final = ("aiohttp", "httpx")
DEFAULT_TRANSPORT: Final = "aiohttp"


def chosen_transport() -> str:
    """The transport `RECONCILER_HTTP_TRANSPORT` names, or the default; a typo is an error."""
    name = os.environ.get(TRANSPORT_ENV, "").strip().lower() or DEFAULT_TRANSPORT
    if name not in TRANSPORTS:
        raise ReconcilerError(f"{TRANSPORT_ENV}={name!r}: must be one of {', '.join(TRANSPORTS)}")
    return name


def network_transport(connections: int, name: str | None = None,
                      proxy: str | None = None) -> httpx.AsyncBaseTransport:
    """A transport to the network holding at most `connections` connections, through
    `proxy` when given (`http://[user:password@]host:port`).

    The pool is as large as the provider's `limits.concurrency`: calls in flight
    never wait for a connection, and no connection is opened that is never used.
    """
    chosen = name or chosen_transport()
    if chosen == "httpx":
        pool = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncHTTPTransport(limits=pool, proxy=proxy)
    return AiohttpTransport(connections, proxy)


def proxy_mounts(connections: int, name: str | None = None
                 ) -> dict[str, httpx.AsyncBaseTransport | None]:
    """The proxies the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    `NO_PROXY`), as the client's mounts: what httpx itself does for a client made
    without a transport, and stops doing once one is given. Empty when no proxy is set.

    Why: behind a corporate proxy a vendor is reachable only through it; without these
    mounts every call would try to connect directly and fail. A proxy's password is
    masked in every output from here on. This machine's own loopback is never proxied
    (as Go's `ProxyFromEnvironment` does): no proxy can reach it, and a sandbox served
    on it (`reconciler sandbox serve`) must work on a machine with a proxy set.
    """
    found = get_environment_proxies()
    if not any(found.values()):
        return {}
    mounts: dict[str, httpx.AsyncBaseTransport | None] = dict.fromkeys(_LOOPBACK)
    for pattern, proxy in found.items():
        if proxy is not None:
            _proxy_parts(proxy)  # a clear error for either transport, before any call
        mounts[pattern] = None if proxy is None else network_transport(connections, name, proxy)
    return mounts


@contextmanager
def _mapped(request_of: Callable[[], httpx.Request]) -> Iterator[None]:
    """aiohttp's exceptions as httpx's, split by whether the request may have been written.

    Order matters: the connect-phase classes are subclasses of `ClientOSError`.
    `request_of` makes the request an exception names: only when one is raised.
    """
    import aiohttp

    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        # Raised only while waiting for or opening a connection: nothing was written.
        raise httpx.ConnectTimeout(_text(error), request=request_of()) from error
    except aiohttp.ClientConnectorError as error:
        # Refused, DNS, TLS handshake or certificate: the request was never written.
        raise httpx.ConnectError(_text(error), request=request_of()) from error
    except aiohttp.SocketTimeoutError as error:
        raise httpx.ReadTimeout(_text(error), request=request_of()) from error
    except aiohttp.ServerDisconnectedError as error:
        raise httpx.RemoteProtocolError(_text(error), request=request_of()) from error
    except aiohttp.ClientPayloadError as error:
        raise httpx.RemoteProtocolError(_text(error), request=request_of()) from error
    except aiohttp.InvalidURL as error:
        raise httpx.UnsupportedProtocol(_text(error), request=request_of()) from error
    except (aiohttp.ClientError, OSError) as error:
        # A reset or any other failure once connected: the vendor may have the request.
        raise httpx.ReadError(_text(error), request=request_of()) from error
    except TimeoutError as error:
        raise httpx.ReadTimeout(_text(error) or "timed out", request=request_of()) from error


def _text(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


_NO_AUTO_HEADERS: Final = ("Content-Type",)
"""aiohttp adds `Content-Type: application/octet-stream` to a body without one; httpx's
request says exactly which headers go, so nothing is added."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A response read in full: what `httpx.Response` is built from."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes
    extensions: dict[str, Any]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests sent by an `aiohttp.ClientSession`, responses read in full.

    Stateless like a transport should be: no cookie jar (httpx's client keeps
    cookies), no redirects (httpx's client follows them or not), no decompression
    (the raw body goes to httpx, which decodes per `Content-Encoding` as it would
    for its own transport), TLS through httpx's default context (same CA bundle and
    `SSL_CERT_FILE` handling). The session is made on first use, inside the running
    event loop.
    """

    def __init__(self, connections: int, proxy: str | None = None) -> None:
        self._connections = max(connections, 1)
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None
        self._proxy_authorization: str | None = None
        if proxy is not None:
            self._proxy, self._proxy_authorization = _proxy_parts(proxy)

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._connections, limit_per_host=0, ssl=_tls_context()
        )
        session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None), trust_env=False,
        )
        # aiohttp resends an idempotent method (PUT, DELETE too) once when a reused
        # connection fails after the request was written; only our retry policy may.
        # Its own test client switches this off the same way (aiohttp/test_utils.py).
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        timeouts = request.extensions.get("timeout", {})
        answer = await self.exchange(
            request.method, str(request.url), headers, body, aiohttp_timeout(
                timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read")),
            lambda: request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.content,
                              extensions=answer.extensions, request=request)

    async def exchange(self, method: str, url: str, headers: list[tuple[str, str]],
                       body: bytes, timeout: aiohttp.ClientTimeout,
                       request_of: Callable[[], httpx.Request]) -> Answer:
        """Sends one request already encoded (`url` percent-encoded, `headers` complete,
        `body` bytes) and reads its answer in full; failures raised as httpx's, via
        `_mapped`. `request_of` builds the httpx request an exception names."""
        from yarl import URL

        session = self._session
        if session is None or session.closed:
            session = self._session = self._open()
        proxy_headers: dict[str, str] | None = None
        if self._proxy_authorization is not None:
            # aiohttp sends `proxy_headers` with a CONNECT (an https target) only; to a
            # plain-http target the proxy reads the request's own headers.
            if url.startswith("https:"):
                proxy_headers = {"Proxy-Authorization": self._proxy_authorization}
            else:
                headers = [*headers, ("Proxy-Authorization", self._proxy_authorization)]
        with _mapped(request_of):
            async with session.request(
                method, URL(url, encoded=True), headers=headers, data=body or None,
                allow_redirects=False, timeout=timeout, skip_auto_headers=_NO_AUTO_HEADERS,
                proxy=self._proxy, proxy_headers=proxy_headers,
            ) as response:
                content = await response.read()
                version = response.version
        return Answer(
            response.status,
            list(response.raw_headers),
            content,
            {"http_version": f"HTTP/{version.major}.{version.minor}".encode()
             if version else b"HTTP/1.1",
             "reason_phrase": (response.reason or "").encode("latin-1", "replace")},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_LOOPBACK: Final = ("all://localhost", "all://127.0.0.1", "all://[::1]")


def _proxy_parts(proxy: str) -> tuple[str, str | None]:
    """A proxy URL without its credentials, and those as a `Proxy-Authorization` value."""
    from yarl import URL

    REDACTOR.register_url(proxy)
    parsed = URL(proxy)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ReconcilerError(
            f"proxy {REDACTOR.text(proxy)!r} (from HTTPS_PROXY, HTTP_PROXY or ALL_PROXY): "
            "only http:// and https:// proxies with a host are supported")
    if parsed.user is None:
        return str(parsed), None
    credentials = f"{parsed.user}:{parsed.password or ''}".encode("latin-1")
    return str(parsed.with_user(None)), "Basic " + base64.b64encode(credentials).decode("ascii")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (certifi, `SSL_CERT_FILE`), built once per process:
    loading the CA bundle costs ~70 ms, and every provider's transport needs it."""
    return httpx.create_ssl_context()


@functools.lru_cache(maxsize=32)
def aiohttp_timeout(pool: float | None, connect: float | None,
                    read: float | None) -> aiohttp.ClientTimeout:
    """httpx's timeouts (`Timeout.as_dict()`) as aiohttp's, made once per set of values.

    aiohttp's `connect` covers waiting for a pooled connection and opening one."""
    import aiohttp

    return aiohttp.ClientTimeout(total=None, connect=_sum(pool, connect),
                                 sock_connect=connect, sock_read=read)


def _sum(first: float | None, second: float | None) -> float | None:
    """Both timeouts, or None when either is unbounded (aiohttp's `connect` covers both)."""
    if first is None or second is None:
        return None
    return first + second
