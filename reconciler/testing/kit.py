"""The kit as pytest tests: star-import this module into a test module of yours.

    from reconciler.testing.kit import *  # noqa: F403

    CONFORMANCE_PROVIDERS = ["acme"]               # provider ids to hold to the kit
    CONFORMANCE_EXAMPLES = Path("examples/...")     # optional: folder of <id>.yaml examples

Every test below runs once per provider id (`pytest_generate_tests` reads the
module's `CONFORMANCE_PROVIDERS`); a failure message starts with the property's
name in brackets, e.g. `[converge]`, `[faults:dropped]`, `[sealed:path]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.testing import properties
from reconciler.testing.crash import Estate, VendorProcess, check, crash_run, default_estate
from reconciler.testing.tampering import TAMPERINGS
from reconciler.testing.vendor import KitVendor

__all__ = [
    "kit_vendor",
    "kit_vendor_processes",
    "kit_workspace",
    "pytest_generate_tests",
    "test_kit_contract_fixtures",
    "test_kit_converges",
    "test_kit_converges_served",
    "test_kit_edited_notes_still_applied_once",
    "test_kit_fault_profile",
    "test_kit_hostile_ids",
    "test_kit_import_round_trip",
    "test_kit_killed_apply_converges",
    "test_kit_plan_applies_once",
    "test_kit_probe_reads_only",
    "test_kit_secrets_hidden",
    "test_kit_tampered_plan_refused",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_provider" not in metafunc.fixturenames:
        return
    ids = getattr(metafunc.module, "CONFORMANCE_PROVIDERS", None)
    assert ids, f"{metafunc.module.__name__} imports the kit but sets no CONFORMANCE_PROVIDERS"
    if metafunc.function.__name__ == "test_kit_contract_fixtures":
        ids = [i for i in ids if i not in getattr(metafunc.module, "CONFORMANCE_NO_FIXTURES", ())]
    metafunc.parametrize("conformance_provider", list(ids))


@pytest.fixture
def kit_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch working directory: sandbox state and journal live under it."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def kit_vendor(conformance_provider: str, request: pytest.FixtureRequest) -> KitVendor:
    return KitVendor.find(conformance_provider,
                          getattr(request.module, "CONFORMANCE_EXAMPLES", None))


@pytest.fixture(scope="module")
def kit_vendor_processes(request: pytest.FixtureRequest,
                         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Each vendor's simulator in its own process, started on first use, one per module.
    The estate is the module's `CONFORMANCE_CRASH_ESTATE(provider)` when it sets one,
    else the vendor's seed and example (`reconciler.testing.crash.default_estate`)."""
    started: dict[str, VendorProcess] = {}
    scratch = tmp_path_factory.mktemp("vendors")
    chosen = getattr(request.module, "CONFORMANCE_CRASH_ESTATE", None)

    def get(vendor: KitVendor) -> VendorProcess:
        if vendor.id not in started:
            crash_estate: Estate = chosen(vendor.id) if chosen else default_estate(vendor)
            started[vendor.id] = VendorProcess(crash_estate, scratch)
        return started[vendor.id]

    yield get
    for process in started.values():
        process.stop()


def test_kit_contract_fixtures(kit_vendor: KitVendor) -> None:
    properties.check_contract_fixtures(kit_vendor)


def test_kit_converges(kit_vendor: KitVendor, kit_workspace: Path) -> None:
    properties.check_converges(kit_vendor, kit_workspace)


def test_kit_converges_served(kit_vendor: KitVendor, kit_workspace: Path) -> None:
    properties.check_converges_served(kit_vendor, kit_workspace)


def test_kit_import_round_trip(kit_vendor: KitVendor, kit_workspace: Path) -> None:
    properties.check_import_round_trip(kit_vendor, kit_workspace)


@pytest.mark.parametrize("profile", sorted(properties.FAULT_PROFILES))
def test_kit_fault_profile(kit_vendor: KitVendor, profile: str, kit_workspace: Path) -> None:
    properties.check_fault_profile(kit_vendor, profile, kit_workspace)


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_kit_tampered_plan_refused(kit_vendor: KitVendor, tampering: str,
                                   kit_workspace: Path) -> None:
    properties.check_tampered_plan_refused(kit_vendor, tampering, kit_workspace)


def test_kit_plan_applies_once(kit_vendor: KitVendor, kit_workspace: Path) -> None:
    properties.check_plan_applies_once(kit_vendor, kit_workspace)


def test_kit_edited_notes_still_applied_once(kit_vendor: KitVendor,
                                             kit_workspace: Path) -> None:
    properties.check_edited_notes_still_applied_once(kit_vendor, kit_workspace)


def test_kit_probe_reads_only(kit_vendor: KitVendor, kit_workspace: Path) -> None:
    properties.check_probe_reads_only(kit_vendor, kit_workspace)


@pytest.mark.parametrize("run", range(2))
def test_kit_killed_apply_converges(kit_vendor: KitVendor, run: int, kit_workspace: Path,
                                    kit_vendor_processes: Any) -> None:
    check(crash_run(run, kit_vendor_processes(kit_vendor), kit_workspace))


def test_kit_hostile_ids(kit_vendor: KitVendor, kit_workspace: Path) -> None:
    properties.check_hostile_ids(kit_vendor, kit_workspace)


def test_kit_secrets_hidden(kit_vendor: KitVendor, kit_workspace: Path) -> None:
    properties.check_secrets_hidden(kit_vendor, kit_workspace)

