"""The `reconciler` command: parsing and printing only; the work is in `pipeline`.

Exit codes are decided here, once: 0 success / in sync, 1 error or failed action,
2 changes present (`plan --detailed-exitcode`, `drift`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import NoReturn, TypeVar

import click

from reconciler.connectors import Connector, NetworkConnector
from reconciler.errors import ConfigError, PlanAlreadyAppliedError, ReconcilerError
from reconciler.journal import DEFAULT_PATH as DEFAULT_JOURNAL
from reconciler.journal import Journal, open_journal
from reconciler.lock import lock_scopes
from reconciler.model import Action, CurrentState, DesiredState, Outcome, OutcomeStatus, Plan
from reconciler.pipeline import Session, load_desired
from reconciler.progress import Reporter
from reconciler.providers.base import Resolution
from reconciler.render.json import read_plan, render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import action_line, render_requests, render_text
from reconciler.sandbox.runtime import DEFAULT_STATE_DIR, InProcessSandbox, SandboxConnector
from reconciler.sealing import plan_digest
from reconciler.secrets import REDACTOR, RedactingFilter
from reconciler.targeting import lock_scopes_of, parse_targets

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
T = TypeVar("T")

log = logging.getLogger("reconciler")


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def _fail(message: str) -> NoReturn:
    click.echo(REDACTOR.text(message), err=True)
    sys.exit(EXIT_ERROR)


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Runs async work; every project error becomes a clean message and exit 1."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except ConfigError as error:
        for problem in error.problems:
            click.echo(REDACTOR.text(str(problem)), err=True)
        sys.exit(EXIT_ERROR)
    except ReconcilerError as error:
        _fail(f"error: {error}")


def _connector(sandboxed: bool) -> Connector:
    """The vendors, or their simulators (state kept in .reconciler/sandbox/)."""
    if sandboxed:
        return SandboxConnector(InProcessSandbox(DEFAULT_STATE_DIR))
    return NetworkConnector()


def _print_plan(plan: Plan, output: str, verbose: bool = False) -> None:
    if output == "json":
        click.echo(render_json(plan), nl=False)
    elif output == "markdown":
        click.echo(render_markdown(plan), nl=False)
    else:
        click.echo(REDACTOR.text(render_text(plan, verbose=verbose)), nl=False)


def _read_done(provider: str, state: CurrentState, seconds: float) -> None:
    click.echo(f"  read {provider}: {len(state.grants)} grant(s), {len(state.pools)} pool(s) "
               f"in {seconds:.1f}s", err=True)


def _reading(desired: DesiredState, what: str = "reading") -> AbstractContextManager[Reporter]:
    """Vendor reads can take minutes on big estates: show that something is happening."""
    return Reporter().waiting(f"{what} {', '.join(sorted(desired.providers))}")


def _progress(reporter: Reporter) -> Callable[[Action, Outcome], None]:
    def report(action: Action, outcome: Outcome) -> None:
        detail = f" ({outcome.message})" if outcome.message else ""
        reporter.step(f"{outcome.status.value:>9}: {action_line(action)}{detail}")

    return report


sandbox_option = click.option(
    "--sandbox",
    is_flag=True,
    help="Run against the built-in simulators (state kept in .reconciler/sandbox/).",
)
def _journal_target(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | str:
    """A path (SQLite) or a postgresql:// URL kept as text (Path would fold its `//`)."""
    from reconciler.journal import journal_target

    return journal_target(value)


journal_option = click.option(
    "--journal",
    "journal_path",
    default=str(DEFAULT_JOURNAL),
    envvar="RECONCILER_JOURNAL_URL",
    show_envvar=True,
    show_default=True,
    metavar="PATH|URL",
    callback=_journal_target,
    help="Journal: a SQLite file, or a postgresql:// URL shared by every runner "
    "(then locks span machines).",
)
removals_option = click.option(
    "--max-removals",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse plans removing more grants than this per provider (default: YAML, else 25).",
)
output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Plan format on stdout; logs and progress go to stderr.",
)
verbose_option = click.option("--verbose", "-v", is_flag=True, help="Show calls and log more.")


