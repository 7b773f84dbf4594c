"""The pull-request view of a plan: a headline, summary tables, each provider's actions folded.

The first line is the headline (`render.headline`): what a reviewer reads in ten
seconds, removals marked 🔴. Money is shown per currency and period (`render.cost`).

It is posted as one GitHub comment, so it must always fit under GitHub's size limit:
when a plan is too long, every provider keeps a fair share of the space, each cut
section says how many actions (and how many removals) it does not list, and a note
points at the saved plan file, which holds everything. Removals are what reviewers
must see, so every listed one carries its reason, and nothing a vendor or a YAML
author wrote can break out of its cell, its code span or its section.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from reconciler.model import Action, PendingChange, Plan, PoolSummary
from reconciler.render.changes import action_changes, direction
from reconciler.render.chart import seat_chart
from reconciler.render.cost import cost_text, money
from reconciler.render.headline import headline
from reconciler.render.text import HELD_BACK_ADVICE
from reconciler.secrets import REDACTOR

VERBS = ("assign", "remove", "release", "allocate", "update")
COMMENT_LIMIT = 60_000
"""GitHub refuses comments over 65,536 characters; leave room for a marker and a header."""
POOL_ROWS = 60
"""Pools listed in the seat table at most (largest seat changes first); the rest summed."""
LISTED_EXTRAS = 40
"""Pending changes and notes listed at most; the rest counted."""
_CUT_NOTE_ROOM = 400


def render_markdown(plan: Plan, *, limit: int = COMMENT_LIMIT) -> str:
    """The plan as GitHub-flavoured Markdown, at most `limit` characters."""
    head = [f"**{_inline(headline(plan, strong=_removal))}**", ""]
    # Providers that could not be read come first: this plan says nothing about them.
    head += _errors(plan)
    # Held-back changes come next: they are differences the vendor may not show yet.
    head += _pending(plan.pending)
    if plan.actions:
        head += _provider_table(plan)
        head += _pool_table(plan.summary.pools)
        head += seat_chart(plan.summary.pools)
    tail = [*_notes(plan.notes), _totals(plan)]
    sections = _sections(plan.actions)
    shares = _shares([len(_join(lines)) for lines, _ in sections],
                     [_floor(lines) for lines, _ in sections],
                     limit - len(_join(head + tail)) - _CUT_NOTE_ROOM)
    body: list[str] = []
    cut = 0
    for (lines, actions), share in zip(sections, shares, strict=True):
        kept, hidden = _fit(lines, share, actions)
        cut += hidden
        body += kept
    if cut:
        body += [
            f"_Plan truncated to fit one GitHub comment: {cut} of {len(plan.actions)} actions "
            "are not listed (the counts above include them). The saved plan file (JSON) "
            "holds every action._",
            "",
        ]
    return _last_resort(REDACTOR.text(_join(head + body + tail)), limit)


# ---- summary tables ----------------------------------------------------------------------
def _removal(words: str) -> str:
    return f"🔴 {words}"


def _provider_table(plan: Plan) -> list[str]:
    by_provider: dict[str, list[Action]] = defaultdict(list)
    for action in plan.actions:
        by_provider[action.provider].append(action)
    pools_of: dict[str, list[PoolSummary]] = defaultdict(list)
    for pool in plan.summary.pools:
        pools_of[pool.provider].append(pool)
    lines = [
        "| provider | " + " | ".join(VERBS) + " | cost delta |",
        "|---|" + "---:|" * (len(VERBS) + 1),
    ]
    for provider, actions in sorted(by_provider.items()):
        counts = [sum(1 for a in actions if a.verb == verb) for verb in VERBS]
        price = cost_text(pools_of[provider])
        lines.append(f"| {_inline(provider)} | " + " | ".join(map(str, counts)) + f" | {price} |")
    if len(by_provider) > 1:
        totals = [sum(1 for a in plan.actions if a.verb == verb) for verb in VERBS]
        total = cost_text(plan.summary.pools)
        price = f"**{total}**" if total else ""
        lines.append("| **total** | " + " | ".join(f"**{n}**" for n in totals) + f" | {price} |")
    return [*lines, ""]


def _pool_table(pools: Sequence[PoolSummary]) -> list[str]:
    if not pools:
        return []
    lines = [
        "| pool | in use | after | capacity | seat delta | cost delta |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    shown = set(sorted(range(len(pools)), key=lambda i: -abs(pools[i].seat_delta))[:POOL_ROWS])
    for index, pool in enumerate(pools):
        if index in shown:
            capacity = "" if pool.capacity is None else str(pool.capacity)
            lines.append(
                f"| {_inline(f'{pool.provider}/{pool.pool}')} | {pool.used_before} | "
                f"{pool.used_after} | {capacity} | {pool.seat_delta:+d} | {_cost(pool)} |"
            )
    hidden = [pool for index, pool in enumerate(pools) if index not in shown]
    if hidden:
        seats = sum(pool.seat_delta for pool in hidden)
        lines.append(
            f"| _{len(hidden)} more {_plural(len(hidden), 'pool')}_ | | | | {seats:+d} | "
            f"{cost_text(hidden)} |"
        )
    return [*lines, ""]


def _cost(pool: PoolSummary) -> str:
    if pool.unit_price is None:
        return ""
    return money(pool.seat_delta * pool.unit_price, pool.currency, pool.period)


# ---- sections ----------------------------------------------------------------------------
Section = tuple[list[str], list[Action]]


def _sections(actions: Sequence[Action]) -> list[Section]:
    """Each provider's folded section as lines (opening, one per action, closing)."""
    by_provider: dict[str, list[Action]] = defaultdict(list)
    for action in actions:
        by_provider[action.provider].append(action)
    sections: list[Section] = []
    for provider, listed in sorted(by_provider.items()):
        removals = sum(1 for a in listed if direction(a) == "-")
        freeing = f", <b>🔴 {_count(removals, 'removal')}</b>" if removals else ""
        lines = [
            f"<details><summary><b>{_html(provider)}</b>: {_count(len(listed), 'action')}"
            f"{freeing}</summary>",
            "",
            *(_action_line(action) for action in listed),
            "",
            "</details>",
            "",
        ]
        sections.append((lines, listed))
    return sections


