"""The LicenseSpring provider against its simulator; the official SDK as the judge."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from reconciler.errors import VendorError
from reconciler.http import VendorHttp, announcing, new_client
from reconciler.model import (
    Action,
    Change,
    ChangeKind,
    Grant,
    Limits,
    OutcomeStatus,
    ProviderDesired,
    Subject,
)
from reconciler.providers.licensespring import (
    LicenseSpringConnection,
    LicenseSpringProvider,
    sign,
)
from reconciler.sandbox.licensespring import LicenseSpringSimulator
from reconciler.sandbox.serve import ServedSimulators
from reconciler.secrets import Secrets

SANDBOX = "http://licensespring.sandbox"
ENV = {"K": "sandbox-licensespring-api-key", "S": "sandbox-licensespring-shared-key",
       "M": "sandbox-licensespring-management-key", "MU": SANDBOX,
       "DANA": "sandbox-dana-password"}
KEY = "ACAD-7H2K-99QX-4M1P"
VIZ = "AVIZ-1QQ3-8TTR-2ZZ9"
RENDER = "acmerender/dana@acme.example+lee@acme.example"
# The body the seed page documents for /api/v4/deactivate_license (required fields and
# the key-based authorization field), with this estate's values.
SEED_DEACTIVATE = {"hardware_id": "ws-old-laptop", "product": "acmecad", "license_key": KEY}


def connection(**extra: object) -> LicenseSpringConnection:
    return LicenseSpringConnection(api_key_env="K", shared_key_env="S", management_key_env="M",
                                   management_url_env="MU", **extra)  # type: ignore[arg-type]


def make(simulator, vendor_http, env=ENV, **extra) -> LicenseSpringProvider:
    return LicenseSpringProvider(connection(**extra), vendor_http(simulator),
                                 Secrets(environ=env))


@pytest.fixture
def simulator() -> LicenseSpringSimulator:
    return LicenseSpringSimulator()


@pytest.fixture
def provider(simulator, vendor_http) -> LicenseSpringProvider:
    return make(simulator, vendor_http, user_passwords={"dana@acme.example": "DANA"})


def device(hardware_id: str, license: str = KEY) -> Grant:
    return Grant(provider="licensespring", pool=license, license=license,
                 subject=Subject(kind="device", id=hardware_id))


def add(hardware_id: str, license: str = KEY) -> Change:
    return Change(kind=ChangeKind.ADD, after=device(hardware_id, license), reason="t")


def remove(hardware_id: str, license: str = KEY) -> Change:
    return Change(kind=ChangeKind.REMOVE, before=device(hardware_id, license), reason="t")


async def held(provider: LicenseSpringProvider) -> set[tuple[str, str]]:
    state = await provider.read(ProviderDesired(provider="licensespring"))
    return {(g.license, g.subject.id) for g in state.grants}


async def run_in_phase_order(provider, actions: Sequence[Action]) -> list[OutcomeStatus]:
    """What apply does within one provider: lower phases first, ties by id."""
    ordered = sorted(actions, key=lambda a: (a.phase, a.id))
    return [(await provider.execute(action)).status for action in ordered]


def test_signature_is_the_documented_example():
    # The vendor's worked example (Request Signature page): fake shared key, fixed Date.
    assert sign("kw4qSnpSwXzgiv5yxYpZZmFEd9QAeiKTQ6OuyMja", "Tue, 07 Jun 2011 20:51:35 GMT") \
        == "UDysfR6MndUZReo07Y9r+vErn8vSxrnQ5ulit18iJ/Q="


async def test_read_is_two_paged_lists_not_one_call_per_device(provider, simulator):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    assert {(g.license, g.subject.id) for g in state.grants} == {
        (KEY, "ws-design-01"), (KEY, "ws-design-02"), (KEY, "ws-old-laptop"),
        (VIZ, "ws-design-01"), ("acmecloud/dana@acme.example", "dana-laptop")}
    pools = {p.id: (p.capacity, p.used) for p in state.pools}
    assert pools[KEY] == (3, 3) and pools[RENDER] == (4, 0)
    log = simulator.request_log()
    assert sorted(e["path"] for e in log) == ["/api/v1/devices/", "/api/v1/licenses/"]
    assert all("limit=100" in e["query"] for e in log)
    assert all(e["headers"]["authorization"] == "Api-Key sandbox-licensespring-management-key"
               for e in log)


async def test_read_follows_every_page_of_a_large_estate(vendor_http):
    seed = LicenseSpringSimulator.default_seed()
    seed["licenses"][0]["max_activations"] = 300
    seed["licenses"][0]["devices"] = [
        {"id": 10_000 + i, "hardware_id": f"hw-{i:03}", "device_active": i % 5 != 0}
        for i in range(250)]
    simulator = LicenseSpringSimulator(seed=seed)
    state = await make(simulator, vendor_http).read(ProviderDesired(provider="licensespring"))
    on_key = {g.subject.id for g in state.grants if g.license == KEY}
    assert len(on_key) == 200 and "hw-000" not in on_key and "hw-249" in on_key
    device_pages = [e for e in simulator.request_log() if e["path"] == "/api/v1/devices/"]
    # No documented filter for active devices: all 254 are listed, 100 a page, and the
    # device object's `device_active` tells the 202 holding a seat.
    assert len(device_pages) == 3


async def test_two_products_are_each_read_once_under_their_own_names(vendor_http):
    """`connection.products` scopes with the documented `product_short_code`: against a
    server that ignores unknown filters, a misspelt one would list every licence once per
    product, rename each `<key>#<id>` and leave no declared licence matching."""
    simulator = LicenseSpringSimulator()
    provider = make(simulator, vendor_http, products=("acmecad", "acmeviz"))
    state = await provider.read(ProviderDesired(provider="licensespring"))
    assert sorted(p.id for p in state.pools) == sorted([KEY, "ACAD-EXPD-0000-0001", VIZ])
    assert {(g.license, g.subject.id) for g in state.grants} == {
        (KEY, "ws-design-01"), (KEY, "ws-design-02"), (KEY, "ws-old-laptop"),
        (VIZ, "ws-design-01")}
    queries = sorted(e["query"] for e in simulator.request_log()
                     if e["path"] == "/api/v1/licenses/")
    assert len(queries) == 2 and all("product_short_code=" in q for q in queries)


async def test_a_deactivated_device_is_listed_but_holds_no_seat(simulator, vendor_http):
    """Devices are listed unfiltered (no documented activity filter); the row's own
    `device_active` decides, so a deactivation frees the seat in the next read."""
    simulator.state["licenses"][0]["devices"][2]["device_active"] = False
    state = await make(simulator, vendor_http).read(ProviderDesired(provider="licensespring"))
    on_key = {g.subject.id for g in state.grants if g.license == KEY}
    assert on_key == {"ws-design-01", "ws-design-02"}
    assert {p.id: p.used for p in state.pools}[KEY] == 2


async def test_user_based_licenses_are_named_by_product_and_user(vendor_http):
    seed = LicenseSpringSimulator.default_seed()
    seed["licenses"].append({"id": 1006, "product": "acmecloud", "max_activations": 1,
                             "user": {"username": "dana@acme.example", "password": "p"},
                             "devices": []})
    provider = make(LicenseSpringSimulator(seed=seed), vendor_http)
    state = await provider.read(ProviderDesired(provider="licensespring"))
    names = {pool.id for pool in state.pools}
    # Dana holds licenses in two products (apart by product) and two in one (apart by id).
    assert {RENDER, "acmecloud/dana@acme.example#1003",
            "acmecloud/dana@acme.example#1006"} <= names
    assert ("acmecloud/dana@acme.example#1003", "dana-laptop") in {
        (g.license, g.subject.id) for g in state.grants}


async def test_swap_at_max_activations_works_because_the_release_runs_first(provider):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    actions = provider.actions([add("ws-design-03"), remove("ws-old-laptop")], state)
    release = next(a for a in actions if a.verb == "release")
    assign = next(a for a in actions if a.verb == "assign")
    assert release.frees and release.phase < assign.phase and not assign.frees
    assert await run_in_phase_order(provider, actions) == [OutcomeStatus.SUCCEEDED] * 2
    now = await held(provider)
    assert (KEY, "ws-design-03") in now and (KEY, "ws-old-laptop") not in now


async def test_the_same_swap_taking_first_is_refused_by_the_vendor(provider):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    actions = provider.actions([add("ws-design-03"), remove("ws-old-laptop")], state)
    backwards = sorted(actions, key=lambda a: -a.phase)
    outcome = await provider.execute(backwards[0])
    assert outcome.status is OutcomeStatus.FAILED
    assert "license_activated_max_times" in outcome.message


async def test_seed_deactivate_request_is_the_release_preview_and_what_is_sent(provider,
                                                                                simulator):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (release,) = provider.actions([remove("ws-old-laptop")], state)
    assert release.request.method == "POST"
    assert release.request.url == f"{SANDBOX}/api/v4/deactivate_license"
    assert release.request.body == SEED_DEACTIVATE
    assert (await provider.execute(release)).status is OutcomeStatus.SUCCEEDED
    sent = simulator.request_log()[-1]
    assert sent["path"] == "/api/v4/deactivate_license" and sent["body"] == SEED_DEACTIVATE
    assert sent["headers"]["authorization"].startswith('algorithm="hmac-sha256",headers="date",')


async def test_device_not_found_on_release_counts_as_done(provider):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (release,) = provider.actions([remove("ghost")], state)
    outcome = await provider.execute(release)
    assert outcome.status is OutcomeStatus.ALREADY


async def test_wrong_shared_key_is_rejected_and_never_printed(simulator, vendor_http):
    provider = make(simulator, vendor_http, {**ENV, "S": "not-the-shared-key"})
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (release,) = provider.actions([remove("ws-old-laptop")], state)
    outcome = await provider.execute(release)
    assert outcome.status is OutcomeStatus.FAILED and "signature_mismatch" in outcome.message
    assert "not-the-shared-key" not in outcome.message
    assert (KEY, "ws-old-laptop") in await held(provider)


async def test_user_based_activation_sends_the_password_masked_in_the_preview(provider):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (assign,) = provider.actions([add("render-01", RENDER)], state)
    assert assign.request.body == {"hardware_id": "render-01", "product": "acmerender",
                                   "username": "dana@acme.example", "password": "***",
                                   "license_id": 1005}
    assert "password" not in assign.call.body, "a secret never sits in the plan"
    assert "sandbox-dana-password" not in assign.model_dump_json()
    assert (await provider.execute(assign)).status is OutcomeStatus.SUCCEEDED
    assert (RENDER, "render-01") in await held(provider)


async def test_a_saved_action_runs_and_confirms_without_a_fresh_read(provider, simulator,
                                                                      vendor_http):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (assign,) = provider.actions([add("render-01", RENDER)], state)
    saved = Action.model_validate_json(assign.model_dump_json())
    later = make(simulator, vendor_http, user_passwords={"dana@acme.example": "DANA"})
    assert await later.confirm(saved) is False
    assert (await later.execute(saved)).status is OutcomeStatus.SUCCEEDED
    assert await later.confirm(saved) is True


async def test_plan_refuses_activations_the_vendor_would_refuse(simulator, vendor_http):
    provider = make(simulator, vendor_http)  # no user passwords configured
    state = await provider.read(ProviderDesired(provider="licensespring"))
    desired = ProviderDesired(provider="licensespring", grants=(
        device("ws-new", "ACAD-EXPD-0000-0001"), device("render-01", RENDER),
        device("ws-design-01", KEY)))
    problems = [p.message for p in provider.check(desired, state, [])]
    assert len(problems) == 2
    assert "'ACAD-EXPD-0000-0001' expired on 2024-12-31" in problems[0]
    assert "dana@acme.example, lee@acme.example" in problems[1]


async def test_unlimited_activations_has_no_capacity(vendor_http):
    seed = LicenseSpringSimulator.default_seed()
    seed["licenses"][1]["allow_unlimited_activations"] = True
    provider = make(LicenseSpringSimulator(seed=seed), vendor_http)
    state = await provider.read(ProviderDesired(provider="licensespring"))
    assert {p.id: p.capacity for p in state.pools}[VIZ] is None


def test_official_sdk_activates_checks_and_deactivates_and_reconciler_sees_it():
    from licensespring.api import APIClient
    from licensespring.api.error import ClientError

    simulator = LicenseSpringSimulator()
    with ServedSimulators({"licensespring": simulator}) as served:
        url = served.urls["licensespring"]
        domain = url.removeprefix("http://")
        sdk = APIClient(api_key=ENV["K"], shared_key=ENV["S"], api_protocol="http",
                        api_domain=domain, verify_license_signature=False)
        activated = sdk.activate_license(product="acmeviz", hardware_id="sdk-box",
                                         license_key=VIZ)
        assert activated["times_activated"] == 2
        checked = sdk.check_license(product="acmeviz", hardware_id="sdk-box", license_key=VIZ)
        assert checked["license_key"] == VIZ
        sdk.activate_license(product="acmerender", hardware_id="lee-box",
                             username="lee@acme.example", password="sandbox-lee-password")
        seen = _read_over_http(url)
        assert {(VIZ, "sdk-box"), (RENDER, "lee-box")} <= seen
        answer = sdk.deactivate_license(product="acmeviz", hardware_id="sdk-box",
                                        license_key=VIZ)
        assert answer == "license_deactivated"
        assert (VIZ, "sdk-box") not in _read_over_http(url)
        with pytest.raises(ClientError) as gone:
            sdk.deactivate_license(product="acmeviz", hardware_id="sdk-box", license_key=VIZ)
        assert gone.value.code == "device_not_found"

        wrong = APIClient(api_key=ENV["K"], shared_key="wrong", api_protocol="http",
                          api_domain=domain, verify_license_signature=False)
        with pytest.raises(ClientError) as caught:
            wrong.check_license(product="acmeviz", hardware_id="ws-design-01", license_key=VIZ)
        assert (caught.value.status, caught.value.code) == (400, "signature_mismatch")

        unknown_key = APIClient(api_key="not-a-key", shared_key=ENV["S"], api_protocol="http",
                                api_domain=domain, verify_license_signature=False)
        with pytest.raises(ClientError) as refused:
            unknown_key.check_license(product="acmeviz", hardware_id="ws-design-01",
                                      license_key=VIZ)
        assert (refused.value.status, refused.value.code) == (400, "invalid_api_key")

        # Unknown paths and wrong methods answer the vendor's JSON error, so the SDK
        # raises ClientError (a plain-text 404 made it raise JSONDecodeError).
        with pytest.raises(ClientError) as missing:
            sdk.send_request(method="post", endpoint="/no_such_endpoint", json_data={})
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        with pytest.raises(ClientError) as method:
            sdk.send_request(method="get", endpoint="/activate_license")
        assert (method.value.status, method.value.code) == (405, "method_not_allowed")

        # User-based: the SDK deactivates with the username alone, as the SDK sends it.
        assert sdk.deactivate_license(product="acmerender", hardware_id="lee-box",
                                      username="lee@acme.example") == "license_deactivated"
        assert (RENDER, "lee-box") not in _read_over_http(url)
    sdk_calls = [e for e in simulator.request_log() if e["path"].startswith("/api/v4/")]
    assert {e["headers"]["user-agent"].split("/")[0] for e in sdk_calls} == {"python-requests"}
    assert sdk_calls[0]["body"]["sdk_ver"].startswith("PythonSDK")


def _read_over_http(url: str) -> set[tuple[str, str]]:
    """reconciler's own read, over real HTTP against the same served simulator."""

    async def read() -> set[tuple[str, str]]:
        async with new_client(url) as client:
            provider = LicenseSpringProvider(connection(), VendorHttp(client, Limits()),
                                             Secrets(environ={**ENV, "MU": url}))
            return await held(provider)

    return asyncio.run(read())



