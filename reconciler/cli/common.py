"""What every `reconciler` command shares: options, error handling, output, locking.

Exit codes are decided here, once: 0 success / in sync, 1 error or failed action,
2 changes present (`plan --detailed-exitcode`, `drift`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import NoReturn, TypeVar

import click

from reconciler import DISTRIBUTION
from reconciler.connectors import Connector, NetworkConnector
from reconciler.durations import parse_duration
from reconciler.errors import ConfigError, ReconcilerError, SafetyError
from reconciler.journal import DEFAULT_PATH as DEFAULT_JOURNAL
from reconciler.journal import Journal, open_journal
from reconciler.lock import lock_scopes
from reconciler.model import Action, CurrentState, DesiredState, Outcome, Plan
from reconciler.pipeline import Session
from reconciler.progress import Reporter
from reconciler.render.json import read_plan, render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import action_line, render_text
from reconciler.sandbox.runtime import DEFAULT_STATE_DIR, InProcessSandbox, SandboxConnector
from reconciler.secrets import REDACTOR, RedactingFilter
from reconciler.targeting import lock_scopes_of

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


FailureReport = Callable[[list[str], str], None]
"""Told the one-line errors (as printed on stderr) and their kind: config, safety, other."""


def _run(work: Callable[[], Awaitable[T]], on_failure: FailureReport | None = None) -> T:
    """Runs async work; every project error becomes a clean message and exit 1.

    `on_failure` also gets the messages, e.g. to print them as a Markdown document on
    stdout for a pull-request comment (`plan --output markdown`).
    """
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except ConfigError as error:
        messages, kind = [REDACTOR.text(str(problem)) for problem in error.problems], "config"
    except SafetyError as error:
        messages, kind = [REDACTOR.text(f"error: {error}")], "safety"
    except ReconcilerError as error:
        messages, kind = [REDACTOR.text(f"error: {error}")], "other"
    for message in messages:
        click.echo(message, err=True)
    if on_failure is not None:
        on_failure(messages, kind)
    sys.exit(EXIT_ERROR)


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
json_option = click.option(
    "--json", "as_json", is_flag=True,
    help="Print the result as one JSON object on stdout (README: JSON results); "
    "messages go to stderr, exit codes are unchanged.",
)
verbose_option = click.option("--verbose", "-v", is_flag=True, help="Show calls and log more.")


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A `--flag DURATION` in seconds: Go style (`1h30m`, `90s`, `5m`, `0`); see durations."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


parallelism_option = click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Calls in flight per provider for this run, instead of the YAML's "
    "limits.concurrency (not part of the plan).",
)
target_option = click.option(
    "--target",
    "target_values",
    multiple=True,
    metavar="PROVIDER[/POOL]",
    help="Limit reading and planning to this provider or pool (repeatable).",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    callback=duration,
    default="0",
    metavar="DURATION",
    show_default=True,
    help="Wait this long (30s, 5m, 1h30m) for another run's lock; 0 fails at once naming "
    "the holder.",
)


class _VendorListingGroup(click.Group):
    """Help that lists the vendors installed here, each described by its own provider.

    A command line click refuses (unknown option, bad value) exits 1 like any other
    error, not click's 2: exit 2 means "changes present" to `plan --detailed-exitcode`
    and `drift`, and a typo in a scheduled job must not read as drift.
    """

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from reconciler.providers import registry

        with formatter.section("Vendors (providers found installed)"):
            formatter.write_dl([(name, cls.summary()) for name, cls in registry().items()])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise _refused(error) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise _refused(error) from None


_HELP_ASKED: type[Exception] | tuple[()] = getattr(click.exceptions, "NoArgsIsHelpError", ())
"""Bare `reconciler`: click (8.2+) shows the help through a UsageError; left as it is."""


def _refused(error: click.UsageError) -> click.UsageError:
    if isinstance(error, _HELP_ASKED):
        return error
    return _Refused(error.format_message(), error.ctx)


class _Refused(click.UsageError):
    """A refused command line: shown as click shows it, exit 1."""

    exit_code = EXIT_ERROR


@click.group(cls=_VendorListingGroup,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION)
def main() -> None:
    """Declarative, GitOps-style reconciliation of software license assignments."""


@contextmanager
def _locked(session: Session, journal_path: Path | str, timeout: float) -> Iterator[Journal]:
    """The journal, with the run's scopes locked before anything is read."""
    scopes = lock_scopes_of(session.desired, session.targets)
    with open_journal(journal_path) as journal, lock_scopes(journal, scopes, timeout):
        yield journal


def _saved_plan(planfile: str | Path) -> Plan:
    """A saved plan file, or exit 1 with why it cannot be one."""
    path = Path(planfile)
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
