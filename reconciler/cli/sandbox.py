"""`sandbox`: the built-in vendor simulators (init, reset, faults, approve/reject, serve)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.cli.common import (
    EXIT_ERROR,
    _fail,
    main,
)
from reconciler.envnames import BASE_URL_SETTING, conventional_variable
from reconciler.errors import ConfigError
from reconciler.pipeline import load_desired
from reconciler.sandbox.demo import (
    DEFAULT_INIT_DIR,
    EXAMPLE_DIR,
    existing_targets,
    write_example,
)
from reconciler.sandbox.runtime import DEFAULT_STATE_DIR, InProcessSandbox


@main.group()
def sandbox() -> None:
    """The built-in vendor simulators."""


@sandbox.command("init")
@click.argument("directory", metavar="[DIR]", default=str(DEFAULT_INIT_DIR),
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite example files already there.")
def sandbox_init(directory: Path, force: bool) -> None:
    """Writes the example desired state (one file per vendor) into DIR.

    DIR defaults to ./desired-state. Existing files are never overwritten without
    --force. Then `reconciler plan DIR --sandbox` plans it against the simulators.
    """
    clashes = existing_targets(directory)
    if clashes and not force:
        more = f" (and {len(clashes) - 1} more example files)" if len(clashes) > 1 else ""
        _fail(f"error: {clashes[0]} already exists{more}; nothing written "
              "(--force overwrites)")
    try:
        written = write_example(directory)
    except OSError as error:
        _fail(f"error: cannot write the example into {directory}: {error.strerror or error}")
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: reconciler plan {shlex.quote(str(directory))} --sandbox")


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


def _approver_command(approve: bool) -> click.Command:
    verb = "approve" if approve else "reject"

    @click.argument("provider")
    @click.argument("request_ids", nargs=-1, metavar="[REQUEST_ID]...")
    @click.option("--all", "everything", is_flag=True, help=f"{verb.capitalize()} every request "
                  "waiting for an approver.")
    @click.option("--base-url", metavar="URL",
                  help="A served sandbox (`reconciler sandbox serve`). Default: the URL in "
                  "PROVIDER_BASE_URL (e.g. ADMANAGER_BASE_URL) when set, else the in-process "
                  "sandbox (.reconciler/sandbox/).")
    def command(provider: str, request_ids: tuple[str, ...], everything: bool,
                base_url: str | None) -> None:
        _decide(provider, request_ids, everything, base_url, approve=approve)

    command.__doc__ = (
        f"Plays the vendor's approver: {verb}s PROVIDER's waiting requests (REQUEST_ID... or "
        "--all). " + ("Approving carries a request out as the vendor would on execution, its "
                      "own checks (capacity) included." if approve else
                      "A rejected request is planned again by the next plan.")
    )
    return sandbox.command(verb)(command)


def _decide(provider: str, request_ids: tuple[str, ...], everything: bool,
            base_url: str | None, *, approve: bool) -> None:
    import asyncio
    import os

    import httpx

    from reconciler.http import unreachable
    from reconciler.sandbox.approver import ApproverError, Decided, admin_root, decide

    variable = conventional_variable(provider, BASE_URL_SETTING)
    origin = "from --base-url"
    if base_url is None and os.environ.get(variable):
        base_url, origin = os.environ[variable], f"from {variable}"
    if base_url is None:
        try:
            in_process = InProcessSandbox(DEFAULT_STATE_DIR)
            transport: httpx.AsyncBaseTransport | None = in_process.transport(provider)
        except KeyError as error:
            _fail(f"error: {error.args[0]}")
        root, where = f"http://{provider}.sandbox", "the in-process sandbox"
    else:
        try:
            root, transport = admin_root(base_url), None
        except (httpx.InvalidURL, TypeError, ValueError) as error:
            _fail(f"error: {provider}: {base_url!r} ({origin}) is not a URL: {error}")
        where = f"the sandbox at {root} ({origin})"

    async def work() -> list[Decided]:
        async with httpx.AsyncClient(base_url=root, transport=transport, timeout=30) as client:
            return await decide(client, provider, request_ids, approve=approve,
                                everything=everything)

    try:
        decided = asyncio.run(work())
    except ApproverError as error:
        _fail(f"error: {error}")
    except httpx.TransportError as error:
        _fail(f"error: {provider}: {unreachable(root, origin, error)}")
    click.echo(f"{provider}: {where}", err=True)
    if not decided:
        click.echo(f"{provider}: no request waiting for an approver")
    for one in decided:
        detail = f" ({one.message})" if one.message else ""
        click.echo(f"{provider}: request {one.request_id} {one.status}{detail}")


sandbox_approve = _approver_command(approve=True)
sandbox_reject = _approver_command(approve=False)


@sandbox.command("serve")
@click.argument("paths", nargs=-1)
@click.option("--env-file", type=click.Path(path_type=Path), help="Also write the exports here.")
@click.option("--host", default="127.0.0.1", show_default=True)
def sandbox_serve(paths: Sequence[str], env_file: Path | None, host: str) -> None:
    """Serves the simulators over HTTP and prints the environment that points at them.

    PATHS (default: the packaged example, as `sandbox init` writes it) are read only
    to learn which environment variables the YAML names for base URLs and credentials.
    """
    from reconciler.sandbox.serve import serve

    chosen = list(paths) or [str(EXAMPLE_DIR)]
    try:
        desired = load_desired(chosen)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_ERROR)
    serve(desired, host=host, env_file=env_file, echo=click.echo)
