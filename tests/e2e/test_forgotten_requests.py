"""A vendor that forgot a request stops no one.

After `sandbox reset` ADManager answers "No such request." for every request the
journal holds as pending. Each is held back with the exact command that settles it,
every provider is still read, planned and shown, and `journal --resolve-all-pending`
settles them all at once.
"""

from __future__ import annotations

import json
import re
import shutil

from tests.e2e.conftest import EXAMPLES


def test_after_a_reset_every_provider_is_planned_and_the_forgotten_requests_held_back(
        workspace, cli):
    desired = str(workspace / "desired")
    shutil.copytree(EXAMPLES, desired)
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    assert cli("sandbox", "reset").exit_code == 0

    held = cli("plan", desired, "--sandbox", "--detailed-exitcode")
    assert held.exit_code == 2, held.output
    commands = re.findall(r"`(reconciler journal --resolve (admanager:\S+) done\|not-done)`",
                          held.stdout)
    assert len(commands) == 5, held.stdout
    assert all("request 75" in line and "unknown to the vendor (No such request.)" in line
               for line in held.stdout.splitlines() if "--resolve admanager:" in line)
    for provider in ("commvault", "licensespring", "uipath", "yext"):
        assert f"\n{provider}:\n" in held.stdout, f"{provider} not planned:\n{held.stdout}"
    drift = cli("drift", desired, "--sandbox")
    assert drift.exit_code == 2 and "5 held back" in drift.stderr
    document = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    assert document["errors"] == [] and document["summary"]["pending"] == 5

    # One settled by hand, exactly as printed; the rest at once.
    command, action_id = commands[0]
    words = command.split()[1:]
    assert cli(*words[:-1], "not-done").exit_code == 0
    only_others = cli("journal", "--resolve-all-pending", "not-done", "--provider", "yext")
    assert only_others.exit_code == 0 and "nothing pending to settle" in only_others.stderr
    rest = cli("journal", "--resolve-all-pending", "not-done", "--provider", "admanager")
    assert rest.exit_code == 0, rest.output
    assert rest.stdout.count("recorded as not-done") == 4
    assert action_id not in rest.stdout, "already settled"

    replanned = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    assert replanned["pending"] == []
    assert len([a for a in replanned["actions"] if a["provider"] == "admanager"]) == 5, \
        "not done: the changes are planned again"


def test_resolve_all_pending_done_records_them_as_carried_out(workspace, cli):
    desired = str(workspace / "desired")
    shutil.copytree(EXAMPLES, desired)
    assert cli("apply", desired, "--sandbox", "--auto-approve").exit_code == 0
    settled = cli("journal", "--resolve-all-pending", "done")
    assert settled.exit_code == 0 and settled.stdout.count("recorded as done") == 5
    after = json.loads(cli("plan", desired, "--sandbox", "--output", "json").stdout)
    assert after["pending"] == [], "settled: no longer held back"
    in_doubt = cli("journal", "--resolve-all-in-doubt", "done")
    assert "nothing in doubt to settle" in in_doubt.stderr



async def test_recovery_reads_admanagers_users_once_for_every_call_in_doubt(workspace):
    """Five requests left in doubt by a crash: confirming them reads the domain's users
    once (one SearchUser run), not once per request (issue 22)."""
    from reconciler.journal import open_journal
    from reconciler.pipeline import Session, load_desired
    from reconciler.sandbox.runtime import InProcessSandbox, SandboxConnector
    from tests.e2e.conftest import copy_example

    state_dir = workspace / "sandbox"
    sandbox = InProcessSandbox(state_dir)
    desired = load_desired([str(copy_example(workspace, "admanager.yaml"))])
    with open_journal(workspace / "journal.db") as journal:
        async with Session(desired, connector=SandboxConnector(sandbox)) as session:
            actions = [a for a in (await session.plan(journal)).actions if not a.repeatable]
            assert len(actions) == 5
            for action in actions:
                journal.started(action)  # sent, answer never recorded: in doubt
            before = len(sandbox.simulator("admanager").request_log())
            recovery = await session.recover(journal)
        log = sandbox.simulator("admanager").request_log()[before:]
    searches = [e for e in log if e["path"] == "/RestAPI/SearchUser"]
    assert len(searches) == 1, [e["path"] for e in log]
    assert len(recovery.notes) == 5 and not recovery.errors
    assert all("had no effect" in note for note in recovery.notes)
