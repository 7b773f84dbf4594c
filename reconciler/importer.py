"""Current vendor state → desired-state YAML, so a team can adopt reconciler without
typing its estate by hand. Planning the imported file shows no changes.

Each imported subject lists *all* its live licenses (a named subject's list is
complete), so `--pool` chooses which subjects to import, never half a subject.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic.fields import FieldInfo

from reconciler.envnames import (
    BASE_URL_SETTING,
    conventional_variable,
    is_env_setting,
    is_url_setting,
)
from reconciler.model import CurrentState, Grant, SubjectDecl

MODELINE = "# yaml-language-server: $schema=reconciler.schema.json\n"


def conventional_connection(
    provider: str, fields: Mapping[str, FieldInfo], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Variable names by convention (`<PROVIDER>_<SETTING>`) for the `*_env` settings.

    Required settings are always named. An optional one (Commvault's `token_env` or
    `username_env`) is named only when its variable is set in `environ`, because a named
    variable must then be set for every plan; `environ=None` names them all (the
    sandbox fills every variable).
    """
    connection: dict[str, Any] = {}
    for name, field in fields.items():
        if not is_env_setting(name) or is_url_setting(name):
            continue
        variable = conventional_variable(provider, name)
        if field.is_required() or environ is None or variable in environ:
            connection[name] = variable
    connection[BASE_URL_SETTING] = conventional_variable(provider, BASE_URL_SETTING)
    return connection


def kept_connection(
    fields: Mapping[str, FieldInfo], connection: Mapping[str, Any]
) -> dict[str, Any]:
    """The settings worth writing: required ones, and those that differ from the default."""

    def differs(key: str, value: Any) -> bool:
        field = fields.get(key)
        return field is None or field.is_required() or (
            value != field.get_default(call_default_factory=True))

    return {k: v for k, v in connection.items() if v is not None and differs(k, v)}


def emptiness(provider: str, current: CurrentState, pool: str | None, scoped: bool) -> str | None:
    """Why an import came out empty, when it did: an empty file must not look like success."""
    if pool is not None and all(p.id != pool for p in current.pools):
        known = ", ".join(sorted(p.id for p in current.pools)) or "none"
        return f"warning: '{provider}' has no pool '{pool}' (pools read: {known})"
    if current.grants:
        return None
    hint = "" if scoped else (
        "; providers whose API is scoped (UiPath organizations, ADManager domains) read "
        "only what a desired-state file names: pass --from FILE")
    return f"warning: no live licenses found for '{provider}'{hint}"


def to_document(
    provider: str,
    connection: Mapping[str, Any],
    current: CurrentState,
    declared: Sequence[SubjectDecl] = (),
    pool: str | None = None,
) -> str:
    """The YAML text of a desired state equal to `current` (restricted to `pool`)."""
    by_subject: dict[tuple[str, str], list[Grant]] = defaultdict(list)
    for grant in current.grants:
        by_subject[(grant.subject.kind, grant.subject.id)].append(grant)
    chosen = {key for key, grants in by_subject.items()
              if pool is None or any(g.pool == pool for g in grants)}
    protected = {(d.subject.kind, d.subject.id) for d in declared if d.protected}
    subjects = []
    for kind, subject_id in sorted(chosen):
        grants = sorted(by_subject[(kind, subject_id)], key=lambda g: g.license)
        common = _common_attrs(grants)
        entry: dict[str, Any] = {kind: subject_id}
        if (kind, subject_id) in protected:
            entry["protected"] = True
        if common:
            entry["attrs"] = common
        entry["licenses"] = [_license(grant, common) for grant in grants]
        subjects.append(entry)
    document = {"providers": {provider: {"connection": dict(connection), "subjects": subjects}}}
    header = (f"{MODELINE}# Imported from the live state of '{provider}'"
              f"{f' (pool {pool})' if pool else ''}: every subject listed holds exactly "
              "these licenses now.\n")
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _common_attrs(grants: Sequence[Grant]) -> dict[str, Any]:
    first = dict(grants[0].attrs)
    return {k: v for k, v in first.items() if all(g.attrs.get(k) == v for g in grants)}


def _license(grant: Grant, common: Mapping[str, Any]) -> Any:
    extra = {k: v for k, v in grant.attrs.items() if k not in common}
    if grant.quantity is None and grant.expires is None and not extra:
        return grant.license
    spec: dict[str, Any] = {"id": grant.license}
    if grant.quantity is not None:
        spec["quantity"] = grant.quantity
    if grant.expires is not None:
        spec["expires"] = grant.expires
    if extra:
        spec["attrs"] = extra
    return spec