def _action_line(action: Action) -> str:
    sign = direction(action)
    marker = "🔴 " if sign == "-" else ""
    return (
        f"- {marker}`{sign} {action.verb}` {_code(str(action.subject))} "
        f"{_code(action_changes(action))} ({_inline(action.pool)}): "
        f"{_inline(_clip(action.reason))}"
    )


_MORE_ROOM = 100
"""Room for the "… N more actions not listed" line of a cut section."""


def _floor(lines: list[str]) -> int:
    """The smallest a section can be: opening, closing and the line saying what is cut."""
    return len(_join(lines[:2] + lines[-3:])) + _MORE_ROOM


def _shares(sizes: Sequence[int], floors: Sequence[int], budget: int) -> list[int]:
    """Water-filling: small sections keep everything, the big ones split what is left.

    Every section keeps at least its floor, so each provider stays visible and closed.
    """
    if sum(sizes) <= budget:
        return list(sizes)
    shares = list(floors)
    left = max(budget - sum(floors), 0)
    waiting = sorted(range(len(sizes)), key=lambda i: sizes[i] - floors[i])
    while waiting:
        fair = left // len(waiting)
        index = waiting.pop(0)
        extra = max(min(sizes[index] - floors[index], fair), 0)
        shares[index] += extra
        left -= extra
    return shares


