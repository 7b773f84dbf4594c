"""The headline and the money: what a reviewer reads first, in the YAML's own currency."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ConfigError
from reconciler.model import PoolSummary
from reconciler.pipeline import load_desired
from reconciler.render.cost import cost_text, money
from reconciler.render.headline import headline
from reconciler.render.markdown import render_markdown
from tests.unit.test_markdown import example_plan


def _priced(delta: int, price: float | None, currency: str | None = None,
            period: str | None = None, name: str = "p") -> PoolSummary:
    return PoolSummary(provider="crm", pool=name, capacity=None, used_before=10,
                       used_after=10 + delta, seat_delta=delta, unit_price=price,
                       currency=currency, period=period)


@pytest.mark.parametrize(("currency", "period", "text"), [
    ("USD", "month", "-78.00 USD/month"), ("EUR", None, "-78.00 EUR"),
    (None, "year", "-78.00/year"), (None, None, "-78.00"),
])
def test_money_says_currency_and_period_only_when_the_yaml_does(currency, period, text):
    assert money(-78.0, currency, period) == text


def test_amounts_are_summed_only_within_one_currency_and_period():
    pools = [_priced(-2, 30.0, "USD", "month", "a"), _priced(1, 10.0, "USD", "month", "b"),
             _priced(1, 100.0, "EUR", "month", "c"), _priced(-1, 5.0, "USD", "year", "d"),
             _priced(3, None, name="unpriced")]
    assert cost_text(pools) == "+100.00 EUR/month, -50.00 USD/month, -5.00 USD/year"


def test_headline_counts_grants_seats_money_and_held_back():
    plan = example_plan()
    assert headline(plan) == ("5 changes: 2 grants added, 2 removed, 1 changed; +2 seats; "
                              "-120.00, +9.50 USD/month; 1 held back")
    assert headline(plan, strong=lambda words: f"<{words}>").count("<2 removed>") == 1


def test_markdown_first_line_is_the_headline_with_removals_marked():
    first = render_markdown(example_plan()).splitlines()[0]
    assert first == ("**5 changes: 2 grants added, 🔴 2 removed, 1 changed; +2 seats; "
                     "-120.00, +9.50 USD/month; 1 held back**")


def test_in_sync_and_held_back_only_headlines():
    plan = example_plan().model_copy(update={"actions": ()})
    assert headline(plan) == "No new changes; 1 held back (not settled at the vendor yet)"
    assert headline(plan.model_copy(update={"pending": ()})) == (
        "No changes: licenses match the desired state")


PROVIDER = """\
providers:
  yext:
    connection: {{account_id: me, api_key_env: YEXT_API_KEY}}
{extra}    pools:
      knowledge-pro: {{unit_price: 29.0}}
      reviews-plus: {{unit_price: 49.0, currency: EUR, period: year}}
"""


def test_pools_take_their_providers_currency_and_period_unless_they_name_their_own(tmp_path):
    path = tmp_path / "yext.yaml"
    path.write_text(PROVIDER.format(extra="    currency: USD\n    period: month\n"))
    pools = {pool.id: pool for pool in load_desired([str(path)]).providers["yext"].pools}
    assert (pools["knowledge-pro"].currency, pools["knowledge-pro"].period) == ("USD", "month")
    assert (pools["reviews-plus"].currency, pools["reviews-plus"].period) == ("EUR", "year")


def test_a_provider_currency_set_twice_differently_is_refused_naming_both(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text(PROVIDER.format(extra="    currency: USD\n"))
    second = tmp_path / "b.yaml"
    second.write_text("providers:\n  yext:\n    currency: EUR\n")
    with pytest.raises(ConfigError) as caught:
        load_desired([str(first), str(second)])
    assert [str(p) for p in caught.value.problems] == [
        f"{second}:3: currency of 'yext' is already set to 'USD' at {first}:4"]


@pytest.mark.parametrize(("setting", "value"), [("currency", "usd"), ("currency", "DOLLAR"),
                                                ("period", "monthly")])
def test_a_bad_currency_or_period_is_refused_at_its_line(tmp_path: Path, setting, value):
    path = tmp_path / "yext.yaml"
    path.write_text(PROVIDER.format(extra=f"    {setting}: {value}\n"))
    with pytest.raises(ConfigError) as caught:
        load_desired([str(path)])
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{path}:4: providers.yext.{setting}")


def test_a_call_that_changes_no_grant_counts_as_an_other_call():
    plan = example_plan()
    bare = plan.actions[0].model_copy(update={"changes": (), "id": "crm:cleanup"})
    plan = plan.model_copy(update={"actions": (*plan.actions, bare)})
    assert headline(plan).startswith(
        "6 changes: 2 grants added, 2 removed, 1 changed, 1 other call; ")
