"""A seat chart for the pull-request comment: which pools fill up, at a glance.

Drawn as a Mermaid `xychart-beta`, which GitHub renders inside a ```mermaid block:
per pool, the share of its capacity in use before the plan (line) and after it
(bars), so pools of 5 and of 5,000 seats fit one axis. Pools without a known
capacity have no share and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.model import PoolSummary

CHART_POOLS = 20
"""Pools charted at most: the fullest after the plan."""
OPEN_UP_TO = 6
"""Up to this many pools the chart is shown open; more are folded away."""


LABEL_LENGTH = 40
"""Longest axis label; longer names are cut, and a cut that meets another gets `~N`."""


def _plain(pool: PoolSummary) -> str:
    # Only plain characters: a vendor's pool name must not close the chart or the
    # comment's HTML (`"`, `]`, `<`, backquotes, newlines all become `_`).
    text = f"{pool.provider}/{pool.pool}"
    return "".join(char if char.isalnum() or char in " _./:@+-" else "_" for char in text)


def _labels(pools: Sequence[PoolSummary]) -> list[str]:
    """One distinct label per pool: two pools that share their first 40 characters (or
    differ only in characters made plain) would otherwise read as one bar."""
    labels = [_plain(pool)[:LABEL_LENGTH] for pool in pools]
    taken = set(labels)
    seen: set[str] = set()
    for index, label in enumerate(labels):
        if label not in seen:
            seen.add(label)
            continue
        number = 2
        while True:
            suffix = f"~{number}"
            candidate = _plain(pools[index])[: LABEL_LENGTH - len(suffix)] + suffix
            if candidate not in taken:
                break
            number += 1
        labels[index] = candidate
        taken.add(candidate)
        seen.add(candidate)
    return [f'"{label}"' for label in labels]


def _share(used: int, capacity: int) -> int:
    return round(100 * used / capacity) if capacity else 0


def seat_chart(pools: Sequence[PoolSummary]) -> list[str]:
    """Markdown lines of the chart (empty when no pool has a capacity)."""
    charted = sorted(
        (pool for pool in pools if pool.capacity),
        key=lambda p: (-_share(p.used_after, p.capacity or 0), p.provider, p.pool),
    )[:CHART_POOLS]
    if not charted:
        return []
    after = [_share(p.used_after, p.capacity or 0) for p in charted]
    before = [_share(p.used_before, p.capacity or 0) for p in charted]
    top = max(100, *after, *before)
    chart = [
        "```mermaid",
        "xychart-beta",
        '    title "Seats in use, % of capacity: after the plan (bars), before (line)"',
        f"    x-axis [{', '.join(_labels(charted))}]",
        f'    y-axis "% of capacity" 0 --> {top}',
        f"    bar [{', '.join(map(str, after))}]",
        f"    line [{', '.join(map(str, before))}]",
        "```",
    ]
    full = sum(1 for share in after if share >= 100)
    summary = (f"<b>Seat chart</b>: {len(charted)} pool(s)"
               + (f", {full} full after this plan" if full else ""))
    opening = "<details open>" if len(charted) <= OPEN_UP_TO else "<details>"
    return [f"{opening}<summary>{summary}</summary>", "", *chart, "", "</details>", ""]
