"""`import`, `probe` and `schema`: what reconciler can learn from and tell about vendors."""

from __future__ import annotations

import json
import sys

import click

from reconciler.cli.common import (
    EXIT_ERROR,
    _connector,
    _fail,
    _read_done,
    _reading,
    _run,
    main,
    parallelism_option,
    sandbox_option,
)
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.model import DesiredState
from reconciler.pipeline import Session, load_desired
from reconciler.secrets import REDACTOR


@main.command("import")
@click.argument("provider")
@click.option("--pool", default=None, help="Only subjects holding a license of this pool.")
@click.option("--from", "source", default=None, metavar="PATH",
              help="Desired-state file(s) whose connection (and scope: UiPath organizations, "
                   "ADManager domains) to use. Default: variables named <PROVIDER>_<SETTING>.")
@sandbox_option
@parallelism_option
def import_command(provider: str, pool: str | None, source: str | None, sandbox: bool,
                   parallelism: int | None) -> None:
    """Writes the current vendor state as desired-state YAML on stdout."""
    from reconciler.importer import emptiness, kept_connection, to_document
    from reconciler.providers import registry

    desired = _one_provider(provider, source, sandbox)
    scope = desired.providers[provider]
    fields = registry()[provider].connection_model.model_fields

    async def work() -> str:
        async with Session(desired, connector=_connector(sandbox), on_read=_read_done,
                           parallelism=parallelism) as session:
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
@parallelism_option
def probe(provider: str, source: str | None, sandbox: bool, parallelism: int | None) -> None:
    """Reads PROVIDER as `plan` would and prints each answer's status and JSON shape.

    Only read calls (and the vendor's login) are sent; values are never printed. Run it
    once with real credentials to check the vendor answers the shapes reconciler
    expects (docs/providers/ lists which calls are inferred).
    """
    from reconciler.probe import Observed

    desired = _one_provider(provider, source, sandbox)
    observed = Observed()

    async def work() -> str | None:
        async with Session(desired, connector=_connector(sandbox),
                           parallelism=parallelism) as session:
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
