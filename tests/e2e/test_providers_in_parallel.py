"""Providers apply side by side, each in its own phase order: a slow vendor delays no other."""

from __future__ import annotations

import json
import re

from tests.e2e.reliability import fast_example


def test_a_slow_vendor_does_not_hold_up_the_others(workspace, cli):
    for provider in ("uipath", "yext"):
        desired = fast_example(workspace, provider)
    planned = json.loads(cli("plan", str(desired), "--sandbox", "--output", "json").stdout)
    providers = [action["provider"] for action in planned["actions"]]
    # One block per provider in the plan, each with its own phases.
    assert providers == sorted(providers) and {"uipath", "yext"} <= set(providers)
    assert cli("sandbox", "faults", "uipath", "--set", '{"latency_ms": 400}').exit_code == 0
    applied = cli("apply", str(desired), "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    finished = [match.group(1) for match in
                re.finditer(r"succeeded: . \w+ +(\w+)/", applied.output)]
    assert sorted(finished) == sorted(providers)
    # Every Yext call (frees, then takes) is done before UiPath's first call returns,
    # although UiPath's frees come before Yext's takes in phase order.
    assert finished[: providers.count("yext")] == ["yext"] * providers.count("yext")
