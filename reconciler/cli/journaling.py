"""`journal`: read, export, prune and settle the record of every vendor-changing call."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.cli.common import (
    _fail,
    journal_option,
    main,
)
from reconciler.errors import ReconcilerError
from reconciler.journal import Journal, open_journal


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
@click.option(
    "--resolve-all-pending",
    "all_pending",
    type=click.Choice(["done", "not-done"]),
    default=None,
    help="Settle every request still pending at an async vendor (of --provider, if given) "
    "the same way: after a vendor forgot them (a reset), once you checked it yourself.",
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
    all_pending: str | None,
) -> None:
    """Lists journal entries (every vendor-changing call, before and after), exports
    them, prunes old ones, or settles calls left in doubt and pending requests."""
    from reconciler.journal import parse_when

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
            _journal_work(journal, limit, as_json, bounds, providers, resolutions,
                          {"in-doubt": all_in_doubt, "pending": all_pending})
    except ReconcilerError as error:
        _fail(f"error: {error}")


def _journal_work(
    journal: Journal,
    limit: int | None,
    as_json: bool,
    bounds: dict[str, str | None],
    providers: tuple[str, ...],
    resolutions: tuple[tuple[str, str], ...],
    settle_all: dict[str, str | None],
) -> None:
    if bounds["prune"] is not None:
        removed = journal.prune(bounds["prune"])
        click.echo(f"pruned {removed} entr{'y' if removed == 1 else 'ies'} before "
                   f"{bounds['prune']} from {journal.description}", err=True)
        return
    if resolutions or any(settle_all.values()):
        _settle(journal, resolutions, settle_all, providers)
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
            settle_all: dict[str, str | None], providers: tuple[str, ...]) -> None:
    """Records operator verdicts; checks every one before recording any, so a typo in
    the fifth id does not leave four settled and the rest not.

    `settle_all` gives one verdict for every open call of a kind (`in-doubt`, from
    --resolve-all-in-doubt; `pending`, from --resolve-all-pending), of --provider if given.
    """
    open_calls = {"in-doubt": journal.in_doubt(), "pending": journal.pending()}
    doubtful = {e.action_id: e for entries in open_calls.values() for e in entries}
    verdicts: dict[str, str] = {}
    for kind, verdict in settle_all.items():
        if verdict is None:
            continue
        for entry in open_calls[kind]:
            if not providers or entry.action().provider in providers:
                verdicts[entry.action_id] = verdict
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
        kinds = " or ".join(kind.replace("-", " ") for kind, verdict in settle_all.items()
                            if verdict) or "open"
        click.echo(f"nothing {kinds} to settle", err=True)
        return
    for action_id, verdict in sorted(verdicts.items()):
        outcome = "succeeded" if verdict == "done" else "not-done"
        journal.resolved(doubtful[action_id].action(), outcome, "settled by an operator")
        click.echo(f"{action_id}: recorded as {verdict}")