_SECONDS_PER_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """`0`, `30`, `30s`, `5m`, `1h`: how long to wait for another run's lock."""
    text = value.strip().lower()
    unit = text[-1] if text and text[-1] in "smh" else ""
    try:
        seconds = float(text[: len(text) - len(unit)]) * _SECONDS_PER_UNIT[unit]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration such as 0, 30s, 5m or 1h") from None
    if seconds < 0:
        raise click.BadParameter("a duration cannot be negative")
    return seconds


target_option = click.option(
    "--target",
    "target_values",
    multiple=True,
    metavar="PROVIDER[/POOL]",
    help="Limit reading and planning to this provider or pool (repeatable).",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    callback=_duration,
    default="0",
    metavar="DURATION",
    show_default=True,
    help="Wait this long (30s, 5m) for another run's lock; 0 fails at once naming the holder.",
)


class _VendorListingGroup(click.Group):
    """Help that lists the vendors installed here, each described by its own provider."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from reconciler.providers import registry

        with formatter.section("Vendors (providers found installed)"):
            formatter.write_dl([(name, cls.summary()) for name, cls in registry().items()])


@click.group(cls=_VendorListingGroup)
@click.version_option(package_name="reconciler")
def main() -> None:
    """Declarative, GitOps-style reconciliation of software license assignments."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: Sequence[str]) -> None:
    """Checks desired-state files; contacts no vendor."""
    try:
        desired = load_desired(paths)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_ERROR)
    grants = sum(len(p.grants) for p in desired.providers.values())
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
    verbose: bool,
) -> None:
    """Reads current state, diffs it with the YAML, prints the ordered plan.

    With --detailed-exitcode: 0 in sync, 2 changes or anything held back (a call in
    doubt, a request pending at the vendor), 1 error.
    """
    _setup_logging(verbose)

    async def work() -> Plan:
        session = Session(load_desired(paths), connector=_connector(sandbox), on_read=_read_done,
                          targets=parse_targets(target_values))
        with _locked(session, journal_path, lock_timeout) as journal:
            async with session:
                with _reading(session.desired):
                    return await session.plan(journal, max_removals=max_removals)

    result = _run(work)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_json(result), encoding="utf-8")
        click.echo(f"plan saved to {out}", err=True)
    _print_plan(result, output, verbose)
    if detailed_exitcode and not result.converged:
        sys.exit(EXIT_CHANGES)


@main.command()
@click.argument("targets", nargs=-1, required=True)
@sandbox_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--dry-run", is_flag=True, help="Print every request; send nothing that changes.")
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Poll async vendors (ADManager) until the requests created are executed or "
    "rejected, for at most SECONDS.",
)
@removals_option
@journal_option
@lock_timeout_option
@target_option
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
    verbose: bool,
) -> None:
    """Executes a saved plan (PLANFILE), or plans and applies PATH... in one go.

    A saved plan is never executed from its own contents: the YAML it names is
    loaded, the vendors are read again and the plan is rebuilt; only when the rebuilt
    plan equals the saved one are the rebuilt requests sent, and a plan applies once.
    """
    _setup_logging(verbose)
    saved = _saved_plan(targets)

    async def work() -> bool:
        desired = load_desired(_config_paths(saved) if saved is not None else targets)
        settled: list[Resolution] = []
        # A saved plan keeps its own targets unless others are given (then they must match).
        chosen_targets = target_values or (saved.targets if saved is not None else ())
        session = Session(desired, connector=_connector(sandbox), on_read=_read_done,
                          targets=parse_targets(chosen_targets))
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
                if dry_run:
                    click.echo(REDACTOR.text(render_requests(chosen)), nl=False)
                    return True
                if not chosen.actions:
                    click.echo(REDACTOR.text(render_text(chosen)), nl=False)
                    return True
                if saved is None and not auto_approve:
                    click.echo(REDACTOR.text(render_text(chosen)), nl=False)
                    _confirm_or_refuse()
                if digest is not None:
                    _refuse_if_applied(journal.claim_plan(digest))
                reporter = Reporter()
                with reporter.track("applying", len(chosen.actions)):
                    report = await session.apply(chosen, journal, _progress(reporter))
                    if wait_seconds is not None:
                        settled = await session.wait_for_pending(
                            report, journal, timeout=wait_seconds, listener=_settled
                        )
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
    sys.exit(EXIT_OK if ok else EXIT_ERROR)


