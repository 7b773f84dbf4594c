"""`validate`, `plan`, `show` and `drift`: everything that reads and never changes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    FailureReport,
    _connector,
    _locked,
    _print_plan,
    _read_done,
    _reading,
    _run,
    _saved_plan,
    _setup_logging,
    journal_option,
    json_option,
    lock_timeout_option,
    main,
    output_option,
    parallelism_option,
    removals_option,
    sandbox_option,
    target_option,
    verbose_option,
)
from reconciler.config.loader import discover
from reconciler.errors import ConfigError
from reconciler.model import Plan
from reconciler.pipeline import Session, load_desired
from reconciler.render.failure import render_failure_markdown
from reconciler.render.json import render_json
from reconciler.render.results import validation_json
from reconciler.secrets import REDACTOR
from reconciler.targeting import parse_targets


@main.command()
@click.argument("paths", nargs=-1, required=True)
@json_option
def validate(paths: Sequence[str], as_json: bool) -> None:
    """Checks desired-state files; contacts no vendor."""
    try:
        desired = load_desired(paths)
    except ConfigError as error:
        if as_json:
            files, _ = discover(paths)
            click.echo(validation_json([str(f) for f in files], error.problems), nl=False)
        else:
            for problem in error.problems:
                click.echo(str(problem), err=True)
        sys.exit(EXIT_ERROR)
    grants = sum(len(p.grants) for p in desired.providers.values())
    if as_json:
        click.echo(validation_json(desired.paths, [], providers=len(desired.providers),
                                   grants=grants), nl=False)
        return
    click.echo(
        f"valid: {len(desired.paths)} file(s), {len(desired.providers)} provider(s), "
        f"{grants} grant(s)"
    )


@main.command()
@click.argument("paths", nargs=-1, required=True)
@sandbox_option
@click.option("--out", "out", type=click.Path(path_type=Path), help="Save the plan (JSON).")
@output_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when no changes, 2 when there are changes, 1 on error.",
)
@removals_option
@journal_option
@lock_timeout_option
@target_option
@parallelism_option
@verbose_option
def plan(
    paths: Sequence[str],
    sandbox: bool,
    out: Path | None,
    output: str,
    detailed_exitcode: bool,
    max_removals: int | None,
    journal_path: Path | str,
    lock_timeout: float,
    target_values: Sequence[str],
    parallelism: int | None,
    verbose: bool,
) -> None:
    """Reads current state, diffs it with the YAML, prints the ordered plan.

    With --detailed-exitcode: 0 in sync, 2 changes or anything held back (a call in
    doubt, a request pending at the vendor), 1 error.
    """
    _setup_logging(verbose)

    # A failed plan must replace the pull request's plan comment, not leave it standing.
    report = _markdown_failure if output == "markdown" else None
    result = _fresh_plan(paths, sandbox, target_values, journal_path, lock_timeout,
                         max_removals, parallelism, report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_json(result), encoding="utf-8")
        click.echo(f"plan saved to {out}", err=True)
    _print_plan(result, output, verbose)
    _exit_if_unread(result)
    if detailed_exitcode and not result.converged:
        sys.exit(EXIT_CHANGES)


@main.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@output_option
@verbose_option
def show(planfile: Path, output: str, verbose: bool) -> None:
    """Renders a saved plan (text, JSON or Markdown); contacts no vendor.

    What it shows is what the file says; `apply PLANFILE` still rebuilds the plan and
    refuses it unless the YAML and the vendors give the same.
    """
    saved = _saved_plan(planfile)
    _print_plan(saved, output, verbose)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@sandbox_option
@output_option
@journal_option
@lock_timeout_option
@target_option
@parallelism_option
@verbose_option
def drift(
    paths: Sequence[str],
    sandbox: bool,
    output: str,
    journal_path: Path | str,
    lock_timeout: float,
    target_values: Sequence[str],
    parallelism: int | None,
    verbose: bool,
) -> None:
    """Scheduled check: exit 0 in sync, 2 drifted or held back (printed), 1 error."""
    _setup_logging(verbose)

    # Drift reports every difference: the blast-radius rail is for applying.
    result = _fresh_plan(paths, sandbox, target_values, journal_path, lock_timeout, 10**9,
                         parallelism)
    _print_plan(result, output, verbose)
    _exit_if_unread(result)
    if not result.converged:
        if output == "text":
            held = f", {len(result.pending)} held back" if result.pending else ""
            click.echo(
                f"drift: {len(result.actions)} difference(s) from the desired state{held}",
                err=True,
            )
        sys.exit(EXIT_CHANGES)


def _exit_if_unread(result: Plan) -> None:
    """A provider that could not be read fails the run (exit 1), after the others'
    plans were printed: one vendor down must not hide what the rest would change."""
    if result.errors:
        for error in result.errors:
            click.echo(REDACTOR.text(f"error: {error.provider}: {error.message}"), err=True)
        sys.exit(EXIT_ERROR)


def _fresh_plan(
    paths: Sequence[str],
    sandbox: bool,
    target_values: Sequence[str],
    journal_path: Path | str,
    lock_timeout: float,
    max_removals: int | None,
    parallelism: int | None = None,
    on_failure: FailureReport | None = None,
) -> Plan:
    """Load, lock the scopes, recover from the journal, read, plan: what plan and drift do."""

    async def work() -> Plan:
        session = Session(load_desired(paths), connector=_connector(sandbox), on_read=_read_done,
                          targets=parse_targets(target_values), parallelism=parallelism)
        with _locked(session, journal_path, lock_timeout) as journal:
            async with session:
                with _reading(session.desired):
                    return await session.plan(journal, max_removals=max_removals)

    return _run(work, on_failure)


def _markdown_failure(messages: list[str], kind: str) -> None:
    """`plan --output markdown` that fails prints a Markdown error document and exits 1."""
    click.echo(render_failure_markdown(messages, kind), nl=False)
