"""The direct path (`reconciler.wire`) sends what httpx's client would, and keeps what
`AsyncClient.send` does that matters.

Pinned three ways: the encoded request equals `to_request`'s (method, URL, header
list, body) over hostile ids, bodies, headers and base URLs; the bytes that reach a
server are the same either way; and the client features the path leaves out (auth,
cookies, request hooks, redirects, mounted transports) send the call through httpx instead.
"""

from __future__ import annotations

import logging
import random
import string
from typing import Any

import httpx
import pytest

from reconciler.http import VendorHttp, new_client, to_request
from reconciler.model import Call, Limits
from reconciler.transport import TRANSPORT_ENV, AiohttpTransport
from reconciler.wire import DirectSender, Outgoing, WireResponse
from tests.rawserver import raw_server

BASES = [
    "http://vendor.example/api",
    "https://vendor.example:8443/commandcenter/api/",
    "http://127.0.0.1:5000/v2/x",
    "http://[::1]:80/a b",
    "https://Vendor.Example.COM/%7Euser/",
    "https://vendor.example:443/",
]
HOSTILE = ["a/b", "..", "x?y=1", "s#f", "s%2D6", "sp ace", "ünï", "$batch", "\u202e", "+&=",
           "[::1]", "store\n::error::"]
BODIES: list[Any] = [None, {}, {"name": "Zoë", "n": 3, "nested": [1, {"x": None}]},
                     {"quote": "\"'\\", "emoji": "🎟", "big": 10**30}, ["a", 1.5, True],
                     "just text"]
HEADERS: list[dict[str, str]] = [{}, {"Authtoken": "QSDK tok&en"},
                                 {"Accept": "application/json", "X-Api-Key": "k"},
                                 {"Content-Type": "application/merge-patch+json"},
                                 {"content-length": "0"}]


def direct_for(base: str) -> tuple[httpx.AsyncClient, DirectSender]:
    client = httpx.AsyncClient(base_url=base, transport=AiohttpTransport(4))
    sender = DirectSender.of(client)
    assert sender is not None
    return client, sender


def encoded(client: httpx.AsyncClient, call: Call, headers: dict[str, str],
            query: dict[str, str] | None = None,
            secret_body: dict[str, Any] | None = None) -> Outgoing:
    """The request as the direct path encodes it (the path `VendorHttp` takes)."""
    http = VendorHttp(client)
    request = http._request(call, headers, query, secret_body)
    assert isinstance(request, Outgoing), "the direct path was not taken"
    return request


def as_httpx_sends(request: httpx.Request) -> tuple[str, str, list[tuple[str, str]], bytes]:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    return request.method, str(request.url), headers, request.read()


def assert_same_as_httpx(client: httpx.AsyncClient, call: Call, headers: dict[str, str],
                         query: dict[str, str] | None = None,
                         secret_body: dict[str, Any] | None = None) -> None:
    wanted = as_httpx_sends(to_request(client, call, headers=headers, query=query,
                                       secret_body=secret_body))
    outgoing = encoded(client, call, headers, query, secret_body)
    assert (outgoing.method, outgoing.url, outgoing.headers, outgoing.body) == wanted, call
    assert as_httpx_sends(outgoing.as_request()) == wanted, call


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("segment", HOSTILE)
def test_a_hostile_id_is_encoded_as_httpx_encodes_it(base, segment):
    client, _ = direct_for(base)
    auth = {"api_key": "k&y=1", "v": "20240101"}
    assert_same_as_httpx(client, Call.to("GET", "v2", segment, query=[("q", segment)]), {},
                         auth)
    assert_same_as_httpx(client, Call.to("DELETE", "users", segment), {"Authtoken": segment
                                                                        .encode("ascii", "replace")
                                                                        .decode()
                                                                        .replace("\n", " ")})


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "GET"])
@pytest.mark.parametrize("body", BODIES, ids=repr)
@pytest.mark.parametrize("headers", HEADERS, ids=repr)
def test_bodies_and_headers_are_encoded_as_httpx_encodes_them(method, body, headers):
    client, _ = direct_for("https://vendor.example/api/")
    assert_same_as_httpx(client, Call.to(method, "licenses", "7", body=body), headers)


def test_a_form_and_a_secret_body_are_encoded_as_httpx_encodes_them():
    client, _ = direct_for("https://vendor.example/identity_/")
    form = Call.to("POST", "connect", "token",
                   form={"grant_type": "client_credentials", "scope": "OR.Users ü&="})
    assert_same_as_httpx(client, form, {"Accept": "application/json"})
    login = Call.to("POST", "Login", body={"mode": 4, "username": "admin"})
    assert_same_as_httpx(client, login, {}, secret_body={"password": "cDRzcw=="})


