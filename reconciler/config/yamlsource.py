"""Reads YAML into plain data plus the line every value came from.

PyYAML's composer gives nodes with positions; we build the Python values
ourselves so that a validation error at `providers.yext.subjects[3].licenses[0]`
can be reported as `file:line`. Hostile input is refused before it costs much:
oversized files, non-UTF-8 bytes, duplicate keys (which YAML would silently
let the last one win) and alias-expansion bombs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import Problem
from reconciler.model import Location

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_ALIAS_VALUES = 10_000
MAX_NODES = 5_000_000
MAX_DEPTH = 64

DataPath = tuple[str | int, ...]

_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's composer when PyYAML has it (several times faster), else pure Python."""


@dataclass
class SourceDocument:
    """One YAML document: its data and the line of every value in it."""

    file: str
    data: Any
    lines: dict[DataPath, int] = field(default_factory=dict)
    first_line: int = 1

    def location(self, path: DataPath) -> Location:
        """The line of `path`, or of its nearest ancestor that has one."""
        line = self.lines.get(path)
        if line is not None:
            return Location(file=self.file, line=line)
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return Location(file=self.file, line=self.lines[probe])
            probe = probe[:-1]
        return Location(file=self.file, line=self.lines.get((), self.first_line))


_STR_TAG = "tag:yaml.org,2002:str"


class _Builder:
    """Turns a composed node tree into Python data, recording lines, bounding size."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[DataPath, int] = {}
        self.problems: list[Problem] = []
        self.alias_values = 0
        self.nodes = 0
        self._seen_ids: set[int] = set()
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: DataPath) -> Any:
        if len(path) > MAX_DEPTH:
            raise _TooLarge(node, f"values nested more than {MAX_DEPTH} levels deep")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge(node, f"document has more than {MAX_NODES} values")
        if id(node) in self._seen_ids:
            self.alias_values += 1
            if self.alias_values > MAX_ALIAS_VALUES:
                raise _TooLarge(
                    node, f"aliases expand to more than {MAX_ALIAS_VALUES} values (alias bomb?)"
                )
        self._seen_ids.add(id(node))
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            inherited: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self._merge(inherited, value_node, path)
                    continue
                key = self._scalar(key_node)
                if isinstance(key, list | dict):
                    self._problem(key_node, "mapping keys must be plain values")
                    continue
                if key in result:
                    self._problem(key_node, f"duplicate key '{key}' (declared again here)")
                    continue
                result[key] = self.build(value_node, (*path, str(key)))
                self.lines[(*path, str(key))] = key_node.start_mark.line + 1
            for key, value in inherited.items():
                result.setdefault(key, value)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._scalar(node)

    def _merge(self, result: dict[Any, Any], node: yaml.Node, path: DataPath) -> None:
        """`<<: *base` (or a list of them): keys not set explicitly come from the alias."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            merged = self.build(source, path)
            if not isinstance(merged, dict):
                self._problem(source, "'<<' merges only mappings")
                continue
            for key, value in merged.items():
                result.setdefault(key, value)

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self.build(node, ())
        if node.tag == _STR_TAG:
            return node.value  # most scalars: skip the generic constructor
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as error:
            self._problem(node, f"cannot read value: {error.problem}")
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        return value

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(
            Problem(Location(file=self.file, line=node.start_mark.line + 1), message)
        )


class _TooLarge(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        self.node = node
        super().__init__(message)


def read_documents(
    path: Path, display: str | None = None
) -> tuple[list[SourceDocument], list[Problem]]:
    """All documents of one file, or the problems that stop it being read."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        return [], [Problem(Location(file=name, line=1), f"cannot read file: {error.strerror}")]
    if len(raw) > MAX_FILE_BYTES:
        return [], [
            Problem(
                Location(file=name, line=1),
                f"file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES}",
            )
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return [], [
            Problem(
                Location(file=name, line=line),
                f"file is not valid UTF-8 (byte 0x{raw[error.start]:02x})",
            )
        ]
    documents: list[SourceDocument] = []
    problems: list[Problem] = []
    try:
        for node in yaml.compose_all(text, Loader=_COMPOSER):
            if node is None:
                continue
            builder = _Builder(name)
            try:
                data = builder.build(node, ())
            except _TooLarge as error:
                line = error.node.start_mark.line + 1
                problems.append(Problem(Location(file=name, line=line), str(error)))
                continue
            problems.extend(builder.problems)
            documents.append(
                SourceDocument(name, data, builder.lines, first_line=node.start_mark.line + 1)
            )
    except yaml.MarkedYAMLError as error:
        # An unclosed bracket or quote is reported at the end of the file; the line
        # where the broken construct starts (the context) is where a person looks.
        mark = error.context_mark or error.problem_mark
        line = mark.line + 1 if mark is not None else 1
        reason = error.problem or error.context or "invalid YAML"
        if error.context and error.problem_mark is not None and error.context_mark is not None:
            reason = f"{error.context}: {reason} (line {error.problem_mark.line + 1})"
        problems.append(Problem(Location(file=name, line=line), f"YAML syntax error: {reason}"))
    except yaml.YAMLError as error:
        problems.append(Problem(Location(file=name, line=1), f"YAML error: {error}"))
    except RecursionError:
        problems.append(Problem(Location(file=name, line=1), "YAML nested too deeply to read"))
    return documents, problems