async def test_user_based_release_adds_the_password_only_when_sending(provider, simulator):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (release,) = provider.actions([remove("dana-laptop", "acmecloud/dana@acme.example")], state)
    assert "password" not in release.call.body and release.request.body["password"] == "***"
    assert (await provider.execute(release)).status is OutcomeStatus.SUCCEEDED
    sent = simulator.request_log()[-1]
    assert sent["path"] == "/api/v4/deactivate_license"
    assert sent["body"] == {**release.call.body, "password": "sandbox-dana-password"}
    assert await provider.confirm(release) is True


async def test_the_started_row_is_written_before_the_password_bearing_copy_leaves(
        provider, simulator):
    """The call sent is a copy of `action.call` (password added): the applier's
    announcement must still fire before it, or a crash would leave no "started" row."""
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (assign,) = provider.actions([add("render-02", RENDER)], state)
    seen_when_announced: list[int] = []

    async def started() -> None:
        seen_when_announced.append(len(simulator.request_log()))

    with announcing(assign.call, started) as announcement:
        assert (await provider.execute(assign)).status is OutcomeStatus.SUCCEEDED
    assert announcement.fired and len(seen_when_announced) == 1
    sent = simulator.request_log()[seen_when_announced[0]:]
    assert [e["path"] for e in sent] == ["/api/v4/activate_license"]
    assert sent[0]["body"]["password"] == "sandbox-dana-password"