def test_random_calls_are_encoded_as_httpx_encodes_them():
    alphabet = string.printable + "üñ€$%;=&+/?#. \u202e"
    rng = random.Random(2026)
    clients = [direct_for(base)[0] for base in BASES]

    def text(low: int, high: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    for _ in range(400):
        method = rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE"])
        body = None if method == "GET" else {text(1, 5): text(0, 8) for _ in range(3)}
        call = Call.to(method, *(text(1, 6) for _ in range(rng.randint(1, 4))),
                       query=[(text(1, 4), text(0, 5)) for _ in range(rng.randint(0, 2))],
                       body=body)
        key = "".join(rng.choice(string.ascii_letters + "-_.~ ") for _ in range(8)).strip()
        assert_same_as_httpx(rng.choice(clients), call, {"X-Key": key or "k"})


async def test_the_wire_carries_the_same_bytes_as_httpx_sends():
    """The same calls through the same transport, once past httpx's client and once
    through it: byte for byte the same requests at the server."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    calls = [Call.to("GET", "v2", "a/b", "ünï", query={"q": "x y&z"}),
             Call.to("POST", "Client", "License", "Release",
                     body={"clientEntity": {"clientId": 7}, "name": "Zoë"}),
             Call.to("PUT", "empty"), Call.to("DELETE", "users", "..", body=[1, 2])]
    async with raw_server(lambda n: reply) as (server, url), new_client(url) as client:
        http = VendorHttp(client, Limits(rate_limit=1000))
        assert http._direct is not None
        for call in calls:
            await http.send(call, repeatable=True, headers={"Authtoken": "t"})
            await client.send(to_request(client, call, headers={"Authtoken": "t"}))
    direct, through_httpx = server.whole[0::2], server.whole[1::2]
    assert direct == through_httpx
    assert len(direct) == len(calls)


async def test_the_answer_is_an_httpx_response_with_hooks_log_and_request(caplog):
    reply = (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
             b"Content-Length: 17\r\n\r\n{\"error\": \"gone\"}")
    seen: list[httpx.Response] = []

    async def hook(response: httpx.Response) -> None:
        seen.append(response)

    call = Call.to("GET", "Client", "42", "License")
    async with raw_server(lambda n: reply) as (_, url), new_client(url) as client:
        client.event_hooks["response"].append(hook)
        with caplog.at_level(logging.INFO, logger="httpx"):
            response = await VendorHttp(client).send(call, repeatable=True)
    assert isinstance(response, WireResponse)
    assert seen == [response]
    assert (response.status_code, response.reason_phrase, response.json()) == (
        404, "Not Found", {"error": "gone"})
    assert response.request.method == "GET"
    assert str(response.url) == f"{url}/Client/42/License"
    assert response.elapsed.total_seconds() >= 0
    assert f'HTTP Request: GET {url}/Client/42/License "HTTP/1.1 404 Not Found"' in caplog.text
    with pytest.raises(httpx.HTTPStatusError, match="404 Not Found"):
        response.raise_for_status()


async def test_a_cookie_the_vendor_sets_is_sent_back_on_the_next_call():
    first = (b"HTTP/1.1 200 OK\r\nSet-Cookie: AWSALB=sticky; Path=/\r\n"
             b"Content-Length: 2\r\n\r\n{}")
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    async with raw_server(lambda n: first if n == 1 else ok) as (server, url), \
            new_client(url) as client:
        http = VendorHttp(client)
        await http.send(Call.to("GET", "a"), repeatable=True)
        assert not (http._direct and http._direct.usable()), "cookies go through httpx"
        await http.send(Call.to("GET", "b"), repeatable=True)
    assert b"Cookie: AWSALB=sticky" in server.whole[1]


def test_what_the_direct_path_leaves_out_sends_through_httpx(monkeypatch):
    client, sender = direct_for("http://vendor.example")
    assert sender.usable()
    client.auth = ("user", "secret")
    assert not sender.usable(), "auth"
    client.auth = None
    client.follow_redirects = True
    assert not sender.usable(), "redirects"
    client.follow_redirects = False
    client.event_hooks["request"].append(lambda request: None)
    assert not sender.usable(), "request hooks"
    client.event_hooks["request"].clear()
    client.cookies.set("session", "1", domain="vendor.example")
    assert not sender.usable(), "cookies"
    client.cookies.clear()
    assert sender.usable()
    client._transport = httpx.AsyncHTTPTransport()
    assert not sender.usable(), "a transport swapped in after the client was made"

    monkeypatch.setenv(TRANSPORT_ENV, "httpx")
    assert DirectSender.of(new_client("http://vendor.example")) is None
    monkeypatch.setenv(TRANSPORT_ENV, "aiohttp")
    assert DirectSender.of(new_client("http://vendor.example")) is not None
    mounted = httpx.AsyncClient(base_url="https://vendor.example", transport=AiohttpTransport(1),
                                mounts={"https://": httpx.AsyncHTTPTransport()})
    assert DirectSender.of(mounted) is None, "a transport mounted for some URLs"


async def test_the_default_network_client_takes_the_direct_path(monkeypatch):
    """The speed this path exists for is not lost silently: on the default transport
    a call never goes through `AsyncClient.send`."""
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)

    async def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("sent through httpx's client")

    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    async with raw_server(lambda n: ok) as (_, url), new_client(url) as client:
        monkeypatch.setattr(client, "send", refuse)
        response = await VendorHttp(client).send(Call.to("POST", "x", body={"a": 1}),
                                                 repeatable=False)
    assert response.json() == {}


def test_the_encoded_request_never_prints_its_credentials():
    client, _ = direct_for("https://vendor.example/api/")
    outgoing = encoded(client, Call.to("POST", "Login", body={"mode": 4}),
                       {"Authtoken": "QSDK-secret-token"}, {"api_key": "key-in-query"},
                       secret_body={"password": "hunter2-secret"})
    shown = repr(outgoing)
    assert outgoing.url.endswith("?api_key=key-in-query")
    for secret in ("QSDK-secret-token", "hunter2-secret", "key-in-query"):
        assert secret not in shown
    assert shown == "Outgoing(method='POST')"
