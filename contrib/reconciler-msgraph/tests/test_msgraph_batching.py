"""Requests near the minimum: one assignLicense per changed user, 20 to a `$batch`, each
item's status handled (a throttled item is sent again, alone of its batch)."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import desired, seed, write_desired
from reconciler_msgraph.simulator import GraphSimulator

from reconciler.errors import VendorError
from reconciler.model import Call
from reconciler.testing.runner import changing, cli, request_log

USERS = 45


def _estate(throttled_items: int = 0) -> dict[str, object]:
    chosen = seed(throttle_batch_items=throttled_items)
    chosen["skus"][0]["enabled"] = 1000
    chosen["users"] = [{"userPrincipalName": f"u{n:03}@contoso.com", "usageLocation": "US",
                        "licenses": {}} for n in range(USERS)]
    chosen["groups"] = []
    return chosen


def _batches(workspace) -> list[list[dict[str, object]]]:
    return [e["body"]["requests"] for e in changing(request_log(workspace, "msgraph"))
            if e["path"] == "/v1.0/$batch"]


@pytest.mark.parametrize("throttled", [0, 5])
def test_one_assign_license_per_user_twenty_to_a_batch(workspace, seeded, throttled):
    seeded(_estate(throttled))
    subjects = [{"user": f"u{n:03}@contoso.com", "licenses": ["ENTERPRISEPACK"]}
                for n in range(USERS)]
    target = write_desired(workspace, subjects, limits={"rate_limit": 10_000})
    applied = cli("apply", str(target), "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    batches = _batches(workspace)
    assert [len(b) for b in batches[:3]] == [20, 20, 5]
    items = [item for batch in batches for item in batch]
    assert all(item["url"].endswith("/assignLicense") for item in items)
    assert len(items) == USERS + throttled, "only throttled items are sent again"
    if throttled:
        assert [len(b) for b in batches[3:]] == [throttled]
    assert cli("drift", str(target), "--sandbox").exit_code == 0


def test_the_batch_path_travels_as_a_literal_dollar(workspace, seeded):
    """Graph's SDKs send `/v1.0/$batch`; RFC 3986 does not make `%24batch` the same URI,
    so the request line must carry the `$` itself."""
    seeded(_estate())
    subjects = [{"user": f"u{n:03}@contoso.com", "licenses": ["ENTERPRISEPACK"]}
                for n in range(3)]
    target = write_desired(workspace, subjects, limits={"rate_limit": 10_000})
    assert cli("apply", str(target), "--sandbox", "--auto-approve").exit_code == 0
    sent = [e["raw_path"] for e in changing(request_log(workspace, "msgraph"))
            if "token" not in e["path"]]
    assert sent == ["/v1.0/$batch"]


def test_adds_and_removes_of_one_user_travel_in_one_call(workspace):
    target = write_desired(workspace, [{"user": "adele@contoso.com",
                                        "licenses": ["VISIOCLIENT"]}])
    assert cli("apply", str(target), "--sandbox", "--auto-approve").exit_code == 0
    sent = [e for e in changing(request_log(workspace, "msgraph")) if "token" not in e["path"]]
    assert len(sent) == 1 and sent[0]["path"].endswith("/assignLicense")
    body = sent[0]["body"]
    assert len(body["addLicenses"]) == 1 and len(body["removeLicenses"]) == 2


async def test_a_batch_of_more_than_twenty_is_refused_by_the_simulator():
    requests = [{"id": str(n), "method": "GET", "url": "/subscribedSkus"} for n in range(21)]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(GraphSimulator().app),
                                 base_url="http://msgraph.sandbox") as client:
        answer = await client.post(
            "/v1.0/$batch", json={"requests": requests},
            headers={"Authorization": "Bearer sandbox-msgraph-fixture-token"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("Number of batch request steps")


async def test_an_expired_token_is_renewed_once(graph):
    simulator = GraphSimulator()
    provider = graph(simulator)
    await provider.read(desired())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(simulator.app),
                                 base_url="http://msgraph.sandbox") as admin:
        assert (await admin.post("/_sandbox/expire-tokens")).json()["expired"] == 1
    await provider.read(desired())
    assert provider.tokens.issued == 2
    refused = [e for e in simulator.requests if e["status"] == 401]
    assert len(refused) == 1


async def test_a_next_link_to_another_host_is_not_followed(graph):
    provider = graph(GraphSimulator())
    with pytest.raises(VendorError, match=r"leaves http://msgraph\.sandbox/v1\.0"):
        provider._next_call("https://evil.example/v1.0/users?$skiptoken=1")
    call = provider._next_call("http://msgraph.sandbox/v1.0/users?$top=2&$skiptoken=2")
    assert call == Call.to("GET", "users", query=[("$top", "2"), ("$skiptoken", "2")])


async def test_paging_follows_next_link_to_the_last_user(graph):
    simulator = GraphSimulator(seed=_estate())
    provider = graph(simulator, page_size=7)
    current = await provider.read(desired())
    assert len(current.facts.holders) == USERS
    pages = [e for e in simulator.requests if e["path"] == "/v1.0/users"]
    assert len(pages) == -(-USERS // 7)
    assert json.dumps(pages[-1]["query"]).count("skiptoken") == 1
