"""Yext `actions()` from a hand-built current state: no HTTP is sent.

The provider is built over a client that never sends (`preview` only reads its base
URL). Yext needs no facts beyond grants and pools: a pack is both pool and license.
"""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.http import VendorHttp, new_client, url_path
from reconciler.model import Change, ChangeKind, CurrentState, Grant, Subject
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE, PHASE_UPDATE
from reconciler.providers.yext import YextConnection, YextProvider
from reconciler.secrets import Secrets

HOSTILE = ["a b", "x?y=1", "s#f", "%2D", "ünï", "store..006"]


def provider() -> YextProvider:
    http = VendorHttp(new_client("https://api.yext.example"))
    return YextProvider(YextConnection(api_key_env="YEXT_API_KEY"), http, Secrets({}))


def grant(entity: str, pack: str = "reviews-plus", expires: dt.date | None = None) -> Grant:
    return Grant(provider="yext", pool=pack, subject=Subject(kind="entity", id=entity),
                 license=pack, expires=expires)


STATE = CurrentState(provider="yext")


def test_remove_is_a_delete_in_the_free_phase():
    [action] = provider().actions([Change(kind=ChangeKind.REMOVE, before=grant("s1"),
                                          reason="r")], STATE)
    assert (action.verb, action.phase, action.frees) == ("remove", PHASE_FREE, True)
    assert action.call.method == "DELETE"
    assert action.call.path == ("v2", "accounts", "me", "license-packs", "reviews-plus",
                                "assigned-entities", "s1")
    assert action.call.query == (("v", "20240101"),)
    assert action.repeatable


def test_assign_with_expiry_is_a_post_then_a_put_that_waits_for_it():
    change = Change(kind=ChangeKind.ADD, after=grant("s2", expires=dt.date(2027, 6, 30)),
                    reason="r")
    assign, expiry = provider().actions([change], STATE)
    assert (assign.call.method, assign.phase, assign.call.body) == ("POST", PHASE_TAKE, None)
    assert expiry.call.method == "PUT" and expiry.depends_on == (assign.id,)
    assert expiry.call.body == {"expirationDate": "2027-06-30"} and expiry.seat_delta == 0


def test_cancelling_an_expiry_puts_null():
    change = Change(kind=ChangeKind.UPDATE, before=grant("s3", expires=dt.date(2027, 1, 1)),
                    after=grant("s3"), reason="r")
    [action] = provider().actions([change], STATE)
    assert (action.call.method, action.phase) == ("PUT", PHASE_UPDATE)
    assert action.call.body == {"expirationDate": None}


@pytest.mark.parametrize("entity", HOSTILE)
def test_a_hostile_id_stays_one_segment(entity):
    [action] = provider().actions([Change(kind=ChangeKind.ADD, after=grant(entity),
                                          reason="r")], STATE)
    assert action.call.path[-1] == entity and len(action.call.path) == 7
    assert url_path(action.call).count("/") == 7
    assert action.request.url.startswith("https://api.yext.example/v2/accounts/me/")


@pytest.mark.parametrize("entity", ["a/b", "..", ".", "c\\d"])
def test_ids_a_path_cannot_hold_are_refused_at_load(entity):
    assert YextProvider.subject_id_problem("entity", entity) is not None
    assert YextProvider.subject_id_problem("entity", "store-001") is None
