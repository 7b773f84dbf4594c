"""The Yext provider against the Yext simulator, over httpx (in-process ASGI)."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.model import (
    Change,
    ChangeKind,
    Grant,
    OutcomeStatus,
    ProviderDesired,
    Subject,
)
from reconciler.providers.yext import YextConnection, YextProvider
from reconciler.sandbox.yext import YextSimulator
from reconciler.secrets import Secrets

ENV = {"YEXT_API_KEY": "sandbox-yext-api-key"}


@pytest.fixture
def simulator() -> YextSimulator:
    return YextSimulator()


@pytest.fixture
def provider(simulator, vendor_http) -> YextProvider:
    connection = YextConnection(api_key_env="YEXT_API_KEY", page_size=2)
    return YextProvider(connection, vendor_http(simulator), Secrets(environ=ENV))


def entity_grant(entity: str, pack: str, **extra) -> Grant:
    return Grant(
        provider="yext", pool=pack, subject=Subject(kind="entity", id=entity), license=pack, **extra
    )


async def test_read_pages_through_everything_with_list_calls(provider, simulator):
    state = await provider.read(ProviderDesired(provider="yext"))
    held = {(g.pool, g.subject.id) for g in state.grants}
    assert len(held) == 11
    assert ("reviews-plus", "store-002") in held
    expiring = next(
        g for g in state.grants if g.subject.id == "store-002" and g.pool == "reviews-plus"
    )
    assert expiring.expires == dt.date(2027, 6, 30)
    pools = {p.id: (p.capacity, p.used) for p in state.pools}
    assert pools["knowledge-pro"] == (5, 4)
    paths = [e["path"] for e in simulator.request_log()]
    assert all("/assigned-entities/" not in p for p in paths), "no per-entity calls"
    assert len(paths) == 2 + (2 + 1 + 3), "3 packs by 2, then each pack (4, 2, 5) by 2"


async def test_assign_remove_and_expiry_round_trip(provider):
    changes = [
        Change(
            kind=ChangeKind.ADD,
            after=entity_grant("store-006", "reviews-plus", expires=dt.date(2099, 1, 31)),
            reason="t",
        ),
        Change(kind=ChangeKind.REMOVE, before=entity_grant("hq", "listings-basic"), reason="t"),
    ]
    state = await provider.read(ProviderDesired(provider="yext"))
    actions = provider.actions(changes, state)
    assert [a.verb for a in actions] == ["assign", "update", "remove"]
    assert actions[1].depends_on == (actions[0].id,)
    for action in sorted(actions, key=lambda a: a.phase):
        assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    after = await provider.read(ProviderDesired(provider="yext"))
    held = {(g.pool, g.subject.id): g.expires for g in after.grants}
    assert held[("reviews-plus", "store-006")] == dt.date(2099, 1, 31)
    assert ("listings-basic", "hq") not in held
    assert after.fingerprints != state.fingerprints


async def test_repeating_a_change_counts_as_already_done(provider):
    state = await provider.read(ProviderDesired(provider="yext"))
    add = provider.actions(
        [
            Change(
                kind=ChangeKind.ADD, reason="t", after=entity_grant("store-001", "listings-basic")
            )
        ],
        state,
    )[0]
    remove = provider.actions(
        [
            Change(
                kind=ChangeKind.REMOVE,
                reason="t",
                before=entity_grant("store-006", "knowledge-pro"),
            )
        ],
        state,
    )[0]
    assert (await provider.execute(add)).status is OutcomeStatus.ALREADY
    assert (await provider.execute(remove)).status is OutcomeStatus.ALREADY


async def test_vendor_rejection_is_a_clear_failed_outcome(provider):
    state = await provider.read(ProviderDesired(provider="yext"))
    changes = [
        Change(kind=ChangeKind.ADD, reason="t", after=entity_grant(e, "reviews-plus"))
        for e in ("store-003", "store-004")
    ]
    first, second = provider.actions(changes, state)
    assert (await provider.execute(first)).ok
    outcome = await provider.execute(second)
    assert outcome.status is OutcomeStatus.FAILED
    assert "Yext error 2005" in outcome.message and "No available licenses" in outcome.message


async def test_preview_masks_the_api_key(provider):
    state = await provider.read(ProviderDesired(provider="yext"))
    action = provider.actions(
        [Change(kind=ChangeKind.ADD, reason="t", after=entity_grant("store-006", "reviews-plus"))],
        state,
    )[0]
    assert "sandbox-yext-api-key" not in action.model_dump_json()
    # Credentials are added when the call is sent: neither the call nor its preview holds one.
    assert action.request.url.endswith("/assigned-entities/store-006?v=20240101")
    assert "api_key" not in action.model_dump_json()


async def test_confirm_reports_whether_a_change_is_visible(provider):
    state = await provider.read(ProviderDesired(provider="yext"))
    action = provider.actions(
        [Change(kind=ChangeKind.ADD, reason="t", after=entity_grant("store-006", "reviews-plus"))],
        state,
    )[0]
    assert await provider.confirm(action) is False
    await provider.execute(action)
    assert await provider.confirm(action) is True
