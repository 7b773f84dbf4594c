"""`apply`: a saved plan (rebuilt and compared, applied once) or plan-and-apply."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from reconciler.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    _confirm_or_refuse,
    _connector,
    _fail,
    _locked,
    _progress,
    _read_done,
    _reading,
    _run,
    _saved_plan,
    _setup_logging,
    duration,
    journal_option,
    json_option,
    lock_timeout_option,
    main,
    parallelism_option,
    removals_option,
    sandbox_option,
    target_option,
    verbose_option,
)
from reconciler.config.loader import discover
from reconciler.errors import PlanAlreadyAppliedError
from reconciler.model import Action, Outcome, OutcomeStatus, PendingChange, Plan
from reconciler.pipeline import Session, load_desired, refuse_incomplete
from reconciler.progress import Reporter
from reconciler.providers.base import Resolution
from reconciler.render.results import apply_json
from reconciler.render.text import action_line, render_requests, render_text
from reconciler.sealing import plan_digest
from reconciler.sealpaths import PlanPathError, confined_files
from reconciler.secrets import REDACTOR
from reconciler.targeting import parse_targets


@main.command()
@click.argument("targets", nargs=-1, required=True)
@sandbox_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--dry-run", is_flag=True, help="Print every request; send nothing that changes.")
@click.option(
    "--wait",
    "wait_seconds",
    callback=duration,
    default=None,
    metavar="DURATION",
    help="Poll async vendors (ADManager) until the requests created are executed or "
    "rejected, for at most DURATION (60, 90s, 5m).",
)
@removals_option
@journal_option
@lock_timeout_option
@target_option
@parallelism_option
@json_option
@verbose_option
def apply(
    targets: Sequence[str],
    sandbox: bool,
    auto_approve: bool,
    dry_run: bool,
    wait_seconds: float | None,
    max_removals: int | None,
    journal_path: Path | str,
    lock_timeout: float,
    target_values: Sequence[str],
    parallelism: int | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Executes a saved plan (PLANFILE), or plans and applies PATH... in one go.

    A saved plan is never executed from its own contents: the YAML it names is
    loaded, the vendors are read again and the plan is rebuilt; only when the rebuilt
    plan equals the saved one are the rebuilt requests sent, and a plan applies once.
    """
    _setup_logging(verbose)
    planfile = bool(targets) and targets[0].endswith(".json")
    saved = _saved_plan(targets[0]) if planfile else None
    ran = _Ran()

    async def work() -> bool:
        if saved is not None:
            desired = load_desired(_config_paths(saved, targets[1:]))
        else:
            desired = load_desired(targets)
        settled: list[Resolution] = []
        # A saved plan keeps its own targets unless others are given (then they must match).
        chosen_targets = target_values or (saved.targets if saved is not None else ())
        session = Session(desired, connector=_connector(sandbox), on_read=_read_done,
                          targets=parse_targets(chosen_targets), parallelism=parallelism)
        with _locked(session, journal_path, lock_timeout) as journal:
            digest = plan_digest(saved) if saved is not None else None
            if digest is not None:
                _refuse_if_applied(journal.applied_at(digest))
            async with session:
                if saved is not None:
                    with _reading(session.desired, "rebuilding the plan to check it: reading"):
                        chosen = await session.rebuild(saved, journal, max_removals=max_removals)
                else:
                    with _reading(session.desired):
                        chosen = await session.plan(journal, max_removals=max_removals)
                    # One vendor unread: refuse the whole apply (a partial apply would be
                    # reported as if the estate had converged).
                    refuse_incomplete(chosen, "the plan")
                ran.held_back, ran.notes = list(chosen.pending), list(chosen.notes)
                if dry_run:
                    ran.would_send = list(chosen.actions)
                    if not as_json:
                        click.echo(REDACTOR.text(render_requests(chosen)), nl=False)
                    return True
                if not chosen.actions:
                    click.echo(REDACTOR.text(render_text(chosen)), nl=False, err=as_json)
                    if chosen.pending and wait_seconds is not None:
                        waited = await session.wait_for(
                            session.journal_pending(journal), journal,
                            timeout=wait_seconds, listener=_settled)
                        ran.settled = waited
                        still_in_doubt = any(entry.provider in session.providers
                                             for entry in journal.in_doubt())
                        return (bool(waited) and not still_in_doubt
                                and all(r.status == "executed" for r in waited))
                    # Held back (pending at the vendor, in doubt) is not converged.
                    return chosen.converged
                if saved is None and not auto_approve:
                    click.echo(REDACTOR.text(render_text(chosen)), nl=False, err=as_json)
                    _confirm_or_refuse()
                if digest is not None:
                    _refuse_if_applied(journal.claim_plan(digest))
                reporter = Reporter()
                with reporter.track("applying", len(chosen.actions)):
                    report = await session.apply(chosen, journal, _progress(reporter))
                    ran.results = report.results
                    if wait_seconds is not None:
                        settled = await session.wait_for_pending(
                            report, journal, timeout=wait_seconds, listener=_settled
                        )
                        ran.settled = settled
        total = len(report.results)
        pending = report.count(OutcomeStatus.PENDING)
        waiting = f" ({pending} pending at the vendor)" if pending else ""
        click.echo(
            f"Apply finished: {total - len(report.failed)} of {total} actions done{waiting}, "
            f"{len(report.failed)} failed or skipped.",
            err=True,
        )
        unsettled = [r for r in settled if r.status != "executed"]
        for resolution in unsettled:
            click.echo(f"not executed: request {resolution.request.request_id} is "
                       f"{resolution.status}", err=True)
        return report.ok and not unsettled

    ok = _run(work)
    code = EXIT_OK if ok else EXIT_ERROR
    if as_json:
        click.echo(apply_json(ran.results, ran.held_back, ran.settled, exit_code=code,
                              notes=ran.notes, would_send=ran.would_send, dry_run=dry_run),
                   nl=False)
    sys.exit(code)


