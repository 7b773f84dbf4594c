"""Reads YAML into plain data plus the line every value came from.

We build Python values straight from the parser's events (libyaml's when
available), recording the line of each one, so that a validation error at
`providers.yext.subjects[3].licenses[0]` can be reported as `file:line`.
Working from events rather than a composed node tree keeps memory flat for large
estates (a node tree holds two position marks per value).

Hostile input is refused before it costs much: oversized files, non-UTF-8 bytes,
duplicate keys (YAML would silently let the last one win), deep nesting and
alias-expansion bombs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.config.prevalidated import prevalidated
from reconciler.config.values import shown
from reconciler.config.yamlerrors import explain
from reconciler.errors import Problem
from reconciler.model import Location

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_ALIAS_VALUES = 10_000
MAX_NODES = 5_000_000
MAX_DEPTH = 64

DataPath = tuple[str | int, ...]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML has it (several times faster), else pure Python."""

_CORE = "tag:yaml.org,2002:"
_STR_TAG = _CORE + "str"
_MERGE_TAG = _CORE + "merge"
_TIMESTAMP_TAG = _CORE + "timestamp"
_ALLOWED_TAGS = frozenset(_CORE + name for name in ("str", "int", "float", "bool", "null",
                                                    "seq", "map"))
"""Explicit tags a file may carry: the JSON-compatible core schema. Anything else
(`!!python/object/apply:...`, `!!binary`, `!!set`, a `!custom` tag) is refused at
load, so it can neither run code nor reach a vendor as a surprising value."""


_UNREADABLE: Any = object()
"""A scalar whose construction failed (reported once, with its line): left out of its
mapping or list, so validation does not report the same value a second time."""

_RESOLVED_FIRST_CHARS = frozenset(
    key for key in yaml.resolver.Resolver.yaml_implicit_resolvers if key is not None)
_PLAIN_STR_SHORTCUT = (
    None not in yaml.resolver.Resolver.yaml_implicit_resolvers
    and not yaml.resolver.Resolver.yaml_path_resolvers
    and yaml.resolver.Resolver.DEFAULT_SCALAR_TAG == _STR_TAG
)
"""PyYAML picks implicit resolvers by a scalar's first character: a quoted scalar, or a
plain one starting with a character no resolver claims (most ids and keys), is a
string. Checked once here so the shortcut can never disagree with the resolver."""


@dataclass
class SourceDocument:
    """One YAML document: its data and the line of every value in it."""

    file: str
    data: Any
    lines: dict[DataPath, int] = field(default_factory=dict)
    first_line: int = 1
    _locations: dict[int, Location] = field(default_factory=dict, repr=False, compare=False)

    def location(self, path: DataPath) -> Location:
        """The line of `path`, or of its nearest ancestor that has one."""
        line = self.lines.get(path)
        if line is None:
            probe = tuple(path)
            while probe and line is None:
                line = self.lines.get(probe)
                probe = probe[:-1]
            if line is None:
                line = self.lines.get((), self.first_line)
        return self._at(line)

    def _at(self, line: int) -> Location:
        """One (validated, immutable) Location per line: a subject's entry, its kind key
        and often its license share a line, and a large estate asks for each."""
        known = self._locations.get(line)
        if known is None:
            known = self._locations[line] = prevalidated(Location, file=self.file,
                                                         line=line)
        return known


_SCALAR = yaml.ScalarEvent


def _plain_string(event: yaml.ScalarEvent) -> bool:
    """Whether an untagged scalar resolves to a string: quoted, or plain with a first
    character no implicit resolver claims (see `_PLAIN_STR_SHORTCUT`)."""
    return _PLAIN_STR_SHORTCUT and (not event.implicit[0] or (
        bool(event.value) and event.value[0] not in _RESOLVED_FIRST_CHARS))


def _line(event: Any) -> int:
    """1-based line where a parser event starts."""
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else 1