async def test_a_wrong_user_password_fails_with_status_and_vendor_message(simulator,
                                                                          vendor_http):
    provider = make(simulator, vendor_http, {**ENV, "DANA": "not-danas"},
                    user_passwords={"dana@acme.example": "DANA"})
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (release,) = provider.actions([remove("dana-laptop", "acmecloud/dana@acme.example")], state)
    outcome = await provider.execute(release)
    assert outcome.status is OutcomeStatus.FAILED
    assert "license_not_found" in outcome.message and "(HTTP 400)" in outcome.message
    assert "None" not in outcome.message and "not-danas" not in outcome.message
    assert await provider.confirm(release) is False
    assert ("acmecloud/dana@acme.example", "dana-laptop") in await held(provider)


async def test_confirm_looks_the_device_activation_up_for_key_based_licenses(provider):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    assign, release = sorted(provider.actions([add("ws-new", VIZ), remove("ws-design-01", VIZ)],
                                              state), key=lambda a: a.verb)
    assert (assign.verb, release.verb) == ("assign", "release")
    assert await provider.confirm(assign) is False and await provider.confirm(release) is False
    assert (await provider.execute(assign)).status is OutcomeStatus.SUCCEEDED
    assert await provider.confirm(assign) is True and await provider.confirm(release) is False
    assert (await provider.execute(release)).status is OutcomeStatus.SUCCEEDED
    assert await provider.confirm(release) is True
    # Same hardware id on another license does not count as this activation.
    (other,) = provider.actions([add("ws-design-01", "ACAD-EXPD-0000-0001")], state)
    assert await provider.confirm(other) is False


async def test_confirm_reports_a_failed_read_with_status_never_none(simulator, vendor_http):
    provider = make(simulator, vendor_http, {**ENV, "M": "wrong-management-key"})
    planner = LicenseSpringProvider(connection(), vendor_http(simulator), Secrets(environ=ENV))
    state = await planner.read(ProviderDesired(provider="licensespring"))
    (assign,) = planner.actions([add("ws-new", VIZ)], state)
    with pytest.raises(VendorError) as failed:
        await provider.confirm(assign)
    assert "HTTP 401" in str(failed.value) and "None" not in str(failed.value)
