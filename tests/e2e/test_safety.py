"""Partial failure, the apply lock, and canary secrets that must never leak."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import yaml

from reconciler.journal import Journal
from reconciler.lock import lock_scopes
from reconciler.model import Action
from reconciler.sandbox.base import Faults
from reconciler.sandbox.runtime import InProcessSandbox
from reconciler.sandbox.serve import ServedSimulators
from reconciler.sandbox.yext import YextSimulator
from tests.e2e.conftest import copy_example, request_log

CANARY = "canary-Zq8#secret/value+42"


def test_one_failed_action_does_not_stop_independent_ones(workspace, cli):
    desired = copy_example(workspace, "yext.yaml")
    document = yaml.safe_load((desired / "yext.yaml").read_text())
    document["providers"]["yext"]["subjects"].append(
        {"entity": "store-007", "licenses": [{"id": "reviews-plus", "expires": "2099-01-31"}]})
    (desired / "yext.yaml").write_text(yaml.safe_dump(document))
    first = cli("apply", str(desired), "--sandbox", "--auto-approve")
    assert first.exit_code == 1
    assert "failed: + assign   yext/reviews-plus  entity:store-007" in first.output
    assert "Entity not found: store-007" in first.output
    assert "skipped: + update" in first.output and "depends on failed" in first.output
    assert "succeeded: + assign   yext/knowledge-pro  entity:store-005" in first.output
    sandbox = InProcessSandbox(workspace / ".reconciler" / "sandbox")
    sandbox.simulator("yext").state["accounts"]["me"]["entities"].append("store-007")
    sandbox.simulator("yext").save()
    repaired = cli("apply", str(desired), "--sandbox", "--auto-approve")
    assert repaired.exit_code == 0, repaired.output
    assert cli("plan", str(desired), "--sandbox", "--detailed-exitcode").exit_code == 0


def test_second_apply_on_the_same_journal_is_refused_naming_the_holder(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    with Journal(Path(".reconciler/journal.db")) as journal, \
            lock_scopes(journal, [("yext", "*")]):
        refused = cli("apply", desired, "--sandbox", "--auto-approve")
        planned = cli("plan", desired, "--sandbox")
        # The lock is taken before reading: the refused runs did not even read the vendor.
        assert request_log(workspace, "yext") == []
        other = cli("plan", desired, "--sandbox", "--target", "yext/reviews-plus")
    assert planned.exit_code == 1 and "another run holds the lock on yext/*" in planned.output
    # A run limited to one pool only waits for runs that may change that pool.
    assert other.exit_code == 0, other.output
    assert refused.exit_code == 1
    assert "another run holds" in refused.output and "pid " in refused.output
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_canary_secret_appears_nowhere(workspace, cli):
    desired = str(copy_example(workspace, "yext.yaml"))
    seed = YextSimulator.default_seed()
    seed["api_keys"] = [CANARY]
    simulator = YextSimulator(seed=seed)
    outputs: list[str] = []
    with ServedSimulators({"yext": simulator}) as served:
        env = {"YEXT_BASE_URL": served.urls["yext"], "YEXT_API_KEY": CANARY}
        runs = [
            ("validate", desired),
            ("plan", desired, "--verbose", "--out", "plan.json"),
            ("plan", desired, "--output", "json"),
            ("plan", desired, "--output", "markdown"),
            ("apply", desired, "--dry-run", "--verbose"),
            ("apply", "plan.json", "--verbose"),
            ("journal",),
            ("journal", "--json"),
            ("drift", desired, "--verbose"),
        ]
        for args in runs:
            outputs.append(cli(*args, env=env).output)
        simulator.set_faults(Faults(error_rates={500: 1.0}))
        failing = cli("plan", desired, "--verbose", env={**env, "RECONCILER_X": "1"})
        assert failing.exit_code == 1
        outputs.append(failing.output)
        simulator.set_faults(Faults())
    unreachable = {"YEXT_BASE_URL": f"http://127.0.0.1:{_closed_port()}", "YEXT_API_KEY": CANARY}
    broken = cli("plan", desired, "--verbose", env=unreachable)
    assert broken.exit_code == 1
    outputs.append(broken.output)
    assert any("/license-packs/" in text for text in outputs), "previews were not shown at all"
    for text in outputs:
        assert CANARY not in text
    for path in [Path("plan.json"), *Path(".reconciler").rglob("*")]:
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
            from urllib.parse import quote
            assert quote(CANARY, safe="").encode() not in path.read_bytes(), path


def test_call_left_in_doubt_is_held_back_until_an_operator_settles_it(workspace, cli):
    target = copy_example(workspace, "admanager.yaml")
    document = yaml.safe_load((target / "admanager.yaml").read_text())
    # With no request search configured, nobody can tell whether a lost request was filed.
    document["providers"]["admanager"]["connection"]["requests_path"] = None
    (target / "admanager.yaml").write_text(yaml.safe_dump(document))
    desired = str(target)
    plan = cli("plan", desired, "--sandbox", "--output", "json")
    first = next(a for a in json.loads(plan.stdout)["actions"] if not a["repeatable"])
    action = Action.model_validate(first)
    with Journal(Path(".reconciler/journal.db")) as journal:
        journal.started(action)  # as if the process died while the request was in flight
    held = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    assert first["id"] not in [a["id"] for a in held["actions"]]
    assert any("outcome of an interrupted call is unknown" in n for n in held["notes"])
    settled = cli("journal", "--resolve", first["id"], "not-done")
    assert settled.exit_code == 0, settled.output
    again = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    assert first["id"] in [a["id"] for a in again["actions"]]
