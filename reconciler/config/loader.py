"""Loads desired-state files into one `DesiredState`, or a list of `file:line` problems.

Everything a file can get wrong is found here, before any vendor is contacted:
YAML syntax, unknown keys (with a "did you mean"), wrong types, unknown
providers, bad connection settings, duplicate subjects or licenses, and
conflicting settings across files. All problems are collected, not just the first.
"""

from __future__ import annotations

import difflib
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.config.document import (
    SUBJECT_FIELDS,
    Document,
    LicenseSpec,
    ProviderBlock,
    SubjectEntry,
)
from reconciler.config.prevalidated import prevalidated
from reconciler.config.values import described, type_message
from reconciler.config.yamlsource import DataPath, SourceDocument, read_documents
from reconciler.errors import ConfigError, Problem
from reconciler.model import (
    DesiredState,
    Grant,
    Limits,
    Location,
    PoolDecl,
    ProviderDesired,
    Subject,
    SubjectDecl,
)

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ProviderSpec:
    """What the loader needs to know about a provider, handed in as data."""

    connection_model: type[BaseModel]
    subject_kinds: frozenset[str]
    pool_of: Callable[[Subject, str, Mapping[str, Any]], str]
    normalize_attrs: Callable[[Mapping[str, Any]], dict[str, Any]] = dict
    subject_id_problem: Callable[[str, str], str | None] = lambda kind, subject_id: None
    license_id_problem: Callable[[str], str | None] = lambda license: None


_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def id_problem(what: str, value: str) -> str | None:
    """Why an id cannot be used at all, whatever the vendor: None when it can.

    A control or format character (newline, NUL, a bidi override) in an id could
    start a forged line in a CI log or be cut by a vendor's URL parser. Blanks are
    allowed: vendors hold such ids, and an id that cannot be declared cannot be kept.
    """
    if not value:
        return f"the {what} is empty"
    if value.isprintable():
        # No character of any category below is printable: one C-level scan for the
        # common case (a 100k-grant load checks 200k ids).
        return None
    for char in value:
        if unicodedata.category(char) in _UNPRINTABLE_CATEGORIES:
            return f"{what} {value!r} contains the control character U+{ord(char):04X}"
    return None


def discover(paths: Iterable[str]) -> tuple[list[Path], list[Problem]]:
    """Expands directories into their YAML files, sorted for determinism."""
    found: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            if not files:
                problems.append(Problem(Location(file=raw, line=1), "no *.yaml or *.yml files"))
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Problem(Location(file=raw, line=1), "no such file or directory"))
    unique = list(dict.fromkeys(found))
    return unique, problems


def load(paths: Iterable[str], providers: Mapping[str, ProviderSpec]) -> DesiredState:
    """Reads, validates and merges every file; raises ConfigError with all problems."""
    files, problems = discover(paths)
    builders: dict[str, _ProviderBuilder] = {}
    for file in files:
        # One file at a time: its parsed data, line map and document model are merged
        # and dropped before the next is read, so a large estate split over many files
        # never holds more than one file's intermediate forms at once.
        sources, read_problems = read_documents(file, display=str(file))
        problems.extend(read_problems)
        while sources:
            source = sources.pop(0)
            document = _validate(source, problems)
            if document is not None:
                _merge_into(builders, source, document, providers, problems)
            del source, document
    merged = {name: builder.finish(problems) for name, builder in sorted(builders.items())}
    if problems:
        raise ConfigError(_sorted_unique(problems))
    return DesiredState(providers=merged, paths=tuple(str(f) for f in files))


# ---- validation of one document ---------------------------------------------------------
def _validate(source: SourceDocument, problems: list[Problem]) -> Document | None:
    if source.data is None:
        return None
    if not isinstance(source.data, dict):
        problems.append(Problem(source.location(()), "a desired-state document must be a mapping"))
        return None
    try:
        return Document.model_validate(source.data)
    except ValidationError as error:
        problems.extend(_problems_from(error, source, Document))
        return None


