"""The properties, one function each: `check_*(vendor, workspace)` raises AssertionError
with a message that names the property and what the vendor did instead.

Every function runs the real CLI (in this process) in `workspace`, which must be the
current directory: sandbox state, request logs and the journal live under
`workspace/.reconciler/`. `kit.py` wraps them as pytest tests; they can be called
directly too (the docs test runs them on a provider built from the page's code).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import yaml

from reconciler.config.document import SUBJECT_FIELDS
from reconciler.testing.runner import (
    JOURNAL,
    changing,
    cli,
    duplicated_changes,
    request_log,
)
from reconciler.testing.tampering import ONE_LINE, TAMPERINGS, Listener
from reconciler.testing.vendor import KitVendor

FAULT_PROFILES: dict[str, dict[str, Any]] = {
    "429-bursts": {"burst_429": 4, "retry_after": 0.0, "seed": 1},
    "5xx-10pct": {"error_rates": {"500": 0.05, "503": 0.05}, "seed": 2},
    "timeouts": {"stall_rate": 0.2, "stall_ms": 3000, "seed": 4},
    "dropped": {"drop_connection_rate": 0.1, "drop_response_rate": 0.2, "seed": 4},
    "half-rate": {"rate_limit": 2, "seed": 5},
}
"""Fault settings the simulator injects (see `reconciler.sandbox.base.Faults`).
`half-rate`: the vendor's own throttle admits half the rate the YAML configures
(`HALF_RATE_LIMITS`), so the client must slow down on 429s instead of failing."""

HALF_RATE_LIMITS = {"rate_limit": 4}
MAX_ROUNDS = 6
LOGIN_WORDS = ("token", "login", "authenticate")

REFUSED_IDS = {
    "slash": "../../x/assigned/y",
    "plain-slash": "a/b",
    "dots": "..",
    "dot": ".",
    "backslash": "a\\b",
    "newline": "a\n::error::forged",
    "nul": "a\x00b",
    "bidi-override": "a\u202eb",
}
"""Ids no URL path may hold: refused at load with `file:line`, before any call."""

ENCODED_IDS = {
    "query": "kit-subject?x=1",
    "fragment": "kit-subject#frag",
    "percent": "kit%2Dsubject",
    "ampersand": "kit-subject&api_key=x",
    "unicode": "kït-subject",
}
"""Ids that load but must travel as data: never adding a query or reaching another path."""


def _out(result: Any) -> str:
    text = str(result.output)
    with contextlib.suppress(ValueError):  # stderr not captured apart by this click version
        text += str(result.stderr)
    return text


def _settle(desired: str, env: dict[str, str] | None = None, sandbox: bool = True) -> None:
    """Applies until an apply succeeds (at most MAX_ROUNDS). An async vendor's requests
    count as done once filed: approving them is the vendor's business."""
    flags = ("--sandbox",) if sandbox else ()
    for _ in range(MAX_ROUNDS):
        if cli("apply", desired, *flags, "--auto-approve", env=env).exit_code == 0:
            return


# ---- convergence -----------------------------------------------------------------------
def check_converges(vendor: KitVendor, workspace: Path) -> None:
    """plan shows changes, apply carries them out, then plan and drift are clean."""
    desired = str(vendor.write_example(workspace))
    before = cli("plan", desired, "--sandbox", "--detailed-exitcode")
    assert before.exit_code == 2, (
        f"[converge] the example must differ from the simulator's seed, so the kit has "
        f"something to apply; plan exited {before.exit_code}:\n{_out(before)}")
    applied = cli("apply", desired, "--sandbox", "--auto-approve")
    assert applied.exit_code == 0, f"[converge] apply failed:\n{_out(applied)}"
    _assert_converged("converge", desired)