class _TooLarge(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


def _size(value: Any) -> int:
    """How many values an alias to `value` expands to."""
    if isinstance(value, dict):
        return 1 + sum(_size(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_size(v) for v in value)
    return 1


class _DocumentBuilder:
    """Consumes one document's events; produces its data and line map."""

    def __init__(self, file: str, events: Iterator[yaml.Event]) -> None:
        self.file = file
        self.events = events
        self.lines: dict[DataPath, int] = {}
        self.problems: list[Problem] = []
        self.anchors: dict[str, Any] = {}
        self.alias_values = 0
        self.values = 0
        self._resolver: Any = yaml.resolver.Resolver()
        self._constructor = yaml.constructor.SafeConstructor()

    def value(self, event: yaml.Event, path: DataPath | None) -> Any:
        """Builds the value that starts with `event` (its end events consumed too).

        `path` None: a key or a discarded value, whose line is not recorded.
        """
        line = _line(event)
        if type(event) is _SCALAR and event.tag is None and event.anchor is None and (
                _plain_string(event)):
            # Most values: a plain or quoted string, untagged and unanchored. The same
            # bookkeeping as below, without its generic dispatch (a million events at
            # 100k grants).
            if path is not None:
                if len(path) > MAX_DEPTH:
                    raise _TooLarge(line, f"values nested more than {MAX_DEPTH} levels deep")
                self.lines[path] = line
            self.values += 1
            if self.values > MAX_NODES:
                raise _TooLarge(line, f"document has more than {MAX_NODES} values")
            return event.value
        if path is not None and len(path) > MAX_DEPTH:
            raise _TooLarge(line, f"values nested more than {MAX_DEPTH} levels deep")
        self.values += 1
        if self.values > MAX_NODES:
            raise _TooLarge(line, f"document has more than {MAX_NODES} values")
        if path is not None:
            self.lines[path] = line
        tag: str | None = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _ALLOWED_TAGS:
            shown_tag = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
            self._problem(line, f"the YAML tag {shown(shown_tag)} is not allowed (only plain "
                          "strings, numbers, booleans, null, lists and mappings)")
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event, line)
        if isinstance(event, yaml.ScalarEvent):
            built = self._scalar(event, line, path)
        elif isinstance(event, yaml.SequenceStartEvent):
            built = self._sequence(path)
        elif isinstance(event, yaml.MappingStartEvent):
            built = self._mapping(path)
        else:  # pragma: no cover - the parser guarantees a value here
            raise _TooLarge(line, f"unexpected YAML event {type(event).__name__}")
        anchor = getattr(event, "anchor", None)
        if anchor:
            self.anchors[anchor] = built
        return built

    def _alias(self, event: yaml.AliasEvent, line: int) -> Any:
        if event.anchor not in self.anchors:
            self._problem(line, f"alias '*{event.anchor}' refers to no anchor above it")
            return None
        target = self.anchors[event.anchor]
        self.alias_values += _size(target)
        if self.alias_values > MAX_ALIAS_VALUES:
            raise _TooLarge(
                line, f"aliases expand to more than {MAX_ALIAS_VALUES} values (alias bomb?)"
            )
        return target

    def _sequence(self, path: DataPath | None) -> list[Any]:
        items: list[Any] = []
        for event in self.events:
            if isinstance(event, yaml.SequenceEndEvent):
                return items
            item = self.value(event, None if path is None else (*path, len(items)))
            if item is not _UNREADABLE:
                items.append(item)
        return items

    def _mapping(self, path: DataPath | None) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        inherited: dict[Any, Any] = {}
        for event in self.events:
            if isinstance(event, yaml.MappingEndEvent):
                break
            key_line = _line(event)
            if isinstance(event, yaml.ScalarEvent) and self._tag(event) == _MERGE_TAG:
                self._merge(inherited, next(self.events), path)
                continue
            key = self.value(event, None)
            value_event = next(self.events)
            if isinstance(key, list | dict):
                self._problem(key_line, "mapping keys must be plain values")
                self.value(value_event, None)
                continue
            if key in result:
                self._problem(key_line, f"duplicate key '{key}' (declared again here)")
                self.value(value_event, None)
                continue
            child = None if path is None else (*path, str(key))
            value = self.value(value_event, child)
            if value is not _UNREADABLE:
                result[key] = value
            if child is not None:
                self.lines[child] = key_line
        for key, value in inherited.items():
            result.setdefault(key, value)
        return result

    def _merge(
        self, inherited: dict[Any, Any], event: yaml.Event, path: DataPath | None
    ) -> None:
        """`<<: *base` (or a list of them): keys not set explicitly come from there."""
        merged = self.value(event, path)
        sources = merged if isinstance(merged, list) else [merged]
        for source in sources:
            if not isinstance(source, dict):
                self._problem(_line(event), "'<<' merges only mappings")
                continue
            for key, value in source.items():
                inherited.setdefault(key, value)

    def _tag(self, event: yaml.ScalarEvent) -> str:
        if event.tag and event.tag != "!":
            return str(event.tag)
        if _plain_string(event):
            return _STR_TAG  # what the resolver would answer, without its regexes
        resolved = self._resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        return str(resolved)

    def _scalar(self, event: yaml.ScalarEvent, line: int, path: DataPath | None) -> Any:
        tag = self._tag(event)
        if tag == _STR_TAG:
            return event.value  # most scalars: skip the generic constructor
        if tag not in _ALLOWED_TAGS and tag != _TIMESTAMP_TAG:
            return event.value  # refused in `value`; never handed to a constructor
        start: Any = event.start_mark
        node = yaml.ScalarNode(tag, event.value, start, start, event.style)
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as error:
            self._problem(line, f"cannot read value: {error.problem}")
            return _UNREADABLE
        except (ValueError, OverflowError, KeyError, IndexError, TypeError) as error:
            # `2027-13-45` looks like a timestamp to YAML's resolver, whose constructor
            # then fails with a bare ValueError; `!!bool maybe` fails with a KeyError.
            where = f"{path[-1]}: " if path else ""
            what = "date" if tag == _TIMESTAMP_TAG else tag.removeprefix(_CORE)
            detail = f" ({error})" if tag == _TIMESTAMP_TAG else ""
            self._problem(line, f"{where}{shown(event.value)} is not a valid {what}{detail}")
            return _UNREADABLE
        if isinstance(value, dt.datetime):
            return value.date()
        return value

    def _problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(Location(file=self.file, line=line), message))