@contextmanager
def _locked(session: Session, journal_path: Path | str, timeout: float) -> Iterator[Journal]:
    """The journal, with the run's scopes locked before anything is read."""
    scopes = lock_scopes_of(session.desired, session.targets)
    with open_journal(journal_path) as journal, lock_scopes(journal, scopes, timeout):
        yield journal


def _refuse_if_applied(at: str | None) -> None:
    if at is not None:
        raise PlanAlreadyAppliedError(
            f"this plan was already applied at {at}; a plan applies once. "
            "Run `reconciler plan` again and apply the new plan."
        )


def _config_paths(saved: Plan) -> list[str]:
    """The YAML a saved plan was made from, if it lies inside the working directory.

    The plan file names its YAML; a file edited to name YAML elsewhere on the machine
    (outside the reviewed checkout) is refused rather than loaded.
    """
    if not saved.config_paths:
        _fail("error: the plan file names no desired-state files")
    here = Path.cwd().resolve()
    for name in saved.config_paths:
        if not (here / name).resolve().is_relative_to(here):
            _fail(f"error: the plan file names {name!r}, outside the working directory "
                  f"{here}; apply plans from the checkout they were made in")
    return list(saved.config_paths)


def _settled(resolution: Resolution) -> None:
    detail = f" ({resolution.message})" if resolution.message else ""
    line = f"request {resolution.request.request_id} {resolution.status}{detail}: "
    click.echo(REDACTOR.text(line + action_line(resolution.request.action)), err=True)


def _saved_plan(targets: Sequence[str], *, required: bool = False) -> Plan | None:
    """A single JSON argument is a saved plan; anything else is desired-state paths."""
    if not required and (len(targets) != 1 or not targets[0].endswith(".json")):
        return None
    path = Path(targets[0])
    try:
        return read_plan(path.read_text(encoding="utf-8"))
    except OSError as error:
        _fail(f"error: cannot read plan file {path}: {error.strerror}")
    except ValueError as error:
        _fail(f"error: {path} is not a reconciler plan file: {str(error).splitlines()[0]}")


def _confirm_or_refuse() -> None:
    if not sys.stdin.isatty():
        _fail(
            "error: refusing to apply without --auto-approve: stdin is not a terminal. "
            "Review the plan, then re-run with --auto-approve (or apply a saved plan file)."
        )
    if not click.confirm("Apply these changes?", default=False):
        _fail("apply cancelled; nothing was changed")


@main.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@output_option
@verbose_option
def show(planfile: Path, output: str, verbose: bool) -> None:
    """Renders a saved plan (text, JSON or Markdown); contacts no vendor.

    What it shows is what the file says; `apply PLANFILE` still rebuilds the plan and
    refuses it unless the YAML and the vendors give the same.
    """
    saved = _saved_plan([str(planfile)], required=True)
    assert saved is not None
    _print_plan(saved, output, verbose)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@sandbox_option
@output_option
@journal_option
@lock_timeout_option
@target_option
@verbose_option
def drift(
    paths: Sequence[str],
    sandbox: bool,
    output: str,
    journal_path: Path | str,
    lock_timeout: float,
    target_values: Sequence[str],
    verbose: bool,
) -> None:
    """Scheduled check: exit 0 in sync, 2 drifted or held back (printed), 1 error."""
    _setup_logging(verbose)

    async def work() -> Plan:
        session = Session(load_desired(paths), connector=_connector(sandbox), on_read=_read_done,
                          targets=parse_targets(target_values))
        with _locked(session, journal_path, lock_timeout) as journal:
            async with session:
                with _reading(session.desired):
                    return await session.plan(journal, max_removals=10**9)

    result = _run(work)
    _print_plan(result, output, verbose)
    if not result.converged:
        if output == "text":
            held = f", {len(result.pending)} held back" if result.pending else ""
            click.echo(
                f"drift: {len(result.actions)} difference(s) from the desired state{held}",
                err=True,
            )
        sys.exit(EXIT_CHANGES)


