"""The LicenseSpring provider against its simulator; the official SDK as the judge."""

from __future__ import annotations

import json

import pytest

from reconciler.model import (
    Change,
    ChangeKind,
    Grant,
    OutcomeStatus,
    ProviderDesired,
    Subject,
)
from reconciler.providers.licensespring import LicenseSpringConnection, LicenseSpringProvider
from reconciler.sandbox.licensespring import LicenseSpringSimulator
from reconciler.sandbox.serve import ServedSimulators
from reconciler.secrets import Secrets

ENV = {"K": "sandbox-licensespring-api-key", "S": "sandbox-licensespring-shared-key",
       "M": "sandbox-licensespring-management-key"}
KEY = "ACAD-7H2K-99QX-4M1P"
# The body the seed page documents for /api/v4/deactivate_license (required fields and
# the key-based authorization field), with this estate's values.
SEED_DEACTIVATE = {"hardware_id": "ws-old-laptop", "product": "acmecad", "license_key": KEY}


def make(simulator, vendor_http, env=ENV) -> LicenseSpringProvider:
    connection = LicenseSpringConnection(api_key_env="K", shared_key_env="S",
                                         management_key_env="M")
    return LicenseSpringProvider(connection, vendor_http(simulator), Secrets(environ=env))


@pytest.fixture
def simulator() -> LicenseSpringSimulator:
    return LicenseSpringSimulator()


@pytest.fixture
def provider(simulator, vendor_http) -> LicenseSpringProvider:
    return make(simulator, vendor_http)


def device(hardware_id: str, license: str = KEY) -> Grant:
    return Grant(provider="licensespring", pool=license, license=license,
                 subject=Subject(kind="device", id=hardware_id))


async def test_read_is_two_paged_lists_not_one_call_per_device(provider, simulator):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    assert {(g.license, g.subject.id) for g in state.grants} >= {
        (KEY, "ws-old-laptop"), ("user/dana@acme.example", "dana-laptop")}
    pools = {p.id: (p.capacity, p.used) for p in state.pools}
    assert pools[KEY] == (3, 3)
    paths = [e["path"] for e in simulator.request_log()]
    assert sorted(paths) == ["/api/v1/devices/", "/api/v1/licenses/"]


async def test_swap_at_max_activations_works_because_the_release_runs_first(provider, simulator):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    release, assign = provider.actions([
        Change(kind=ChangeKind.REMOVE, before=device("ws-old-laptop"), reason="t"),
        Change(kind=ChangeKind.ADD, after=device("ws-design-03"), reason="t")], state)
    assert release.phase < assign.phase and release.frees
    assert release.request.body == SEED_DEACTIVATE
    assert release.request.url.endswith("/api/v4/deactivate_license")
    assert (await provider.execute(assign)).status is OutcomeStatus.FAILED, "full: 3 of 3"
    assert (await provider.execute(release)).status is OutcomeStatus.SUCCEEDED
    assert (await provider.execute(assign)).status is OutcomeStatus.SUCCEEDED


async def test_full_license_failure_names_the_vendor_code(provider):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (assign,) = provider.actions([Change(kind=ChangeKind.ADD, after=device("ws-x"),
                                         reason="t")], state)
    outcome = await provider.execute(assign)
    assert "license_activated_max_times" in outcome.message


async def test_device_not_found_on_release_counts_as_done(provider):
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (release,) = provider.actions([Change(kind=ChangeKind.REMOVE, before=device("ghost"),
                                          reason="t")], state)
    assert (await provider.execute(release)).status is OutcomeStatus.ALREADY


async def test_wrong_shared_key_is_rejected_and_never_printed(simulator, vendor_http):
    provider = make(simulator, vendor_http, {**ENV, "S": "not-the-shared-key"})
    state = await provider.read(ProviderDesired(provider="licensespring"))
    (release,) = provider.actions([Change(kind=ChangeKind.REMOVE,
                                          before=device("ws-old-laptop"), reason="t")], state)
    outcome = await provider.execute(release)
    assert outcome.status is OutcomeStatus.FAILED and "invalid signature" in outcome.message
    assert "not-the-shared-key" not in outcome.message


def test_official_sdk_activates_checks_and_deactivates_and_reconciler_sees_it():
    from licensespring.api import APIClient

    simulator = LicenseSpringSimulator()
    with ServedSimulators({"licensespring": simulator}) as served:
        domain = served.urls["licensespring"].removeprefix("http://")
        sdk = APIClient(api_key=ENV["K"], shared_key=ENV["S"], api_protocol="http",
                        api_domain=domain, verify_license_signature=False)
        activated = sdk.activate_license(product="acmeviz", hardware_id="sdk-box",
                                         license_key="AVIZ-1QQ3-8TTR-2ZZ9")
        assert activated["times_activated"] == 2
        checked = sdk.check_license(product="acmeviz", hardware_id="sdk-box",
                                    license_key="AVIZ-1QQ3-8TTR-2ZZ9")
        assert checked["license_key"] == "AVIZ-1QQ3-8TTR-2ZZ9"
        grants = _read_over_http(served.urls["licensespring"])
        assert ("AVIZ-1QQ3-8TTR-2ZZ9", "sdk-box") in grants
        answer = sdk.deactivate_license(product="acmeviz", hardware_id="sdk-box",
                                        license_key="AVIZ-1QQ3-8TTR-2ZZ9")
        assert answer == "license_deactivated"
        assert ("AVIZ-1QQ3-8TTR-2ZZ9", "sdk-box") not in _read_over_http(
            served.urls["licensespring"])
        from licensespring.api.error import ClientError

        wrong = APIClient(api_key=ENV["K"], shared_key="wrong", api_protocol="http",
                          api_domain=domain, verify_license_signature=False)
        with pytest.raises(ClientError) as caught:
            wrong.check_license(product="acmeviz", hardware_id="dana-laptop",
                                license_key="AVIZ-1QQ3-8TTR-2ZZ9")
        assert caught.value.code == "unauthorized"
    sdk_calls = [e for e in simulator.request_log() if e["path"].startswith("/api/v4/")]
    assert {e["headers"]["user-agent"].split("/")[0] for e in sdk_calls} == {"python-requests"}
    assert json.dumps(sdk_calls[0]["body"]).count("PythonSDK") == 1


def _read_over_http(url: str) -> set[tuple[str, str]]:
    import asyncio

    from reconciler.http import VendorHttp, new_client
    from reconciler.model import Limits

    async def read() -> set[tuple[str, str]]:
        async with new_client(url) as client:
            provider = LicenseSpringProvider(
                LicenseSpringConnection(api_key_env="K", shared_key_env="S",
                                        management_key_env="M"),
                VendorHttp(client, Limits()), Secrets(environ=ENV))
            state = await provider.read(ProviderDesired(provider="licensespring"))
            return {(g.license, g.subject.id) for g in state.grants}

    return asyncio.run(read())
