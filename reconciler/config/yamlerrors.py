"""Turns a YAML parser error into the line a person must fix and the usual cause.

The parser says what it met ("found character that cannot start any token",
"did not find expected key"); a person needs what they did wrong (a tab used to
indent, a quote never closed, a key out of line). libyaml and PyYAML's pure
Python parser word the same errors differently, so causes are recognised from
the error's context and from the text at its position, not from one wording.

The shape stays `file:line: message` (the one tools and the test corpus parse);
the column goes into the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class SyntaxProblem:
    """Where a YAML syntax error is fixed (1-based) and what to do about it."""

    line: int
    column: int
    cause: str

    @property
    def message(self) -> str:
        return f"YAML syntax error at column {self.column}: {self.cause}"


def _position(mark: Any) -> tuple[int, int]:
    return int(mark.line) + 1, int(mark.column) + 1


def _char_at(text: str, mark: Any) -> str:
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    return line[mark.column] if mark.column < len(line) else ""


def explain(error: yaml.MarkedYAMLError, text: str) -> SyntaxProblem:
    """The line, column and cause a person should look at for `error` in `text`."""
    context = error.context or ""
    problem = error.problem or ""
    at, opened = error.problem_mark, error.context_mark
    if at is None:
        return SyntaxProblem(1, 1, problem or context or "invalid YAML")
    line, column = _position(at)
    if _char_at(text, at) == "\t":
        return SyntaxProblem(line, column, "a tab character cannot indent YAML (use spaces)")
    if "quoted scalar" in context and opened is not None:
        first, start = _position(opened)
        quote = _char_at(text, opened) or "quote"
        return SyntaxProblem(first, start, f"unclosed quote: the {quote} that starts here is "
                             f"never closed (the parser reached line {line} looking for it)")
    if "flow sequence" in context or "flow mapping" in context:
        first, start = _position(opened) if opened is not None else (line, column)
        bracket = "[ ... ]" if "sequence" in context else "{ ... }"
        return SyntaxProblem(first, start, f"unclosed {bracket}: a ',' or the closing bracket is "
                             f"missing before line {line} column {column}")
    if "mapping values are not allowed" in problem:
        return SyntaxProblem(line, column, "a ':' where no key can start: indent this line "
                             "under its key, add the ':' missing on the line above, or quote "
                             "a value that contains ': '")
    if "block mapping" in context:
        first = _position(opened)[0] if opened is not None else line
        return SyntaxProblem(line, column, "bad indentation or a missing ':': this line does not "
                             f"line up with the keys of the mapping that starts at line {first}")
    if "block collection" in context:
        first = _position(opened)[0] if opened is not None else line
        return SyntaxProblem(line, column, "bad indentation: expected a '- ' item of the list "
                             f"that starts at line {first}")
    if "simple key" in context and opened is not None:
        first, start = _position(opened)
        return SyntaxProblem(first, start, "a key without ':' (a key must be followed by ': ')")
    if context and opened is not None:
        first, start = _position(opened)
        return SyntaxProblem(first, start, f"{context}: {problem} (line {line} column {column})")
    return SyntaxProblem(line, column, problem or context or "invalid YAML")
