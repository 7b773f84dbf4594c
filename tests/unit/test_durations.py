"""Durations as Go writes them, refused with an example when they are not one."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.durations import parse_duration
from reconciler.journal.entries import parse_when


@pytest.mark.parametrize(("text", "seconds"), [
    ("1h30m", 5400.0), ("90s", 90.0), ("5m", 300.0), ("0", 0.0), ("0s", 0.0),
    ("180d", 180 * 86400.0), ("1.5h", 5400.0), ("60", 60.0), (" 2m ", 120.0),
])
def test_go_style_durations_and_bare_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["inf", "nan", "-5m", "-1", "garbage", "", "1e3s", "5 minutes",
                                  "99999999999999999999999h"])
def test_not_a_duration_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="1h30m, 90s"):
        parse_duration(text)


@pytest.mark.parametrize("flag", [["plan", "x.yaml", "--lock-timeout"],
                                  ["apply", "x.yaml", "--wait"]])
@pytest.mark.parametrize("value", ["inf", "nan", "-5m", "soon"])
def test_flag_refuses_a_bad_duration_naming_itself(flag: list[str], value: str) -> None:
    result = CliRunner().invoke(main, [*flag, value])
    assert result.exit_code == 1, "1 as any error; 2 would read as changes or drift"
    assert f"Invalid value for '{flag[-1]}'" in result.output
    assert "1h30m" in result.output
    assert "Traceback" not in result.output


def test_journal_ages_take_go_durations_and_days() -> None:
    now = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
    assert parse_when("180d", now=now) == "2026-06-07T12:00:00.000+00:00"
    assert parse_when("1h30m", now=now) == "2026-12-04T10:30:00.000+00:00"
    with pytest.raises(ValueError, match="as a date or time"):
        parse_when("-5d", now=now)
