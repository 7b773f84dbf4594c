"""How a value from the YAML is quoted in an error message.

"Input should be a valid boolean" does not say which value was wrong when a
file holds hundreds; the message shows it. Desired-state YAML holds no secrets
(only the names of environment variables), but a value can be long or hold
control characters that would forge lines in a CI log, so it is cut to a sane
length and every unprintable character is escaped.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

MAX_SHOWN = 60
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escaped(text: str) -> str:
    out: list[str] = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif unicodedata.category(char) in _UNPRINTABLE:
            encoded = json.dumps(char)[1:-1]  # \n, \t, \u0000 ...
            out.append(encoded if encoded != char else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def shown(value: Any) -> str:
    """`value` as YAML would spell it, escaped and at most about MAX_SHOWN characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _cut(repr(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return f'"{_cut(_escaped(value))}"'
    if isinstance(value, dict):
        return "a mapping" if value else "{}"
    if isinstance(value, list):
        return "a list" if value else "[]"
    return _cut(_escaped(type(value).__name__))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def kind_of(value: Any) -> str:
    """What YAML made of a value, in the words of the YAML format."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a value"


def described(value: Any) -> str:
    """`42 (a number)`, `"yes" (a string)`: the value and what YAML read it as."""
    text, kind = shown(value), kind_of(value)
    return text if text in ("null", "a mapping", "a list") else f"{text} ({kind})"


_EXPECTED: dict[str, str] = {
    "bool_type": "is not a boolean (use true or false)",
    "bool_parsing": "is not a boolean (use true or false)",
    "int_type": "is not a whole number",
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_type": "is not a number",
    "float_parsing": "is not a number",
    "finite_number": "is not a finite number",
    "string_type": "is not a string (quote it)",
    "dict_type": "is not a mapping (use key: value lines)",
    "model_type": "is not a mapping (use key: value lines)",
    "list_type": "is not a list (use '- item' lines or [a, b])",
    "date_type": "is not a valid date (use YYYY-MM-DD)",
    "date_parsing": "is not a valid date (use YYYY-MM-DD)",
    "date_from_datetime_parsing": "is not a valid date (use YYYY-MM-DD)",
    "date_from_datetime_inexact": "is not a valid date (use YYYY-MM-DD)",
}


def type_message(where: str, error_type: str, message: str, value: Any) -> str:
    """`protected: "sometimes" is not a boolean (use true or false)` from a pydantic error.

    Type errors say the value and the expected form; constraint errors (a bound,
    a pattern) keep pydantic's wording, which names the bound, and add the value.
    """
    expected = _EXPECTED.get(error_type)
    if expected is not None:
        if error_type in ("string_type", "dict_type", "model_type", "list_type"):
            return f"{where}: {described(value)} {expected}"
        return f"{where}: {shown(value)} {expected}"
    if error_type in ("missing", "value_error", "assertion_error"):
        return f"{where}: {message}"
    return f"{where}: {message} (got {shown(value)})"