def _fit(lines: list[str], share: int, actions: Sequence[Action]) -> tuple[list[str], int]:
    """The section within `share` characters, still closed, saying what it leaves out."""
    if len(_join(lines)) <= share:
        return lines, 0
    opening, entries, closing = lines[:2], lines[2:-3], lines[-3:]
    room = share - _floor(lines)
    kept: list[str] = []
    for line in entries:
        room -= len(line) + 1
        if room < 0:
            break
        kept.append(line)
    hidden = actions[len(kept):]
    removals = sum(1 for a in hidden if direction(a) == "-")
    more = f"- _… {len(hidden)} more {_plural(len(hidden), 'action')} not listed"
    more += f" (**🔴 {removals} of them {_plural(removals, 'removal')}**)_" if removals else "_"
    return [*opening, *kept, more, *closing], len(hidden)


# ---- after the sections ------------------------------------------------------------------
def _errors(plan: Plan) -> list[str]:
    if not plan.errors:
        return []
    lines = [f"**Not read: {_count(len(plan.errors), 'provider')} failed**, so their changes "
             "are not in this plan (it cannot be applied):", ""]
    lines += [f"- {_inline(error.provider)}: {_inline(_clip(error.message))}"
              for error in plan.errors]
    return [*lines, ""]


def _pending(pending: Sequence[PendingChange]) -> list[str]:
    if not pending:
        return []
    lines = [
        f"<details open><summary><b>Held back</b>: {_count(len(pending), 'change')} "
        "not settled yet (not planned again)</summary>",
        "",
        f"_{HELD_BACK_ADVICE}_",
        "",
    ]
    for change in pending[:LISTED_EXTRAS]:
        _, pool, kind, subject, license = change.key
        lines.append(
            f"- {_inline(change.provider)} {change.direction} {_code(f'{kind}:{subject}')} "
            f"{_code(license)} ({_inline(pool)}): {_inline(_clip(change.description))}"
        )
    if len(pending) > LISTED_EXTRAS:
        lines.append(f"- _… {len(pending) - LISTED_EXTRAS} more pending changes_")
    return [*lines, "", "</details>", ""]


def _notes(notes: Sequence[str]) -> list[str]:
    if not notes:
        return []
    lines = ["**Notes**", ""]
    lines += [f"- {_inline(_clip(note))}" for note in notes[:LISTED_EXTRAS]]
    if len(notes) > LISTED_EXTRAS:
        lines.append(f"- _… {len(notes) - LISTED_EXTRAS} more notes_")
    return [*lines, ""]


def _totals(plan: Plan) -> str:
    summary = plan.summary
    return (
        f"_{_count(summary.in_sync, 'grant')} already as declared; "
        f"{_count(summary.unmanaged, 'live grant')} not managed here "
        "(subject not named, pool not pruned)._"
    )


def _last_resort(text: str, limit: int) -> str:
    """Only for limits too small for the tables themselves: cut, close, and say so."""
    if len(text) <= limit:
        return text
    note = "\n\n_Plan truncated: see the saved plan file (JSON)._\n"
    cut = text[: max(limit - len(note) - len("\n</details>"), 0)].rsplit("\n", 1)[0]
    if cut.count("<details>") > cut.count("</details>"):
        cut += "\n</details>"
    return (cut + note)[:limit]


_CLIP = 600
"""Longest reason or note listed: a batched call's reason can name hundreds of grants."""


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


# ---- escaping ----------------------------------------------------------------------------
_SPACES = re.compile(r"\s+")


def _flat(text: str) -> str:
    """One line: a newline inside a vendor name must not end a list item or a table."""
    return _SPACES.sub(" ", text).strip()


def _html(text: str) -> str:
    return _flat(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """Plain text inside a list item: no HTML, no table breaks, no stray emphasis or links."""
    escaped = _html(text).replace("\\", "\\\\")
    return re.sub(r"([|*_`\[\]])", r"\\\1", escaped)


def _code(text: str) -> str:
    """A code span that survives backticks in the text (CommonMark: a longer fence)."""
    flat = _flat(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    padded = f" {flat} " if flat.startswith("`") or flat.endswith("`") else flat
    return f"{fence}{padded}{fence}"


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _count(count: int, noun: str) -> str:
    return f"{count} {_plural(count, noun)}"


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"