def _assert_converged(name: str, desired: str, env: dict[str, str] | None = None,
                      sandbox: bool = True) -> None:
    """Nothing left to send; and unless an async vendor holds requests pending (filed,
    awaiting the vendor's approval), `drift` is clean too."""
    flags = ("--sandbox",) if sandbox else ()
    after = cli("plan", desired, *flags, "--output", "json", env=env)
    assert after.exit_code == 0, f"[{name}] plan after apply failed:\n{_out(after)}"
    plan = json.loads(after.stdout)
    assert plan["actions"] == [], (
        f"[{name}] after apply, plan still shows changes: what `read` reports differs from "
        f"what `execute` did, or `normalize_attrs` misses a spelling: "
        f"{[a['id'] for a in plan['actions']]}")
    if not plan["pending"]:
        drift = cli("drift", desired, *flags, env=env)
        assert drift.exit_code == 0, f"[{name}] drift after apply:\n{_out(drift)}"


def check_converges_served(vendor: KitVendor, workspace: Path) -> None:
    """The same over real HTTP: the simulator served on a loopback port, the CLI with
    no --sandbox, reaching it through the variables the example names."""
    from reconciler.pipeline import load_desired
    from reconciler.sandbox.serve import ServedSimulators, environment_for

    desired = str(vendor.write_example(workspace))
    with ServedSimulators({vendor.id: vendor.simulator()}) as served:
        env = environment_for(load_desired([desired]), served.urls)
        before = cli("plan", desired, "--detailed-exitcode", env=env)
        assert before.exit_code == 2, f"[served] plan over HTTP:\n{_out(before)}"
        _settle(desired, env, sandbox=False)
        _assert_converged("served", desired, env, sandbox=False)


def check_import_round_trip(vendor: KitVendor, workspace: Path) -> None:
    """`import` writes the live state as YAML; planning that file changes nothing."""
    example = vendor.write_example(workspace) / f"{vendor.id}.yaml"
    imported = cli("import", vendor.id, "--sandbox", "--from", str(example))
    assert imported.exit_code == 0, f"[import] import failed:\n{_out(imported)}"
    (workspace / "imported.yaml").write_text(imported.stdout)
    document = yaml.safe_load(imported.stdout)
    assert document["providers"][vendor.id]["subjects"], "[import] the seed estate came back empty"
    planned = cli("plan", "imported.yaml", "--sandbox", "--detailed-exitcode")
    assert planned.exit_code == 0, (
        f"[import] the imported file does not plan clean: `read` and the YAML loader disagree "
        f"on some grant (attrs, ids):\n{_out(planned)}")
    sent = [e for e in changing(request_log(workspace, vendor.id))
            if not any(word in e["path"].lower() for word in LOGIN_WORDS)]
    assert sent == [], f"[import] import or plan changed something: {sent}"


def check_probe_reads_only(vendor: KitVendor, workspace: Path) -> None:
    """`probe` reports each answer's status and shape, changes nothing, shows no secret."""
    from reconciler.sandbox.runtime import InProcessSandbox

    def licenses(state: dict[str, Any]) -> dict[str, Any]:
        # a probe logs in, as a plan does: sessions and tokens may change
        return {key: value for key, value in state.items() if key not in {"sessions", "tokens"}}

    example = vendor.write_example(workspace) / f"{vendor.id}.yaml"
    folder = workspace / ".reconciler" / "sandbox"
    before = licenses(InProcessSandbox(folder).simulator(vendor.id).state)
    probed = cli("probe", vendor.id, "--sandbox", "--from", str(example))
    assert probed.exit_code == 0, f"[probe] failed:\n{_out(probed)}"
    answers = [line for line in probed.output.splitlines() if " → " in line]
    assert answers and all(" → 200 {" in line for line in answers), f"[probe] {probed.output}"
    after = licenses(InProcessSandbox(folder).simulator(vendor.id).state)
    assert after == before, "[probe] probing changed the vendor's state"
    assert not any(secret in _out(probed) for secret in vendor.secret_values()), \
        "[probe] a secret value appears in the output"