def _problems_from(
    error: ValidationError, source: SourceDocument, model: type[BaseModel], prefix: DataPath = ()
) -> list[Problem]:
    found: list[Problem] = []
    for detail in error.errors():
        path = _data_path(source.data, prefix, detail["loc"])
        branch = next((p for p in detail["loc"] if p in _UNION_BRANCHES), None)
        if branch is not None:
            # `str | LicenseSpec`: report the branch that matches the input's shape, once.
            cut = detail["loc"].index(branch)
            container = _data_path(source.data, prefix, detail["loc"][:cut])
            given = _value_at(source.data, container)
            shape_matches = isinstance(given, dict) if branch == "LicenseSpec" else isinstance(
                given, str
            )
            if not shape_matches:
                if not isinstance(given, str | dict) and branch == "LicenseSpec":
                    found.append(Problem(source.location(container), "a license is an id or "
                                         "a mapping with id, quantity, expires, attrs; "
                                         f"got {described(given)}"))
                continue
        location = source.location(path)
        where = ".".join(str(p) for p in path[len(prefix) :]) or "document"
        if detail["type"] == "extra_forbidden":
            key = str(path[-1]) if path else "?"
            hint = _did_you_mean(key, _allowed_keys(model, source.data, path))
            found.append(Problem(location, f"unknown key '{key}'{hint}"))
            continue
        message = detail["msg"].removeprefix("Value error, ")
        found.append(Problem(location, type_message(where, detail["type"], message,
                                                    detail.get("input"))))
    return found


_UNION_BRANCHES = frozenset({"str", "constrained-str", "LicenseSpec", "function-after"})


def _data_path(data: Any, prefix: DataPath, loc: tuple[Any, ...]) -> DataPath:
    """Maps a pydantic error location onto the data, dropping union-branch tags."""
    path: list[str | int] = list(prefix)
    node = _value_at(data, tuple(prefix))
    for part in loc:
        if isinstance(node, dict) and str(part) in node:
            path.append(str(part))
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and part not in _UNION_BRANCHES:
            path.append(str(part))
            node = None
    return tuple(path)


def _value_at(data: Any, path: DataPath) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


_NESTED: dict[str, type[BaseModel]] = {
    "providers": ProviderBlock,
    "subjects": SubjectEntry,
    "licenses": LicenseSpec,
}


def _allowed_keys(model: type[BaseModel], data: Any, path: DataPath) -> list[str]:
    """The keys allowed where an unknown key was found, for the "did you mean" hint."""
    owner: type[BaseModel] = model
    for index, part in enumerate(path[:-1]):
        if isinstance(part, str) and part in _NESTED:
            owner = _NESTED[part]
        elif part == "limits":
            from reconciler.config.document import LimitsSpec

            owner = LimitsSpec
        elif part == "pools" and index + 1 < len(path) - 1:
            from reconciler.config.document import PoolSettings

            owner = PoolSettings
    return list(owner.model_fields)


