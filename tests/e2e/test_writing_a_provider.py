"""docs/writing-a-provider.md builds a working vendor: its code blocks, extracted as they
are, make a package that passes the conformance kit.

Every fenced block whose info string names a file (```python file=tiny/provider.py) is
written to that path; the page's pyproject.toml gives the entry points, installed the way
pip would (a dist-info on the path).
"""

from __future__ import annotations

import re
import tomllib

import pytest

from reconciler.testing import properties
from reconciler.testing.crash import VendorProcess, check, crash_run, default_estate
from reconciler.testing.tampering import TAMPERINGS
from reconciler.testing.vendor import KitVendor
from tests.e2e.conftest import REPO

PAGE = REPO / "docs" / "writing-a-provider.md"
BLOCK = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def page_files() -> dict[str, str]:
    return {path: body for _, path, body in BLOCK.findall(PAGE.read_text(encoding="utf-8"))}


@pytest.fixture
def tiny(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> KitVendor:
    site = tmp_path_factory.mktemp("site")
    files = page_files()
    for path, body in files.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    (site / "tiny" / "__init__.py").touch()
    project = tomllib.loads(files["pyproject.toml"])["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["entry-points"].items()))
    monkeypatch.syspath_prepend(str(site))
    return KitVendor.find("tiny")


def test_the_page_names_every_part_of_a_vendor():
    assert {"pyproject.toml", "tiny/provider.py", "tiny/simulator.py", "tiny/seeds/tiny.yaml",
            "tiny/seeds/tiny.example.yaml", "tests/test_tiny_conformance.py"} <= set(page_files())


def test_the_page_s_provider_passes_the_kit(tiny, workspace):
    properties.check_contract_fixtures(tiny)
    properties.check_converges(tiny, workspace)
    for prop in (properties.check_import_round_trip, properties.check_hostile_ids,
                 properties.check_secrets_hidden, properties.check_plan_applies_once,
                 properties.check_probe_reads_only, properties.check_converges_served):
        fresh = workspace / prop.__name__
        fresh.mkdir()
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(fresh)
            prop(tiny, fresh)


@pytest.mark.parametrize("profile", sorted(properties.FAULT_PROFILES))
def test_the_page_s_provider_converges_under_faults(tiny, workspace, profile):
    properties.check_fault_profile(tiny, profile, workspace)


@pytest.mark.parametrize("tampering", ["host", "path", "body"])
def test_the_page_s_provider_refuses_an_edited_plan(tiny, workspace, tampering):
    assert tampering in TAMPERINGS
    properties.check_tampered_plan_refused(tiny, tampering, workspace)


def test_the_page_s_provider_converges_after_a_sigkill(tiny, workspace):
    vendor = VendorProcess(default_estate(tiny), workspace)
    try:
        for run in range(2):
            folder = workspace / f"run-{run}"
            folder.mkdir()
            check(crash_run(run, vendor, folder))
    finally:
        vendor.stop()