# ---- faults ------------------------------------------------------------------------------
def check_fault_profile(vendor: KitVendor, profile: str, workspace: Path) -> None:
    """Under the fault profile, applies converge and no one-shot change is made twice."""
    limits = HALF_RATE_LIMITS if profile == "half-rate" else {}
    desired = str(vendor.write_example(workspace, **limits))
    faults = cli("sandbox", "faults", vendor.id, "--set", json.dumps(FAULT_PROFILES[profile]))
    assert faults.exit_code == 0, _out(faults)
    _settle(desired)
    final = cli("plan", desired, "--sandbox", "--output", "json")
    assert final.exit_code == 0, f"[faults:{profile}] plan failed:\n{_out(final)}"
    assert json.loads(final.stdout)["actions"] == [], f"[faults:{profile}] did not converge"
    log = request_log(workspace, vendor.id)
    assert any(not isinstance(e["status"], int) or e["status"] >= 400 for e in log), \
        f"[faults:{profile}] the profile injected nothing: too few requests?"
    duplicates = duplicated_changes(log, workspace / JOURNAL)
    assert duplicates == [], (
        f"[faults:{profile}] one-shot changes made twice (mark an action `repeatable` only "
        f"when sending it twice is harmless; confirm before resending): {duplicates}")


# ---- sealed plans ------------------------------------------------------------------------
def _changes_sent(workspace: Path, provider: str, *plans: dict[str, Any]) -> list[Any]:
    """Changing requests that carried out any of these plans' calls (logins excluded)."""
    paths = {"/" + "/".join(action["call"]["path"]) for plan in plans
             for action in plan["actions"] if isinstance(action.get("call"), dict)}
    return [entry for entry in changing(request_log(workspace, provider))
            if any(entry["path"].lower().endswith(path.lower()) for path in paths)]


def check_tampered_plan_refused(vendor: KitVendor, tampering: str, workspace: Path) -> None:
    """An edited plan file is refused and nothing is sent, anywhere; the honest one applies."""
    desired = str(vendor.write_example(workspace))
    made = cli("plan", desired, "--sandbox", "--out", "plan.json")
    assert made.exit_code == 0, _out(made)
    original = json.loads(Path("plan.json").read_text())
    assert original["actions"], "[sealed] the example must need changes"
    plan = json.loads(json.dumps(original))
    elsewhere = Listener()
    try:
        TAMPERINGS[tampering](plan, elsewhere.port)
        Path("plan.json").write_text(json.dumps(plan))
        refused = cli("apply", "plan.json", "--sandbox")
        assert refused.exit_code == 1, f"[sealed:{tampering}] accepted:\n{_out(refused)}"
        assert "Traceback" not in _out(refused)
        assert len(refused.output.strip().splitlines()) == 1 or tampering not in ONE_LINE, \
            f"[sealed:{tampering}] refused, but not in one line:\n{refused.output}"
        assert _changes_sent(workspace, vendor.id, original, plan) == [], \
            f"[sealed:{tampering}] a change was sent from an edited plan"
        assert not any(e["method"] in {"PUT", "DELETE", "PATCH"}
                       for e in request_log(workspace, vendor.id))
        assert elsewhere.connections == 0, f"[sealed:{tampering}] another host was contacted"
    finally:
        elsewhere.close()
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    applied = cli("apply", "plan.json", "--sandbox")
    assert applied.exit_code == 0, f"[sealed] the untouched plan did not apply:\n{_out(applied)}"
    assert _changes_sent(workspace, vendor.id, original)


def check_plan_applies_once(vendor: KitVendor, workspace: Path) -> None:
    """A saved plan applies once; a second apply of the same file sends nothing."""
    desired = str(vendor.write_example(workspace))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    plan = json.loads(Path("plan.json").read_text())
    first = cli("apply", "plan.json", "--sandbox")
    assert first.exit_code == 0, _out(first)
    sent = len(_changes_sent(workspace, vendor.id, plan))
    assert sent >= len(plan["actions"])
    again = cli("apply", "plan.json", "--sandbox")
    assert again.exit_code == 1 and "already applied at" in _out(again), _out(again)
    assert len(_changes_sent(workspace, vendor.id, plan)) == sent


