"""Syntax errors name the cause, whichever YAML parser PyYAML has (libyaml or pure Python)."""

from __future__ import annotations

import pytest
import yaml

from reconciler.config.yamlerrors import explain

PARSERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])

CASES = [
    ("a:\n  b: 1\n\tc: 2\n", 3, 1, "a tab character cannot indent YAML (use spaces)"),
    ("a:\n  b:\n    \tc: 2\n", 3, 5, "a tab character cannot indent YAML (use spaces)"),
    ('a: "open\nb: 2\n', 1, 4, 'unclosed quote: the " that starts here is never closed'),
    ("a: [x, y\nb: 2\n", 1, 4, "unclosed [ ... ]"),
    ("a:\n  b: 1\n c: 2\n", 3, 2, "bad indentation or a missing ':'"),
    ("a:\n  b: 1\n   c: 2\n", 3, 5, "a ':' where no key can start"),
    ("a:\n  - x\n  b: 2\n", 3, 3, "bad indentation: expected a '- ' item"),
    ("a: b: c\n", 1, 5, "a ':' where no key can start"),
]


@pytest.mark.parametrize("loader", PARSERS, ids=lambda loader: loader.__name__)
@pytest.mark.parametrize(("text", "line", "column", "cause"), CASES)
def test_syntax_error_names_line_column_and_cause(loader, text, line, column, cause):
    with pytest.raises(yaml.MarkedYAMLError) as raised:
        list(yaml.parse(text, Loader=loader))
    found = explain(raised.value, text)
    assert (found.line, found.column) == (line, column)
    assert cause in found.cause
    assert found.message.startswith(f"YAML syntax error at column {column}: ")
