"""Every network transport offered: what reaches the wire, and what a failure means.

Over real sockets (a served simulator, or `tests.rawserver` where a connection must
be cut at a chosen moment), once per transport in `reconciler.transport.TRANSPORTS`.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import importlib.abc
import importlib.machinery
import socket
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

import httpx
import pytest

from reconciler.errors import ReconcilerError, VendorError
from reconciler.http import RetryPolicy, VendorHttp, new_client
from reconciler.model import Call, Limits
from reconciler.sandbox.serve import ServedSimulators
from reconciler.sandbox.yext import YextSimulator
from reconciler.secrets import REDACTOR
from reconciler.transport import TRANSPORT_ENV, TRANSPORTS, chosen_transport
from tests.rawserver import OK, raw_server

RETRY = RetryPolicy(attempts=3, max_elapsed=10.0, initial_wait=0.0, max_wait=0.0)
POST = Call.to("POST", "v2", "assign", "store-100")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TRANSPORT_ENV, request.param)
    return str(request.param)


class CountingFinder(importlib.abc.MetaPathFinder):
    """First on `sys.meta_path`: records every module name an `import` had to look for."""

    def __init__(self) -> None:
        self.looked: list[str] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        self.looked.append(fullname)
        return None


@pytest.fixture(scope="module")
def served_yext() -> Iterator[str]:
    with ServedSimulators({"yext": YextSimulator()}) as served:
        yield served.urls["yext"].removesuffix(YextSimulator.base_path)


async def test_requests_never_fall_back_to_import_probing(transport, served_yext):
    """httpcore asks `import sniffio` on every request; without it installed each ask
    scans sys.path (50-65 µs, ~10 per request). No lookup at all after warm-up."""
    async with new_client(served_yext, connections=16) as client:

        async def burst() -> None:
            answers = await asyncio.gather(*(client.get("/_sandbox/faults") for _ in range(16)))
            assert all(a.status_code == 200 for a in answers)

        await burst()
        finder = CountingFinder()
        sys.meta_path.insert(0, finder)
        try:
            for _ in range(4):
                await burst()
        finally:
            sys.meta_path.remove(finder)
    assert finder.looked == [], f"imports looked up during 64 requests: {finder.looked[:10]}"


async def test_a_reset_after_the_request_was_written_is_sent_once_and_in_doubt(transport):
    async with raw_server(lambda n: None) as (server, url), new_client(url) as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RETRY)
        with pytest.raises(VendorError) as caught:
            await http.send(POST, repeatable=False)
    assert caught.value.code == "transport"
    assert server.received == [b"POST /v2/assign/store-100 HTTP/1.1"], "resent a one-shot call"
    assert http.retries == 0


async def test_a_reused_connection_cut_after_writing_is_not_resent_even_for_delete(transport):
    """DELETE is idempotent in HTTP, so aiohttp would resend it on a fresh connection."""
    delete = Call.to("DELETE", "v2", "assign", "store-100")
    async with raw_server(lambda n: OK if n == 1 else None) as (server, url), \
            new_client(url) as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RETRY)
        assert (await http.send(Call.to("GET", "v2", "ping"), repeatable=True)).status_code == 200
        with pytest.raises(VendorError) as caught:
            await http.send(delete, repeatable=False)
    assert caught.value.code == "transport"
    assert server.received == [b"GET /v2/ping HTTP/1.1", b"DELETE /v2/assign/store-100 HTTP/1.1"]


async def test_no_answer_in_time_is_a_read_timeout_in_doubt_and_sent_once(transport):
    async with raw_server(lambda n: b"") as (server, url), \
            new_client(url, timeout=0.2) as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RETRY)
        with pytest.raises(VendorError, match="ReadTimeout") as caught:
            await http.send(POST, repeatable=False)
    assert caught.value.code == "transport"
    assert server.received == [b"POST /v2/assign/store-100 HTTP/1.1"]


async def test_a_repeatable_call_cut_after_writing_is_retried(transport):
    async with raw_server(lambda n: OK if n == 2 else None) as (server, url), \
            new_client(url) as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RETRY)
        assert (await http.send(POST, repeatable=True)).status_code == 200
    assert len(server.received) == 2


async def test_a_refused_connection_never_reached_the_vendor_so_a_one_shot_is_retried(transport):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with new_client(f"http://127.0.0.1:{port}") as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RETRY)
        with pytest.raises(VendorError, match="ConnectError") as caught:
            await http.send(POST, repeatable=False)
    assert caught.value.code == "transport"
    assert http.retries == RETRY.attempts - 1, "a call that never left may be sent again"


async def test_the_wire_keeps_escapes_headers_and_a_compressed_body(transport):
    body = gzip.compress(b'{"ok": true}')
    reply = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
             b"Content-Encoding: gzip\r\nX-Vendor: yes\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)
    call = Call.to("PUT", "v2", "a/b?c", "..")
    async with raw_server(lambda n: reply) as (server, url), new_client(url) as client:
        response = await VendorHttp(client, Limits(rate_limit=1000)).send(call, repeatable=True)
    assert (response.status_code, response.reason_phrase) == (201, "Created")
    assert response.json() == {"ok": True}
    assert response.headers["x-vendor"] == "yes"
    assert server.received == [b"PUT /v2/a%2Fb%3Fc/%2E%2E HTTP/1.1"]


async def test_the_pool_holds_as_many_connections_as_the_configured_concurrency(transport):
    """One connection per call in flight, kept alive and reused: 200 calls at
    concurrency 8 open 8 connections, not one per call and not more than 8."""
    async with raw_server(lambda n: OK) as (server, url), \
            new_client(url, connections=8) as client:
        http = VendorHttp(client, Limits(rate_limit=100_000, concurrency=8))
        get = Call.to("GET", "v2", "ping")
        answers = await asyncio.gather(*(http.send(get, repeatable=True) for _ in range(200)))
    assert all(a.status_code == 200 for a in answers)
    assert len(server.received) == 200
    assert 1 <= server.connections <= 8


def test_an_unknown_transport_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(TRANSPORT_ENV, "curl")
    with pytest.raises(ReconcilerError, match=f"{TRANSPORT_ENV}='curl': must be one of"):
        chosen_transport()


def test_the_in_process_sandbox_keeps_its_own_transport():
    from reconciler.sandbox.transport import SandboxTransport

    simulator = YextSimulator()
    client = new_client("http://yext.sandbox", SandboxTransport(simulator.app))
    assert isinstance(client._transport, SandboxTransport)
    assert isinstance(client._transport, httpx.ASGITransport)


PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                   "ALL_PROXY", "no_proxy", "NO_PROXY")


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable from the machine running the tests: each test sets its own."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_the_environment_s_proxy_carries_every_call_with_its_credentials(
        transport, proxy_env):
    """httpx honours `HTTP_PROXY` for a client made without a transport; ours hands
    one in, so the proxies are mounted from the environment as httpx would."""
    async with raw_server(lambda n: OK) as (proxy, proxy_url):
        proxy_env.setenv("HTTP_PROXY", proxy_url.replace("://", "://ops:pr0xy-s3cret@"))
        async with new_client("http://vendor.example/api") as client:
            http = VendorHttp(client, Limits(rate_limit=1000), retry=RETRY)
            assert (http._direct is not None) == (transport == "aiohttp")
            answers = [await http.send(call, repeatable=True) for call in (
                Call.to("GET", "v2", "ping"), Call.to("POST", "v2", "assign", body={"a": 1}))]
    assert [a.status_code for a in answers] == [200, 200]
    assert proxy.received == [b"GET http://vendor.example/api/v2/ping HTTP/1.1",
                              b"POST http://vendor.example/api/v2/assign HTTP/1.1"]
    credentials = base64.b64encode(b"ops:pr0xy-s3cret")
    assert all(b"proxy-authorization: basic " + credentials.lower() in whole.lower()
               for whole in proxy.whole)
    assert "pr0xy-s3cret" not in REDACTOR.text(f"via http://ops:pr0xy-s3cret@{proxy_url}")


async def test_a_no_proxy_host_is_reached_directly(transport, proxy_env):
    async with raw_server(lambda n: OK) as (proxy, proxy_url), \
            raw_server(lambda n: OK) as (vendor, vendor_url):
        proxy_env.setenv("HTTP_PROXY", proxy_url)
        proxy_env.setenv("NO_PROXY", "localhost,127.0.0.1")
        async with new_client(vendor_url) as client:
            response = await VendorHttp(client, Limits(rate_limit=1000)).send(
                Call.to("GET", "v2", "ping"), repeatable=True)
    assert response.status_code == 200
    assert (proxy.received, vendor.received) == ([], [b"GET /v2/ping HTTP/1.1"])


async def test_this_machine_s_loopback_is_never_proxied(transport, proxy_env):
    """A sandbox served on 127.0.0.1 works on a machine whose proxy cannot reach it."""
    async with raw_server(lambda n: OK) as (vendor, vendor_url):
        proxy_env.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
        async with new_client(vendor_url) as client:
            response = await VendorHttp(client, Limits(rate_limit=1000)).send(
                Call.to("GET", "v2", "ping"), repeatable=True)
    assert response.status_code == 200
    assert vendor.received == [b"GET /v2/ping HTTP/1.1"]


async def test_an_unreachable_proxy_never_reached_the_vendor(transport, proxy_env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    async with new_client("https://vendor.example") as client:
        http = VendorHttp(client, Limits(rate_limit=1000), retry=RETRY)
        with pytest.raises(VendorError, match="ConnectError") as caught:
            await http.send(POST, repeatable=False)
    assert caught.value.code == "transport"
    assert http.retries == RETRY.attempts - 1, "a call that never left may be sent again"


def test_a_proxy_scheme_we_cannot_speak_is_a_clear_error_without_its_password(transport,
                                                                               proxy_env):
    proxy_env.setenv("HTTPS_PROXY", "socks5://ops:s0cks-s3cret@127.0.0.1:1080")
    with pytest.raises(ReconcilerError, match="only http:// and https:// proxies") as caught:
        new_client("https://vendor.example")
    assert "s0cks-s3cret" not in str(caught.value)