def check_edited_notes_still_applied_once(vendor: KitVendor, workspace: Path) -> None:
    """"Applies once" is keyed on what the comparison compares, not on ignored fields:
    an applied plan whose notes, fingerprints and reasons were edited is still refused."""
    desired = str(vendor.write_example(workspace))
    assert cli("plan", desired, "--sandbox", "--out", "plan.json").exit_code == 0
    plan = json.loads(Path("plan.json").read_text())
    assert cli("apply", "plan.json", "--sandbox").exit_code == 0
    sent = len(_changes_sent(workspace, vendor.id, plan))
    plan["notes"] = [*plan["notes"], "edited after the apply"]
    plan["fingerprints"] = {name: {scope: "edited" for scope in prints}
                            for name, prints in plan["fingerprints"].items()}
    for action in plan["actions"]:
        action["reason"] = "edited"
    Path("plan.json").write_text(json.dumps(plan))
    again = cli("apply", "plan.json", "--sandbox")
    assert again.exit_code == 1
    assert "already applied at" in again.output, f"[sealed:edited-notes] {again.output}"
    assert len(_changes_sent(workspace, vendor.id, plan)) == sent


# ---- hostile ids -------------------------------------------------------------------------
def _with_subject(vendor: KitVendor, workspace: Path, subject_id: str) -> Path | None:
    """The example plus one subject of a kind whose ids travel in URL paths, holding the
    first license an example subject of that kind holds. None: no such kind."""
    document = vendor.document(retries=1, max_removals=1000)
    block = document["providers"][vendor.id]
    for subject in block.get("subjects") or []:
        kinds = [k for k in subject if k not in SUBJECT_FIELDS]
        licenses = subject.get("licenses") or []
        if kinds and kinds[0] in vendor.provider.path_kinds and licenses:
            block["subjects"].append({kinds[0]: subject_id, "licenses": [licenses[0]]})
            target = workspace / "desired"
            target.mkdir(exist_ok=True)
            (target / f"{vendor.id}.yaml").write_text(
                yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
            return target / f"{vendor.id}.yaml"
    return None


def check_hostile_ids(vendor: KitVendor, workspace: Path) -> None:
    """An id a URL path cannot hold is a `file:line` error before any call; an odd one
    travels as data: no injected query, no other path, no traceback."""
    if not vendor.provider.path_kinds:
        return  # ids never travel in a URL path: nothing to escape
    for name, hostile in REFUSED_IDS.items():
        path = _with_subject(vendor, workspace, hostile)
        assert path is not None, (
            f"[hostile-ids] the example names no {sorted(vendor.provider.path_kinds)} subject "
            "holding a license: the kit needs one to aim hostile ids at")
        refused = cli("validate", str(path.parent))
        assert refused.exit_code == 1, f"[hostile-ids:{name}] {hostile!r} was accepted"
        assert refused.output.splitlines()[0].startswith(f"{path}:"), refused.output
        assert "Traceback" not in _out(refused)
    for name, odd in ENCODED_IDS.items():
        path = _with_subject(vendor, workspace, odd)
        assert path is not None
        result = cli("apply", str(path.parent), "--sandbox", "--auto-approve")
        assert "Traceback" not in _out(result), f"[hostile-ids:{name}]\n{_out(result)}"
        for entry in changing(request_log(workspace, vendor.id)):
            assert "x=1" not in entry["query"] and "api_key=x" not in entry["query"], \
                f"[hostile-ids:{name}] the id added a query parameter: {entry['raw_path']}"
            assert "/../" not in entry["path"] and "#frag" not in entry["raw_path"], entry


# ---- secrets -----------------------------------------------------------------------------
def check_secrets_hidden(vendor: KitVendor, workspace: Path) -> None:
    """No secret value in any command's output, the saved plan or the journal."""
    secrets = vendor.secret_values()
    assert secrets, (f"[secrets] the simulator of '{vendor.id}' declares no secret credential "
                     "(Simulator.environment: a setting named *secret*, *password*, *key* "
                     "or *token*)")
    desired = str(vendor.write_example(workspace))
    outputs = [cli("plan", desired, "--sandbox", "--out", "plan.json", "--output", "json"),
               cli("apply", "plan.json", "--sandbox", "--dry-run"),
               cli("apply", "plan.json", "--sandbox"),
               cli("plan", desired, "--sandbox", "--output", "markdown"),
               cli("journal", "--json"),
               cli("import", vendor.id, "--sandbox", "--from", desired)]
    texts = {f"output of command {n}": _out(r) for n, r in enumerate(outputs)}
    texts["plan file"] = Path("plan.json").read_text()
    texts["journal"] = (workspace / JOURNAL).read_bytes().decode("latin-1")
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"[secrets] a secret value appears in the {where}"


# ---- contract fixtures -------------------------------------------------------------------
def contract_fixtures(vendor: KitVendor) -> list[Path]:
    """`contract/*.json` beside the simulator's module (a vendor package ships them)."""
    from importlib import resources

    package = vendor.simulator.__module__.rpartition(".")[0] or vendor.simulator.__module__
    folder = resources.files(package).joinpath("contract")
    if not folder.is_dir():
        return []
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".json"))