def _did_you_mean(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""


# ---- merging documents into one desired state ---------------------------------------------
def _merge_into(
    builders: dict[str, _ProviderBuilder],
    source: SourceDocument,
    document: Document,
    providers: Mapping[str, ProviderSpec],
    problems: list[Problem],
) -> None:
    """Adds one document's provider blocks to the builders (conflicts across files are
    caught there, since a builder keeps every declaration's location)."""
    for name, block in document.providers.items():
        where = source.location(("providers", name))
        spec = providers.get(name)
        if spec is None:
            hint = _did_you_mean(name, sorted(providers))
            problems.append(Problem(where, f"unknown provider '{name}'{hint}"))
            continue
        builder = builders.setdefault(name, _ProviderBuilder(name, spec))
        builder.add(source, block, problems)


class _ProviderBuilder:
    """Accumulates one provider's declarations across files, catching conflicts."""

    def __init__(self, name: str, spec: ProviderSpec) -> None:
        self.name = name
        self.spec = spec
        self.connection: dict[str, Any] | None = None
        self.connection_at: Location | None = None
        self.connection_invalid = False
        self.limits: Limits = Limits()
        self.limits_at: Location | None = None
        self.pricing: dict[str, tuple[str, Location]] = {}
        """Provider-wide `currency` and `period`, with where each was set."""
        self.pools: dict[str, PoolDecl] = {}
        self.subjects: dict[tuple[str, str], SubjectDecl] = {}
        self.grants: dict[tuple[str, ...], Grant] = {}

    def add(self, source: SourceDocument, block: ProviderBlock, problems: list[Problem]) -> None:
        base: DataPath = ("providers", self.name)
        if block.connection is not None:
            self._add_connection(source, block.connection, base, problems)
        if block.limits is not None:
            at = source.location((*base, "limits"))
            if self.limits_at is not None:
                problems.append(
                    Problem(at, f"limits for '{self.name}' already set at {self.limits_at}")
                )
            else:
                self.limits_at = at
                given = block.limits.model_dump(exclude_none=True)
                self.limits = self.limits.model_copy(update=given)
        for key in ("currency", "period"):
            self._add_pricing(source, key, getattr(block, key), base, problems)
        for pool_id, settings in block.pools.items():
            at = source.location((*base, "pools", pool_id))
            previous = self.pools.get(pool_id)
            if previous is not None:
                problems.append(
                    Problem(
                        at,
                        f"pool '{pool_id}' of '{self.name}' is already "
                        f"configured at {previous.source}",
                    )
                )
                continue
            self.pools[pool_id] = PoolDecl(
                id=pool_id, prune=settings.prune, unit_price=settings.unit_price,
                currency=settings.currency, period=settings.period, source=at
            )
        for index, entry in enumerate(block.subjects):
            self._add_subject(source, entry, (*base, "subjects", index), problems)

    def _add_pricing(self, source: SourceDocument, key: str, value: str | None,
                     base: DataPath, problems: list[Problem]) -> None:
        """A provider's default `currency` or `period`: one value, wherever it is set."""
        if value is None:
            return
        at = source.location((*base, key))
        previous = self.pricing.get(key)
        if previous is not None and previous[0] != value:
            problems.append(Problem(at, f"{key} of '{self.name}' is already set to "
                                        f"{previous[0]!r} at {previous[1]}"))
            return
        self.pricing.setdefault(key, (value, at))

    def _add_connection(
        self,
        source: SourceDocument,
        connection: dict[str, Any],
        base: DataPath,
        problems: list[Problem],
    ) -> None:
        at = source.location((*base, "connection"))
        if self.connection is not None:
            problems.append(
                Problem(at, f"connection for '{self.name}' is already set at {self.connection_at}")
            )
            return
        try:
            model = self.spec.connection_model.model_validate(connection)
        except ValidationError as error:
            self.connection_invalid = True
            problems.extend(_connection_problems(error, source, (*base, "connection"), self.spec))
            return
        self.connection = model.model_dump(mode="json", exclude_unset=False)
        self.connection_at = at

    def _subject_kind(
        self, source: SourceDocument, entry: SubjectEntry, path: DataPath,
        problems: list[Problem],
    ) -> tuple[str, str] | None:
        """The entry's one kind key and id, checked against what this provider manages.

        The document model accepts any key besides the fixed ones: which keys are
        kinds is the provider's to say (`Provider.subject_kinds`).
        """
        kinds = entry.kinds
        managed = self.spec.subject_kinds
        allowed = ", ".join(sorted(managed))
        reported = False
        for key in sorted(kinds):
            if key in managed:
                continue
            close = difflib.get_close_matches(key, [*managed, *SUBJECT_FIELDS], n=1)
            if close:
                message = f"unknown key '{key}' (did you mean '{close[0]}'?)"
            elif len(kinds) == 1:
                message = f"'{self.name}' has no subjects of kind '{key}' (it manages: {allowed})"
            else:
                continue  # a second kind: "exactly one of" below says it better
            problems.append(Problem(source.location((*path, key)), message))
            reported = True
        if reported:
            return None
        if len(kinds) != 1:
            got = f" (got {', '.join(sorted(kinds))})" if kinds else ""
            problems.append(Problem(source.location(path),
                                    f"a subject needs exactly one of {allowed}{got}"))
            return None
        kind, value = next(iter(kinds.items()))
        if not isinstance(value, str):
            problems.append(Problem(source.location((*path, kind)),
                                    type_message(kind, "string_type", "", value)))
            return None
        return kind, value

    def _add_subject(
        self, source: SourceDocument, entry: SubjectEntry, path: DataPath, problems: list[Problem]
    ) -> None:
        at = source.location(path)
        named = self._subject_kind(source, entry, path, problems)
        if named is None:
            return
        kind, subject_id = named
        kind = sys.intern(kind)  # one string per kind, not one per subject
        kind_at = source.location((*path, kind))
        why = id_problem(f"{kind} id", subject_id) or self.spec.subject_id_problem(
            kind, subject_id
        )
        if why is not None:
            problems.append(Problem(kind_at, why))
            return
        subject = prevalidated(Subject, kind=kind, id=subject_id)
        previous = self.subjects.get((subject.kind, subject.id))
        if previous is not None:
            problems.append(
                Problem(
                    at,
                    f"{subject} is declared twice for '{self.name}' (first at {previous.source})",
                )
            )
            return
        self.subjects[(subject.kind, subject.id)] = prevalidated(
            SubjectDecl, subject=subject, protected=entry.protected, attrs=entry.attrs,
            source=at,
        )
        for index, license in enumerate(entry.licenses):
            # A bare string (`- E3`) has no details; no LicenseSpec is built for it
            # (one per string was a fifth of the merge at 10k subjects).
            if isinstance(license, str):
                license_id, quantity, expires, own_attrs = license, None, None, {}
            else:
                license_id, quantity, expires, own_attrs = (
                    license.id, license.quantity, license.expires, license.attrs)
            license_at = source.location((*path, "licenses", index))
            why = id_problem("license", license_id) or self.spec.license_id_problem(license_id)
            if why is not None:
                problems.append(Problem(license_at, f"{subject}: {why}"))
                continue
            attrs = {**entry.attrs, **own_attrs}
            try:
                pool = self.spec.pool_of(subject, license_id, attrs)
                attrs = self.spec.normalize_attrs(attrs)
            except (KeyError, ValueError) as error:
                problems.append(Problem(license_at, f"{subject}: {error}"))
                continue
            grant = prevalidated(
                Grant,
                provider=self.name,
                pool=sys.intern(pool),
                subject=subject,
                license=sys.intern(license_id),
                quantity=quantity,
                expires=expires,
                attrs=attrs,
                source=license_at,
            )
            if grant.key in self.grants:
                problems.append(
                    Problem(
                        license_at,
                        f"{subject} lists '{license_id}' twice "
                        f"(first at {self.grants[grant.key].source})",
                    )
                )
                continue
            self.grants[grant.key] = grant

    def _priced(self, pool: PoolDecl) -> PoolDecl:
        """The pool with its provider's currency and period where it names none."""
        currency = pool.currency or self.pricing.get("currency", (None,))[0]
        period = pool.period or self.pricing.get("period", (None,))[0]
        return pool.model_copy(update={"currency": currency, "period": period})

    def finish(self, problems: list[Problem]) -> ProviderDesired:
        connection = self.connection
        if connection is None and self.connection_invalid:
            connection = {}
        elif connection is None:
            try:
                connection = self.spec.connection_model.model_validate({}).model_dump(mode="json")
            except ValidationError as error:
                first = next(iter(self.subjects.values()), None)
                missing = ", ".join(str(d["loc"][0]) for d in error.errors())
                problems.append(
                    Problem(
                        first.source if first else None,
                        f"provider '{self.name}' has no connection block (needs: {missing})",
                    )
                )
                connection = {}
        return ProviderDesired(
            provider=self.name,
            connection=connection,
            grants=tuple(sorted(self.grants.values(), key=lambda g: g.key)),
            subjects=tuple(
                sorted(self.subjects.values(), key=lambda s: (s.subject.kind, s.subject.id))
            ),
            pools=tuple(sorted((self._priced(p) for p in self.pools.values()),
                               key=lambda p: p.id)),
            limits=self.limits,
            source=self.connection_at,
        )


def _connection_problems(
    error: ValidationError, source: SourceDocument, base: DataPath, spec: ProviderSpec
) -> list[Problem]:
    found: list[Problem] = []
    for detail in error.errors():
        path = (*base, *(str(p) for p in detail["loc"]))
        location = source.location(path)
        key = str(detail["loc"][-1]) if detail["loc"] else "connection"
        if detail["type"] == "extra_forbidden":
            hint = _did_you_mean(key, list(spec.connection_model.model_fields))
            found.append(Problem(location, f"unknown connection setting '{key}'{hint}"))
        elif detail["type"] == "missing":
            found.append(Problem(location, f"connection setting '{key}' is required"))
        else:
            found.append(Problem(location, type_message(f"connection.{key}", detail["type"],
                                                        detail["msg"], detail.get("input"))))
    return found


def _sorted_unique(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(
        unique,
        key=lambda p: (p.location.file if p.location else "", p.location.line if p.location else 0),
    )
