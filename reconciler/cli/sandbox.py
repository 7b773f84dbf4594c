"""`sandbox`: the built-in vendor simulators (init, reset, faults, serve)."""

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
