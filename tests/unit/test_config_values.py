"""Values quoted in error messages: escaped, cut short, and named by what YAML read."""

from __future__ import annotations

import datetime as dt

from reconciler.config.values import MAX_SHOWN, described, shown, type_message


def test_control_and_bidi_characters_are_escaped_so_no_line_can_be_forged():
    text = shown("ok\nerror: forged\u202e\x00")
    assert "\n" not in text and "\u202e" not in text and "\x00" not in text
    assert text == '"ok\\nerror: forged\\u202e\\u0000"'


def test_long_values_are_cut_to_a_sane_length():
    text = shown("x" * 5000)
    assert len(text) <= MAX_SHOWN + 2 and text.endswith('…"')


def test_values_are_spelled_as_yaml_spells_them():
    assert [shown(v) for v in (None, True, 42, 2.5, dt.date(2027, 1, 2))] == [
        "null", "true", "42", "2.5", "2027-01-02"]
    assert described(42) == "42 (a number)"
    assert described("yes") == '"yes" (a string)'


def test_type_errors_show_the_value_and_the_expected_form():
    message = type_message("protected", "bool_parsing", "Input should be a valid boolean",
                           "sometimes")
    assert message == 'protected: "sometimes" is not a boolean (use true or false)'
    assert type_message("quantity", "greater_than_equal",
                        "Input should be greater than or equal to 0", -1) == (
        "quantity: Input should be greater than or equal to 0 (got -1)")
