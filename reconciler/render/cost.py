"""Money a plan moves, per currency and period: never a sum of dollars and euros.

A pool's price comes from the YAML (`unit_price`, with `currency` and `period` of
its own or its provider's). Amounts are summed only within one currency and period;
a plan that touches pools priced in two currencies shows two amounts. With no
currency the number stands alone (no symbol is guessed), and "/month" appears only
when the YAML says what the price pays for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from reconciler.model import PoolSummary

Unit = tuple[str, str]
"""(currency, period), each "" when the YAML names none."""


def money(amount: float, currency: str | None, period: str | None) -> str:
    """`-78.00 USD/month`, `-78.00 USD`, `-78.00/month` or `-78.00`."""
    text = f"{amount:+.2f}"
    if currency:
        text += f" {currency}"
    if period:
        text += f"/{period}"
    return text


def cost_by_unit(pools: Iterable[PoolSummary]) -> dict[Unit, float]:
    """Seat delta times price, summed per (currency, period); unpriced pools left out."""
    totals: dict[Unit, float] = defaultdict(float)
    for pool in pools:
        if pool.unit_price is not None:
            totals[(pool.currency or "", pool.period or "")] += pool.seat_delta * pool.unit_price
    return dict(totals)


def cost_text(pools: Iterable[PoolSummary], *, skip_zero: bool = False) -> str:
    """Every unit's amount, `, `-separated, in a stable order; "" when nothing is priced.

    `skip_zero` leaves out units whose amount is 0.00 (a swap within a pool), as the
    headline does; tables keep them, so a priced pool never looks unpriced there.
    """
    return ", ".join(money(amount, currency, period)
                     for (currency, period), amount in sorted(cost_by_unit(pools).items())
                     if not (skip_zero and round(amount, 2) == 0))
