"""The reviewed plan is exactly what runs: an edited plan file is refused, never sent.

Every tampering on every vendor, and "a saved plan applies once", are properties of the
conformance kit (`reconciler.testing`, run by tests/e2e/test_conformance.py); the tests
here are about staleness, locks and the YAML a plan file may name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import changing, request_log
from tests.e2e.reliability import fast_example


def test_plan_that_went_stale_is_refused_naming_the_difference(workspace, cli):
    desired = fast_example(workspace, "yext")
    assert cli("plan", str(desired), "--sandbox", "--out", "plan.json").exit_code == 0
    text = (desired / "yext.yaml").read_text()
    (desired / "yext.yaml").write_text(text.replace("max_removals: 10", "max_removals: 9"))
    refused = cli("apply", "plan.json", "--sandbox")
    assert refused.exit_code == 1
    assert "desired state (YAML) changed" in refused.output
    assert changing(request_log(workspace, "yext")) == []


def test_max_removals_is_checked_again_at_apply(workspace, cli):
    desired = str(fast_example(workspace, "yext"))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    plan = json.loads(Path("plan.json").read_text())
    removals = sum(1 for a in plan["actions"] if a["verb"] in {"remove", "release"})
    assert removals >= 1
    refused = cli("apply", "plan.json", "--sandbox", "--max-removals", str(removals - 1))
    assert refused.exit_code == 1
    assert "removal" in refused.output.lower()
    assert changing(request_log(workspace, "yext")) == []


def test_plan_file_that_is_not_json_gives_a_clear_error(workspace, cli):
    Path("plan.json").write_text("{not json")
    refused = cli("apply", "plan.json", "--sandbox")
    assert refused.exit_code == 1
    assert "not a reconciler plan file" in refused.output
    assert "Traceback" not in refused.output


def _apply_in_child(directory: str, desired: str, start: Any, results: Any) -> None:
    """One `reconciler apply` in its own process, released at the same moment as its rival."""
    import os

    from click.testing import CliRunner

    from reconciler.cli import main

    os.chdir(directory)
    start.wait()
    result = CliRunner().invoke(main, ["apply", desired, "--sandbox", "--auto-approve"])
    results.put((result.exit_code, result.output))


RACES = 20


def test_two_concurrent_applies_one_is_refused_naming_the_holder(workspace, cli):
    """The lock is taken before reading: of two applies started together, one waits for
    nothing and the other is refused at once, in every one of the races."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    outcomes: list[list[tuple[int, str]]] = []
    for race in range(RACES):
        directory = workspace / f"race-{race}"
        directory.mkdir()
        desired = fast_example(directory, "yext")
        state = workspace / ".reconciler" / "sandbox"
        (directory / ".reconciler").mkdir()
        (directory / ".reconciler" / "sandbox").symlink_to(state)
        assert cli("sandbox", "reset").exit_code == 0
        # Slow enough that the first run still holds the lock when the second asks.
        faults = cli("sandbox", "faults", "yext", "--set", '{"latency_ms": 40}')
        assert faults.exit_code == 0
        start = context.Barrier(2)
        results = context.Queue()
        children = [
            context.Process(target=_apply_in_child, args=(str(directory), str(desired),
                                                         start, results))
            for _ in range(2)
        ]
        for child in children:
            child.start()
        pair = [results.get(timeout=60) for _ in children]
        for child in children:
            child.join(timeout=60)
        outcomes.append(sorted(pair))
    for pair in outcomes:
        (won, _), (lost, refusal) = pair
        assert (won, lost) == (0, 1), pair
        assert "another run holds" in refusal and "pid " in refusal, refusal


def test_yaml_given_with_the_plan_file_pins_what_it_may_name(workspace, cli):
    """`apply PLANFILE PATH...`: an edited plan cannot switch to other YAML in the checkout."""
    desired = fast_example(workspace, "yext")
    other = workspace / "other"
    other.mkdir()
    (other / "yext.yaml").write_text((desired / "yext.yaml").read_text())
    assert cli("plan", str(other), "--sandbox", "--out", "plan.json").exit_code == 0
    refused = cli("apply", "plan.json", str(desired), "--sandbox")
    assert refused.exit_code == 1 and "was made from" in refused.output
    assert changing(request_log(workspace, "yext")) == []
    assert cli("plan", str(desired), "--sandbox", "--out", "plan.json").exit_code == 0
    applied = cli("apply", "plan.json", str(desired), "--sandbox")
    assert applied.exit_code == 0, applied.output


def test_a_subject_id_holding_a_secret_value_still_applies_from_its_plan_file(workspace, cli):
    """The plan file masks every secret value, even inside an id; the rebuilt plan is
    compared as it would be saved, so an honest plan is not refused for it."""
    import yaml

    desired = fast_example(workspace, "yext")
    document = yaml.safe_load((desired / "yext.yaml").read_text())
    # The sandbox's API key, as part of an entity id the YAML names.
    document["providers"]["yext"]["subjects"].append(
        {"entity": "sandbox-yext-api-key-store", "licenses": ["listings-basic"]})
    (desired / "yext.yaml").write_text(yaml.safe_dump(document))
    assert cli("plan", str(desired), "--sandbox", "--out", "plan.json").exit_code == 0
    saved = Path("plan.json").read_text()
    assert "sandbox-yext-api-key" not in saved and "***-store" in saved
    applied = cli("apply", "plan.json", "--sandbox")
    assert "refusing the saved plan" not in applied.output, applied.output


def test_plan_file_nested_100000_deep_gives_one_line(workspace, cli):
    Path("plan.json").write_text("[" * 100_000 + "]" * 100_000)
    refused = cli("apply", "plan.json", "--sandbox")
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        "error: plan.json is not a reconciler plan file: nested too deeply to be a plan"]

