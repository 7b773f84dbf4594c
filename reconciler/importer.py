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

from reconciler.model import CurrentState, Grant, SubjectDecl

MODELINE = "# yaml-language-server: $schema=reconciler.schema.json\n"


def conventional_connection(provider: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Variable names by convention (`<PROVIDER>_<SETTING>`) for every `*_env` setting."""
    connection: dict[str, Any] = {}
    for name in fields:
        if name.endswith("_env") and not name.endswith("url_env"):
            connection[name] = f"{provider}_{name.removesuffix('_env')}".upper()
    connection["base_url_env"] = f"{provider}_BASE_URL".upper()
    return connection


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
