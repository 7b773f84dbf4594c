"""Request and preview URLs are the URLs httpx makes, built without parsing a URL.

`joined_url` joins the base URL and encodes the query itself (httpx parses a URL four
times per request it builds from a relative path: most of a large plan's CPU, a tenth
of a request's). These pin `to_request` and `preview_url` to httpx's own join of the
relative path (`build_request(method, URL(path=...), params=...)`) over hostile ids,
query values and base URLs.
"""

from __future__ import annotations

import random
import string

import httpx
import pytest

from reconciler.http import preview_url, to_request, url_path
from reconciler.model import Call

BASES = [
    "http://vendor.example/api",
    "http://vendor.example/api/",
    "https://vendor.example:8443",
    "http://127.0.0.1:5000/v2/x",
    "http://[::1]:80/a b",
    "https://vendor.example/%7Euser/",
    "https://Vendor.Example.COM/x",
    "http://vendor.example/a?b=1",
    "http://vendor.example/#f",
]
def httpx_joined(client: httpx.AsyncClient, call: Call, query: dict[str, str] | None = None) -> str:
    """httpx joining the relative path to its base URL itself."""
    params = [*call.query, *(query or {}).items()]
    return str(client.build_request(call.method, httpx.URL(path=url_path(call)),
                                    params=params).url)


def assert_joined_as_httpx_joins(client: httpx.AsyncClient, call: Call) -> None:
    assert preview_url(client, call) == httpx_joined(client, call), call
    auth = {"AuthToken": "t k&n"}
    assert str(to_request(client, call, query=auth).url) == httpx_joined(client, call, auth)


HOSTILE = ["a/b", "..", ".", "x?y=1", "s#f", "s%2D6", "sp ace", "ünï", "a;jsessionid=x",
           "$batch", "store\n::error::", "\u202e", "+&=", "@host", "[::1]"]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("segment", HOSTILE)
def test_the_preview_is_the_url_httpx_sends(base, segment):
    client = httpx.AsyncClient(base_url=base)
    assert_joined_as_httpx_joins(client, Call.to("GET", "v2", segment,
                                                 query=[("q", segment), ("v", "1")]))
    assert_joined_as_httpx_joins(client, Call.to("DELETE", segment))


def test_random_ids_and_queries_preview_as_httpx_sends_them():
    alphabet = string.printable + "üñ€$%;=&+/?#. \u202e"
    rng = random.Random(23)
    clients = [httpx.AsyncClient(base_url=base) for base in BASES]

    def text(low: int, high: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    for _ in range(500):
        client = rng.choice(clients)
        call = Call.to("GET", *(text(1, 6) for _ in range(rng.randint(1, 4))),
                       query=[(text(1, 4), text(0, 5)) for _ in range(rng.randint(0, 3))])
        assert_joined_as_httpx_joins(client, call)