def _skip_document(events: Iterator[yaml.Event]) -> None:
    for event in events:
        if isinstance(event, yaml.DocumentEndEvent):
            return


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
        message = f"file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES}"
        return [], [Problem(Location(file=name, line=1), message)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[error.start]:02x})"
        return [], [Problem(Location(file=name, line=line), message)]
    documents: list[SourceDocument] = []
    problems: list[Problem] = []
    loader = _LOADER(text)
    # Events straight from the parser's `get_event` (None after the last one), not
    # through `yaml.parse`'s generator: a Python frame less per event.
    events: Iterator[yaml.Event] = iter(loader.get_event, None)
    try:
        for event in events:
            if not isinstance(event, yaml.DocumentStartEvent):
                continue
            first = next(events)
            if isinstance(first, yaml.DocumentEndEvent):
                continue
            builder = _DocumentBuilder(name, events)
            try:
                data = builder.value(first, ())
                if data is _UNREADABLE:
                    data = None
            except _TooLarge as error:
                problems.append(Problem(Location(file=name, line=error.line), str(error)))
                _skip_document(events)
                continue
            problems.extend(builder.problems)
            documents.append(
                SourceDocument(name, data, builder.lines, first_line=_line(first))
            )
    except yaml.MarkedYAMLError as error:
        found = explain(error, text)
        problems.append(Problem(Location(file=name, line=found.line), found.message))
    except yaml.YAMLError as error:
        problems.append(Problem(Location(file=name, line=1), f"YAML error: {error}"))
    finally:
        loader.dispose()
    return documents, problems