@main.command("journal")
@journal_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the newest N entries (default: 50, or all with a filter).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line: the audit export (seat, commit, CI run, plan).")
@click.option("--since", metavar="WHEN",
              help="Entries at or after WHEN: 2026-11-30, 2026-11-30T12:00+00:00, or 30d.")
@click.option("--until", metavar="WHEN", help="Entries before WHEN (a bare date: through it).")
@click.option("--provider", "providers", multiple=True, help="Only this provider (repeatable).")
@click.option("--prune-before", metavar="WHEN",
              help="Delete entries older than WHEN (calls in doubt or pending are kept). "
              "RECONCILER_JOURNAL_RETENTION_DAYS does this on every run.")
@click.option(
    "--resolve",
    "resolutions",
    nargs=2,
    multiple=True,
    metavar="ACTION_ID done|not-done",
    help="Settle a call left in doubt, or a pending request the vendor lost, after you "
    "checked the vendor yourself (repeatable).",
)
@click.option(
    "--resolve-all-in-doubt",
    "all_in_doubt",
    type=click.Choice(["done", "not-done"]),
    default=None,
    help="Settle every call left in doubt (of --provider, if given) the same way.",
)
def journal_command(
    journal_path: Path | str,
    limit: int | None,
    as_json: bool,
    since: str | None,
    until: str | None,
    providers: tuple[str, ...],
    prune_before: str | None,
    resolutions: tuple[tuple[str, str], ...],
    all_in_doubt: str | None,
) -> None:
    """Lists journal entries (every vendor-changing call, before and after), exports
    them, prunes old ones, or settles calls left in doubt."""
    from reconciler.journal import open_journal, parse_when

    if isinstance(journal_path, Path) and not journal_path.exists():
        _fail(f"error: no journal at {journal_path}")
    try:
        bounds = {name: parse_when(value, end=name == "until") if value else None
                  for name, value in
                  [("since", since), ("until", until), ("prune", prune_before)]}
    except ValueError as error:
        _fail(f"error: {error}")
    try:
        journal = open_journal(journal_path)
    except ReconcilerError as error:
        _fail(f"error: {error}")
    try:
        with journal:
            _journal_work(journal, limit, as_json, bounds, providers, resolutions, all_in_doubt)
    except ReconcilerError as error:
        _fail(f"error: {error}")


def _journal_work(
    journal: Journal,
    limit: int | None,
    as_json: bool,
    bounds: dict[str, str | None],
    providers: tuple[str, ...],
    resolutions: tuple[tuple[str, str], ...],
    all_in_doubt: str | None,
) -> None:
    if bounds["prune"] is not None:
        removed = journal.prune(bounds["prune"])
        click.echo(f"pruned {removed} entr{'y' if removed == 1 else 'ies'} before "
                   f"{bounds['prune']} from {journal.description}", err=True)
        return
    if resolutions or all_in_doubt:
        _settle(journal, resolutions, all_in_doubt, providers)
        return
    filtered = bounds["since"] or bounds["until"] or providers
    entries = journal.entries(since=bounds["since"], until=bounds["until"],
                              providers=providers,
                              limit=limit if limit is not None or filtered else 50)
    for entry in entries:
        if as_json:
            click.echo(json.dumps(entry.export(), sort_keys=True))
            continue
        outcome = entry.outcome or ""
        vendor = f" vendor-id={entry.vendor_request_id}" if entry.vendor_request_id else ""
        message = f"  {entry.message}" if entry.message else ""
        click.echo(
            f"{entry.seq:>5} {entry.at} {entry.event:<8} {outcome:<9} "
            f"{entry.action_id}{vendor}{message}"
        )


