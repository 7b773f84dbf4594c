"""LicenseSpring `actions()` and `check()` from typed facts alone: no HTTP is sent.

The provider is built over a client that is never used to send (only `preview` reads
its base URL), and the current state is hand-built with `LicenseSpringFacts`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reconciler.http import VendorHttp, new_client, url_path
from reconciler.model import Change, ChangeKind, CurrentState, Grant, ProviderDesired, Subject
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE
from reconciler.providers.licensespring import (
    LicenseFacts,
    LicenseSpringConnection,
    LicenseSpringFacts,
    LicenseSpringProvider,
)
from reconciler.secrets import Secrets

BASE = "https://api.licensespring.example"
KEY = "ACAD-7H2K-99QX-4M1P"
CLOUD = "acmecloud/dana@acme.example+lee@acme.example"
FACTS = LicenseSpringFacts(licenses={
    KEY: LicenseFacts(id=1001, product="acmecad", license_key=KEY, capacity=3),
    CLOUD: LicenseFacts(id=1003, product="acmecloud",
                        users=("dana@acme.example", "lee@acme.example"), capacity=2),
    "OLD": LicenseFacts(id=1004, product="acmecad", license_key="OLD", capacity=5,
                        validity_period="2024-12-31"),
    "LATER": LicenseFacts(id=1006, product="acmecad", license_key="LATER", capacity=5,
                          start_date="2999-01-01"),
    "OFF": LicenseFacts(id=1007, product="acmecad", license_key="OFF", capacity=5,
                        enabled=False),
})
HOSTILE = ["a/b", "..", "x?y=1", "s#f", "%2D", "with space", "ünïcode-设备"]


@pytest.fixture
async def provider() -> AsyncIterator[LicenseSpringProvider]:
    client = new_client(BASE)
    connection = LicenseSpringConnection(
        api_key_env="K", shared_key_env="S", management_key_env="M",
        user_passwords={"lee@acme.example": "LEE_PASSWORD"})
    # An empty environment: planning must not need a single secret.
    yield LicenseSpringProvider(connection, VendorHttp(client), Secrets(environ={}))
    await client.aclose()


def grant(hardware_id: str, license: str = KEY) -> Grant:
    return Grant(provider="licensespring", pool=license, license=license,
                 subject=Subject(kind="device", id=hardware_id))


def add(hardware_id: str, license: str = KEY) -> Change:
    return Change(kind=ChangeKind.ADD, after=grant(hardware_id, license), reason="declared")


def remove(hardware_id: str, license: str = KEY) -> Change:
    return Change(kind=ChangeKind.REMOVE, before=grant(hardware_id, license), reason="dropped")


def state(*held: Grant) -> CurrentState:
    return CurrentState(provider="licensespring", grants=held, facts=FACTS)


def test_key_based_activation_is_one_post_with_the_documented_body(provider):
    (action,) = provider.actions([add("ws-new")], state())
    assert (action.verb, action.phase, action.frees) == ("assign", PHASE_TAKE, False)
    assert action.call.method == "POST"
    assert action.call.path == ("api", "v4", "activate_license")
    assert action.call.query == () and action.call.form is None
    assert action.call.body == {"hardware_id": "ws-new", "product": "acmecad",
                                "license_key": KEY}
    assert action.request.url == f"{BASE}/api/v4/activate_license"
    assert action.request.body == action.call.body
    assert not action.repeatable, "a lost activation answer is confirmed, not re-sent"


def test_release_is_a_repeatable_deactivation_in_the_free_phase(provider):
    (action,) = provider.actions([remove("ws-old")], state(grant("ws-old")))
    assert (action.verb, action.phase, action.frees) == ("release", PHASE_FREE, True)
    assert action.call.path == ("api", "v4", "deactivate_license")
    assert action.call.body == {"hardware_id": "ws-old", "product": "acmecad",
                                "license_key": KEY}
    assert action.repeatable and action.seat_delta == -1


def test_swap_frees_the_seat_before_taking_one(provider):
    actions = provider.actions([add("ws-new"), remove("ws-old")], state(grant("ws-old")))
    ordered = sorted(actions, key=lambda a: (a.phase, a.id))
    assert [a.verb for a in ordered] == ["release", "assign"]
    assert [a.call.body["hardware_id"] for a in ordered] == ["ws-old", "ws-new"]


def test_one_action_per_device_since_the_license_api_has_no_batch(provider):
    actions = provider.actions([add(f"ws-{i}") for i in range(5)], state())
    assert len(actions) == 5 and len({a.id for a in actions}) == 5


def test_user_based_call_names_the_user_with_a_password_and_holds_no_secret(provider):
    (action,) = provider.actions([add("render-01", CLOUD)], state())
    # Lee has a configured password, Dana (first by name) has none: Lee activates.
    assert action.call.body == {"hardware_id": "render-01", "product": "acmecloud",
                                "username": "lee@acme.example", "license_id": 1003}
    assert action.request.body == {**action.call.body, "password": "***"}


def test_user_based_deactivation_also_names_the_password_holder(provider):
    (action,) = provider.actions([remove("dana-laptop", CLOUD)],
                                 state(grant("dana-laptop", CLOUD)))
    assert action.call.path[-1] == "deactivate_license"
    assert action.call.body["username"] == "lee@acme.example"
    assert "password" not in action.call.body and action.request.body["password"] == "***"


@pytest.mark.parametrize("hardware_id", HOSTILE)
def test_a_hostile_hardware_id_stays_data_in_the_body(provider, hardware_id):
    (action,) = provider.actions([add(hardware_id)], state())
    assert action.call.path == ("api", "v4", "activate_license")
    assert url_path(action.call) == "/api/v4/activate_license"
    assert action.call.body["hardware_id"] == hardware_id
    assert action.request.url == f"{BASE}/api/v4/activate_license"


@pytest.mark.parametrize("hardware_id", HOSTILE)
def test_the_loader_check_accepts_ids_that_never_reach_a_path(hardware_id):
    assert LicenseSpringProvider.subject_id_problem("device", hardware_id) is None


def test_a_license_the_read_did_not_see_is_a_clear_error(provider):
    with pytest.raises(Exception, match="license 'NOPE' was not read"):
        provider.actions([add("ws-new", "NOPE")], state())


def test_check_refuses_what_the_vendor_would_refuse(provider):
    desired = ProviderDesired(provider="licensespring", grants=(
        grant("a", "OLD"), grant("b", "LATER"), grant("c", "OFF"), grant("d", KEY)))
    problems = [p.message for p in provider.check(desired, state(), [])]
    assert problems == [
        "licensespring: license 'OLD' expired on 2024-12-31",
        "licensespring: license 'LATER' cannot be activated before 2999-01-01",
        "licensespring: license 'OFF' is disabled",
    ]


async def test_check_wants_a_password_for_a_user_based_activation():
    client = new_client(BASE)
    bare = LicenseSpringProvider(
        LicenseSpringConnection(api_key_env="K", shared_key_env="S", management_key_env="M"),
        VendorHttp(client), Secrets(environ={}))
    desired = ProviderDesired(provider="licensespring", grants=(grant("r", CLOUD),))
    (problem,) = bare.check(desired, state(), [])
    assert "dana@acme.example, lee@acme.example to connection.user_passwords" in problem.message
    # Already held: nothing to activate, nothing to refuse.
    assert bare.check(desired, state(grant("r", CLOUD)), []) == []
    await client.aclose()


def test_check_and_actions_are_pure_functions_of_their_arguments(provider):
    first = provider.actions([add("ws-new"), remove("ws-old")], state(grant("ws-old")))
    other = provider.actions([add("x", CLOUD)], state())
    again = provider.actions([add("ws-new"), remove("ws-old")], state(grant("ws-old")))
    assert first == again and other != first
    assert not hasattr(provider, "_licenses"), "no facts kept on the provider"
