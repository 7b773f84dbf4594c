"""A vendor is a provider module, a simulator module and a seed file, found by discovery.

The toy vendor below lives only in tests/e2e/toyvendor/: installed the way a vendor
package would be (a distribution with two entry points on the path), it is planned,
applied, checked for drift and imported through the CLI, and appears in the schema,
with no other file of the project touched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import changing, request_log

TOY = Path(__file__).parent / "toyvendor"

ENTRY_POINTS = """\
[reconciler.providers]
toyvendor = toyvendor.provider:ToyProvider

[reconciler.simulators]
toyvendor = toyvendor.simulator:ToySimulator
"""


@pytest.fixture
def toy_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    shutil.copytree(TOY, site / "toyvendor")
    info = site / "toyvendor-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyvendor\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))


DESIRED = {
    "providers": {
        "toyvendor": {
            "connection": {"key_env": "TOY_KEY"},
            "pools": {"welder": {"prune": True}},
            "subjects": [
                {"robot": "r1", "licenses": ["welder", "painter"]},
                {"robot": "r2", "licenses": ["painter", "welder"]},
            ],
        }
    }
}


def test_a_vendor_found_by_entry_points_runs_through_every_command(
    toy_installed, workspace, cli
):
    desired = workspace / "desired"
    desired.mkdir()
    (desired / "toy.yaml").write_text(yaml.safe_dump(DESIRED))
    assert cli("validate", str(desired)).exit_code == 0
    planned = cli("plan", str(desired), "--sandbox", "--output", "json")
    assert planned.exit_code == 0, planned.output
    actions = {a["id"] for a in json.loads(planned.stdout)["actions"]}
    assert actions == {"toyvendor:welder:r9:remove", "toyvendor:painter:r1:assign",
                       "toyvendor:painter:r2:assign", "toyvendor:welder:r2:assign"}
    assert cli("drift", str(desired), "--sandbox").exit_code == 2
    applied = cli("apply", str(desired), "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert len(changing(request_log(workspace, "toyvendor"))) == 4
    assert cli("drift", str(desired), "--sandbox").exit_code == 0
    imported = cli("import", "toyvendor", "--sandbox")
    assert imported.exit_code == 0, imported.output
    document = yaml.safe_load(imported.stdout)
    held = {s["robot"]: sorted(s["licenses"]) for s in
            document["providers"]["toyvendor"]["subjects"]}
    assert held == {"r1": ["painter", "welder"], "r2": ["painter", "welder"]}
    listed = cli("--help").output
    assert "toyvendor" in listed and "Toy vendor: robots hold licenses from pools" in listed
    schema = json.loads(cli("schema").stdout)
    assert "ToyConnectionSubject" in schema["$defs"]
    assert "robot" in schema["$defs"]["ToyConnectionSubject"]["properties"]


def test_a_kind_the_vendor_does_not_manage_is_refused(toy_installed, workspace, cli):
    desired = workspace / "desired"
    desired.mkdir()
    wrong = {"providers": {"toyvendor": {"connection": {"key_env": "TOY_KEY"},
                                         "subjects": [{"entity": "r1", "licenses": []}]}}}
    (desired / "toy.yaml").write_text(yaml.safe_dump(wrong))
    refused = cli("validate", str(desired))
    assert refused.exit_code == 1
    assert "'toyvendor' has no subjects of kind 'entity' (it manages: robot)" in refused.output


def test_the_fault_matrix_reaches_a_vendor_installed_from_its_own_package(
    toy_installed, workspace, cli
):
    """Its example ships beside its seed: the reliability tests find and run it."""
    from tests.e2e.reliability import FAULT_PROFILES, fast_example, providers_with_examples

    assert "toyvendor" in providers_with_examples()
    desired = str(fast_example(workspace, "toyvendor"))
    faults = json.dumps(FAULT_PROFILES["429-bursts"])
    assert cli("sandbox", "faults", "toyvendor", "--set", faults).exit_code == 0
    applied = cli("apply", desired, "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    log = request_log(workspace, "toyvendor")
    assert any(entry["status"] == 429 for entry in log), "no fault was injected"
    assert cli("plan", desired, "--sandbox", "--detailed-exitcode").exit_code == 0