def _settle(journal: Journal, resolutions: tuple[tuple[str, str], ...],
            all_in_doubt: str | None, providers: tuple[str, ...]) -> None:
    """Records operator verdicts; checks every one before recording any, so a typo in
    the fifth id does not leave four settled and the rest not."""
    everything = journal.in_doubt()
    in_doubt = [e for e in everything if not providers or e.action().provider in providers]
    doubtful = {e.action_id: e for e in [*everything, *journal.pending()]}
    verdicts = {e.action_id: all_in_doubt for e in in_doubt} if all_in_doubt else {}
    for action_id, verdict in resolutions:
        if action_id not in doubtful:
            _fail(f"error: {action_id} is neither in doubt nor pending (open: "
                  f"{', '.join(sorted(doubtful)) or 'nothing'})")
        if verdict not in {"done", "not-done"}:
            _fail(f"error: {action_id}: say `done` or `not-done`, not `{verdict}`")
        if verdicts.get(action_id, verdict) != verdict:
            _fail(f"error: {action_id} is given both `{verdicts[action_id]}` and `{verdict}`")
        verdicts[action_id] = verdict
    if not verdicts:
        click.echo("nothing in doubt to settle", err=True)
        return
    for action_id, verdict in sorted(verdicts.items()):
        outcome = "succeeded" if verdict == "done" else "not-done"
        journal.resolved(doubtful[action_id].action(), outcome, "settled by an operator")
        click.echo(f"{action_id}: recorded as {verdict}")


@main.command("import")
@click.argument("provider")
@click.option("--pool", default=None, help="Only subjects holding a license of this pool.")
@click.option("--from", "source", default=None, metavar="PATH",
              help="Desired-state file(s) whose connection (and scope: UiPath organizations, "
                   "ADManager domains) to use. Default: variables named <PROVIDER>_<SETTING>.")
@sandbox_option
def import_command(provider: str, pool: str | None, source: str | None, sandbox: bool) -> None:
    """Writes the current vendor state as desired-state YAML on stdout."""
    import os

    from reconciler.importer import (
        conventional_connection,
        emptiness,
        kept_connection,
        to_document,
    )
    from reconciler.model import DesiredState, ProviderDesired
    from reconciler.providers import registry

    known = registry()
    if provider not in known:
        _fail(f"error: unknown provider '{provider}' (known: {', '.join(sorted(known))})")
    fields = known[provider].connection_model.model_fields

    async def work() -> str:
        if source is not None:
            loaded = load_desired([source])
            if provider not in loaded.providers:
                _fail(f"error: {source} has no '{provider}' provider block")
            scope = loaded.providers[provider]
        else:
            environ = None if sandbox else os.environ
            scope = ProviderDesired(
                provider=provider, connection=conventional_connection(provider, fields, environ)
            )
        desired = DesiredState(providers={provider: scope})
        async with Session(desired, connector=_connector(sandbox), on_read=_read_done) as session:
            with _reading(desired):
                current = (await session.read())[provider]
        warning = emptiness(provider, current, pool, scoped=source is not None)
        if warning:
            click.echo(warning, err=True)
        connection = kept_connection(fields, scope.connection)
        return to_document(provider, connection, current, scope.subjects, pool)

    click.echo(_run(work), nl=False)


@main.command()
@click.argument("provider")
@click.option("--from", "source", default=None, metavar="PATH",
              help="Desired-state file(s) whose connection to use. Default: variables named "
                   "<PROVIDER>_<SETTING>, as for import.")
@sandbox_option
def probe(provider: str, source: str | None, sandbox: bool) -> None:
    """Reads PROVIDER as `plan` would and prints each answer's status and JSON shape.

    Only read calls (and the vendor's login) are sent; values are never printed. Run it
    once with real credentials to check the vendor answers the shapes reconciler
    expects (docs/providers/ lists which calls are inferred).
    """
    from reconciler.probe import Observed

    desired = _one_provider(provider, source, sandbox)
    observed = Observed()

    async def work() -> str | None:
        async with Session(desired, connector=_connector(sandbox)) as session:
            session.providers[provider].http.client.event_hooks["response"].append(
                observed.record)
            try:
                state = (await session.read())[provider]
            except ReconcilerError as error:
                return f"read failed: {error}"
        return f"read: {len(state.grants)} grant(s), {len(state.pools)} pool(s)"

    result = _run(work)
    for line in observed.calls:
        click.echo(REDACTOR.text(line))
    if not observed.calls:
        click.echo(f"no call was made: {provider} reads what the YAML names "
                   "(organizations, domains); pass --from FILE")
    click.echo(REDACTOR.text(result or ""))
    if result and result.startswith("read failed"):
        sys.exit(EXIT_ERROR)