@dataclass
class _Ran:
    """What one apply did, collected for `--json`."""

    results: list[tuple[Action, Outcome]] = field(default_factory=list)
    held_back: list[PendingChange] = field(default_factory=list)
    settled: list[Resolution] = field(default_factory=list)
    would_send: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _refuse_if_applied(at: str | None) -> None:
    if at is not None:
        raise PlanAlreadyAppliedError(
            f"this plan was already applied at {at}; a plan applies once. "
            "Run `reconciler plan` again and apply the new plan."
        )


def _config_paths(saved: Plan, given: Sequence[str]) -> list[str]:
    """The YAML a saved plan was made from, if it lies inside the working directory.

    The plan file names its YAML; a file edited to name YAML elsewhere on the machine
    (outside the reviewed checkout, directly or through symlinks) is refused rather
    than loaded (`sealpaths`). `apply PLANFILE
    PATH...` pins the YAML from the command line: the plan must name exactly those
    files, so an edited plan cannot switch to another set of files in the checkout.
    """
    if not saved.config_paths:
        _fail("error: the plan file names no desired-state files")
    try:
        files = confined_files(saved.config_paths, Path.cwd())
    except PlanPathError as error:
        _fail(f"error: {error}")
    if given:
        found, problems = discover(given)
        if problems:
            _fail("\n".join(str(problem) for problem in problems))
        if {path.resolve() for path in found} != {Path(file).resolve() for file in files}:
            _fail("error: the plan file was made from "
                  f"{', '.join(sorted(files))}, not from {', '.join(given)}; "
                  "run `reconciler plan` on the YAML you mean to apply")
    return files


def _settled(resolution: Resolution) -> None:
    detail = f" ({resolution.message})" if resolution.message else ""
    line = f"request {resolution.request.request_id} {resolution.status}{detail}: "
    click.echo(REDACTOR.text(line + action_line(resolution.request.action)), err=True)
