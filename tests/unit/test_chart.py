"""The seat chart in the PR comment: fullest pools first, shares of capacity, folded when many."""

from __future__ import annotations

from reconciler.model import PoolSummary
from reconciler.render.chart import CHART_POOLS, seat_chart


def _pool(name: str, before: int, after: int, capacity: int | None) -> PoolSummary:
    return PoolSummary(provider="crm", pool=name, capacity=capacity, used_before=before,
                       used_after=after, seat_delta=after - before)


def test_chart_shows_shares_of_capacity_fullest_first():
    lines = seat_chart([_pool("half", 1, 5, 10), _pool("full", 3, 4, 4), _pool("open", 1, 2, None)])
    text = "\n".join(lines)
    assert "```mermaid" in text and "xychart-beta" in text
    assert 'x-axis ["crm/full", "crm/half"]' in text
    assert "bar [100, 50]" in text and "line [75, 10]" in text
    assert lines[0].startswith("<details open>") and "1 full after this plan" in lines[0]


def test_many_pools_are_folded_and_capped():
    pools = [_pool(f"p{i}", 1, 2, 10) for i in range(CHART_POOLS + 5)]
    lines = seat_chart(pools)
    assert lines[0].startswith("<details><summary>")
    axis = next(line for line in lines if "x-axis" in line)
    assert axis.count('"crm/') == CHART_POOLS


def test_labels_cannot_break_the_chart():
    lines = seat_chart([_pool('a"]\nb', 1, 2, 4)])
    axis = next(line for line in lines if "x-axis" in line)
    assert axis == '    x-axis ["crm/a___b"]'


def test_no_capacity_no_chart():
    assert seat_chart([_pool("open", 1, 2, None)]) == []


def _axis(pools: list[PoolSummary]) -> list[str]:
    axis = next(line for line in seat_chart(pools) if "x-axis" in line)
    return axis.split("[", 1)[1].rstrip("]").split(", ")


def test_pools_sharing_their_first_40_characters_get_distinct_labels():
    shared = "Microsoft 365 E3 (no Teams) - EMEA region - "
    pools = [_pool(shared + "Germany", 1, 5, 10), _pool(shared + "France", 2, 5, 10),
             _pool(shared + "Spain", 3, 5, 10)]
    labels = _axis(pools)
    assert len(set(labels)) == 3
    assert all(len(label.strip('"')) <= 40 for label in labels)
    assert all(label.strip('"').startswith("crm/Microsoft 365 E3") for label in labels)


def test_names_made_plain_alike_get_distinct_labels_too():
    labels = _axis([_pool("a<b", 1, 2, 4), _pool("a>b", 1, 2, 4), _pool("a_b~2", 1, 2, 4)])
    assert len(set(labels)) == 3, labels
