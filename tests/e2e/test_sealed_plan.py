"""The reviewed plan is exactly what runs: an edited plan file is refused, never sent.

Every tampering is tried on every registered provider that has an example file:
the apply must exit 1 and the simulator's request log must show no changing call,
while a listener on another loopback port (the "attacker's host") receives nothing.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import changing, request_log
from tests.e2e.reliability import fast_example, providers_with_examples

Tamper = Callable[[dict[str, Any], int], None]


class Listener:
    """A TCP listener standing in for another host: it counts every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def elsewhere() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def _changes_sent(workspace: Path, provider: str, *plans: dict[str, Any]) -> list[Any]:
    """Changing requests that carried out any of these plans' calls (logins excluded)."""
    paths = {"/" + "/".join(action["call"]["path"]) for plan in plans
             for action in plan["actions"] if isinstance(action.get("call"), dict)}
    return [entry for entry in changing(request_log(workspace, provider))
            if any(entry["path"].lower().endswith(path.lower()) for path in paths)]


def _host(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["request"]["url"] = f"http://127.0.0.1:{port}/steal"


def _path(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["call"]["path"] = [*action["call"]["path"][:-1], "someone-else"]


def _host_in_path(plan: dict[str, Any], port: int) -> None:
    plan["actions"][0]["call"]["path"] = [f"http://127.0.0.1:{port}", "steal"]


def _body(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["call"]["body"] = {"tampered": True, "callback": f"http://127.0.0.1:{port}/"}


def _query(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["call"]["query"] = [*action["call"]["query"], ["extra", "1"]]


def _added_action(plan: dict[str, Any], port: int) -> None:
    extra = dict(plan["actions"][0])
    extra["id"] = extra["id"] + ":again"
    plan["actions"].append(extra)


def _removed_action(plan: dict[str, Any], port: int) -> None:
    plan["actions"].pop()


def _one_shot_made_repeatable(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["repeatable"] = not action["repeatable"]


def _method(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["call"]["method"] = "DELETE" if action["call"]["method"] != "DELETE" else "POST"


def _version(plan: dict[str, Any], port: int) -> None:
    plan["format_version"] = 99


def _unknown_provider(plan: dict[str, Any], port: int) -> None:
    plan["actions"][0]["provider"] = "evil"


def _yaml_elsewhere(plan: dict[str, Any], port: int) -> None:
    plan["config_paths"] = ["/etc"]


def _yaml_symlinked_outside(plan: dict[str, Any], port: int) -> None:
    """A directory inside the checkout whose YAML are symlinks to copies outside it.

    The copies say what the reviewed YAML says, so only the path check can refuse.
    """
    here = Path.cwd()
    outside = here.parent / f"{here.name}-outside"
    outside.mkdir()
    inside = here / "linked"
    inside.mkdir()
    for name in plan["config_paths"]:
        copy = outside / Path(name).name
        copy.write_bytes(Path(name).read_bytes())
        (inside / copy.name).symlink_to(copy)
    plan["config_paths"] = ["linked"]


def _yaml_name_with_nul(plan: dict[str, Any], port: int) -> None:
    plan["config_paths"] = ["desired/\x00.yaml"]


def _yaml_name_too_long(plan: dict[str, Any], port: int) -> None:
    plan["config_paths"] = ["desired/" + "y" * 5_000 + ".yaml"]


def _errors_excuse_a_removed_action(plan: dict[str, Any], port: int) -> None:
    """An `errors` entry claiming a provider could not be read, to excuse its missing
    action: a plan with errors is never applied, whatever they say."""
    removed = plan["actions"].pop()
    plan["errors"] = [{"provider": removed["provider"], "message": "could not be read"}]


TAMPERINGS: dict[str, Tamper] = {
    "errors-excuse": _errors_excuse_a_removed_action,
    "host": _host,
    "path": _path,
    "host-in-path": _host_in_path,
    "body": _body,
    "query": _query,
    "method": _method,
    "added-action": _added_action,
    "removed-action": _removed_action,
    "repeatable-flag": _one_shot_made_repeatable,
    "format-version": _version,
    "unknown-provider": _unknown_provider,
    "yaml-elsewhere": _yaml_elsewhere,
    "yaml-symlinked-outside": _yaml_symlinked_outside,
    "yaml-name-with-nul": _yaml_name_with_nul,
    "yaml-name-too-long": _yaml_name_too_long,
}


ONE_LINE = {"yaml-elsewhere", "yaml-symlinked-outside", "yaml-name-with-nul",
            "yaml-name-too-long", "format-version"}
"""Tamperings refused before anything is read: one line says why."""


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
@pytest.mark.parametrize("provider", providers_with_examples())
def test_edited_plan_file_is_refused_and_nothing_is_sent(
    provider, tampering, workspace, cli, elsewhere
):
    desired = str(fast_example(workspace, provider))
    made = cli("plan", desired, "--sandbox", "--out", "plan.json")
    assert made.exit_code == 0, made.output
    original = json.loads(Path("plan.json").read_text())
    assert original["actions"], "the example must need changes"
    plan = json.loads(json.dumps(original))
    TAMPERINGS[tampering](plan, elsewhere.port)
    Path("plan.json").write_text(json.dumps(plan))
    refused = cli("apply", "plan.json", "--sandbox")
    assert refused.exit_code == 1, refused.output
    assert "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1 or tampering not in ONE_LINE, (
        refused.output)
    assert _changes_sent(workspace, provider, original, plan) == []
    assert not any(e["method"] in {"PUT", "DELETE", "PATCH"}
                   for e in request_log(workspace, provider))
    assert elsewhere.connections == 0
    # The untouched plan still applies: the refusal was about the edit, nothing else.
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    applied = cli("apply", "plan.json", "--sandbox")
    assert applied.exit_code == 0, applied.output
    assert _changes_sent(workspace, provider, original)


@pytest.mark.parametrize("provider", providers_with_examples())
def test_a_saved_plan_applies_once(provider, workspace, cli):
    desired = str(fast_example(workspace, provider))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    plan = json.loads(Path("plan.json").read_text())
    first = cli("apply", "plan.json", "--sandbox")
    assert first.exit_code == 0, first.output
    sent = len(_changes_sent(workspace, provider, plan))
    assert sent >= len(plan["actions"])
    again = cli("apply", "plan.json", "--sandbox")
    assert again.exit_code == 1
    assert "already applied at" in again.output and "`reconciler plan` again" in again.output
    assert len(_changes_sent(workspace, provider, plan)) == sent


@pytest.mark.parametrize("provider", providers_with_examples())
def test_an_applied_plan_with_edited_notes_is_still_already_applied(provider, workspace, cli):
    """"Applies once" is keyed on what the comparison compares, not on ignored fields."""
    desired = str(fast_example(workspace, provider))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    plan = json.loads(Path("plan.json").read_text())
    assert cli("apply", "plan.json", "--sandbox").exit_code == 0
    sent = len(_changes_sent(workspace, provider, plan))
    plan["notes"] = [*plan["notes"], "edited after the apply"]
    plan["fingerprints"] = {name: {scope: "edited" for scope in prints}
                            for name, prints in plan["fingerprints"].items()}
    for action in plan["actions"]:
        action["reason"] = "edited"
    Path("plan.json").write_text(json.dumps(plan))
    again = cli("apply", "plan.json", "--sandbox")
    assert again.exit_code == 1
    assert "already applied at" in again.output, again.output
    assert len(_changes_sent(workspace, provider, plan)) == sent


def test_plan_file_nested_100000_deep_gives_one_line(workspace, cli):
    Path("plan.json").write_text("[" * 100_000 + "]" * 100_000)
    refused = cli("apply", "plan.json", "--sandbox")
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        "error: plan.json is not a reconciler plan file: nested too deeply to be a plan"]


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
