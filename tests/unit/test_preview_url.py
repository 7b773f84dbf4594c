"""A plan's preview URL is the URL httpx would send, built without building a request.

`preview_url` joins the base URL and encodes the query itself (httpx parses a URL four
times per request it builds, most of a large plan's CPU); these pin it to
`str(to_request(...).url)` over hostile ids, query values and base URLs.
"""

from __future__ import annotations

import random
import string

import httpx
import pytest

from reconciler.http import preview_url, to_request
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
HOSTILE = ["a/b", "..", ".", "x?y=1", "s#f", "s%2D6", "sp ace", "ünï", "a;jsessionid=x",
           "$batch", "store\n::error::", "\u202e", "+&=", "@host", "[::1]"]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("segment", HOSTILE)
def test_the_preview_is_the_url_httpx_sends(base, segment):
    client = httpx.AsyncClient(base_url=base)
    call = Call.to("GET", "v2", segment, query=[("q", segment), ("v", "1")])
    assert preview_url(client, call) == str(to_request(client, call).url)
    bare = Call.to("DELETE", segment)
    assert preview_url(client, bare) == str(to_request(client, bare).url)


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
        assert preview_url(client, call) == str(to_request(client, call).url), call