def check_contract_fixtures(vendor: KitVendor) -> None:
    """Each fixture (a request/response pair transcribed from the vendor's reference)
    names its source, and the simulator, from its seed, answers its request with its
    status and a body of its shape (every documented key, of its JSON type)."""
    import asyncio

    import httpx

    from reconciler.sandbox.transport import SandboxTransport

    fixtures = contract_fixtures(vendor)
    assert fixtures, (f"[contract] '{vendor.id}' ships no contract fixtures "
                      "(contract/*.json beside its simulator module)")

    async def replay(fixture: dict[str, Any]) -> httpx.Response:
        simulator = vendor.simulator()
        request = fixture["request"]
        async with httpx.AsyncClient(base_url=f"http://{vendor.id}.sandbox",
                                     transport=SandboxTransport(simulator.app)) as client:
            return await client.request(
                request["method"], request["path"], params=request.get("query"),
                headers=request.get("headers"), json=request.get("body"),
                data=request.get("form"))

    for path in fixtures:
        fixture = json.loads(path.read_text(encoding="utf-8"))
        assert fixture.get("source"), f"[contract] {path.name} names no source"
        answer = asyncio.run(replay(fixture))
        expected = fixture["response"]
        assert answer.status_code == expected["status"], (
            f"[contract] {path.name}: the simulator answered {answer.status_code}, the "
            f"reference says {expected['status']}: {answer.text[:300]}")
        if "body" in expected:
            problem = shape_mismatch(expected["body"], answer.json())
            assert problem is None, f"[contract] {path.name}: {problem}"


def shape_mismatch(documented: Any, answered: Any, where: str = "body") -> str | None:
    """Where `answered` lacks a documented key or has another JSON type; None when it fits.
    A documented null fits anything; lists are compared by their first items."""
    if documented is None:
        return None
    if isinstance(documented, dict):
        if not isinstance(answered, dict):
            return f"{where} is {type(answered).__name__}, documented as an object"
        for key, value in documented.items():
            if key not in answered:
                return f"{where} lacks documented key {key!r}"
            problem = shape_mismatch(value, answered[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(documented, list):
        if not isinstance(answered, list):
            return f"{where} is {type(answered).__name__}, documented as a list"
        if documented and answered:
            return shape_mismatch(documented[0], answered[0], f"{where}[0]")
        return None
    kinds = (bool,) if isinstance(documented, bool) else (int, float) \
        if isinstance(documented, int | float) else (str,)
    if answered is not None and not isinstance(answered, kinds):
        return f"{where} is {type(answered).__name__}, documented as {type(documented).__name__}"
    return None