def _one_provider(provider: str, source: str | None, sandbox: bool) -> DesiredState:
    """One provider's desired state: from a file's block, or conventional variables."""
    import os

    from reconciler.importer import conventional_connection
    from reconciler.model import ProviderDesired
    from reconciler.providers import registry

    known = registry()
    if provider not in known:
        _fail(f"error: unknown provider '{provider}' (known: {', '.join(sorted(known))})")
    if source is not None:
        try:
            loaded = load_desired([source])
        except ConfigError as error:
            _fail("\n".join(str(p) for p in error.problems))
        if provider not in loaded.providers:
            _fail(f"error: {source} has no '{provider}' provider block")
        return DesiredState(providers={provider: loaded.providers[provider]})
    fields = known[provider].connection_model.model_fields
    environ = None if sandbox else os.environ
    connection = conventional_connection(provider, fields, environ)
    return DesiredState(providers={provider: ProviderDesired(provider=provider,
                                                             connection=connection)})


@main.command()
def schema() -> None:
    """Prints the JSON Schema of desired-state files (for editors and CI checks)."""
    from reconciler.config.schema import desired_state_schema
    from reconciler.providers import registry

    connections = {name: cls.connection_model for name, cls in registry().items()}
    kinds = {name: cls.subject_kinds for name, cls in registry().items()}
    click.echo(json.dumps(desired_state_schema(connections, kinds), indent=2, sort_keys=True))


@main.group()
def sandbox() -> None:
    """The built-in vendor simulators."""


@sandbox.command("reset")
def sandbox_reset() -> None:
    """Restores every simulator's documented seed state (.reconciler/sandbox/)."""
    names = InProcessSandbox(DEFAULT_STATE_DIR).reset()
    click.echo(f"sandbox reset: {', '.join(names)}")


@sandbox.command("faults")
@click.argument("provider")
@click.option("--set", "settings", help='Fault settings as JSON: {"error_rates": {"503": 0.1}}.')
@click.option("--clear", is_flag=True, help="Back to no faults.")
def sandbox_faults(provider: str, settings: str | None, clear: bool) -> None:
    """Shows or sets a simulator's fault injection for later --sandbox runs."""
    from reconciler.sandbox.base import Faults

    try:
        simulator = InProcessSandbox(DEFAULT_STATE_DIR).simulator(provider)
    except KeyError as error:
        _fail(f"error: {error.args[0]}")
    if clear or settings is not None:
        try:
            faults = Faults() if clear else Faults.model_validate_json(settings or "{}")
        except ValueError as error:
            _fail(f"error: invalid fault settings: {error}")
        simulator.set_faults(faults, persist=True)
    click.echo(simulator.faults.model_dump_json())


@sandbox.command("serve")
@click.argument("paths", nargs=-1)
@click.option("--env-file", type=click.Path(path_type=Path), help="Also write the exports here.")
@click.option("--host", default="127.0.0.1", show_default=True)
def sandbox_serve(paths: Sequence[str], env_file: Path | None, host: str) -> None:
    """Serves the simulators over HTTP and prints the environment that points at them.

    PATHS (default: examples/desired-state) are read only to learn which environment
    variables the YAML names for base URLs and credentials.
    """
    from reconciler.sandbox.serve import serve

    chosen = list(paths) or ["examples/desired-state"]
    try:
        desired = load_desired(chosen)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_ERROR)
    serve(desired, host=host, env_file=env_file, echo=click.echo)


if __name__ == "__main__":
    main()
