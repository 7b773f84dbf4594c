"""The loader builds locations, subjects, declarations and grants without pydantic's
per-instance validation (`reconciler.config.prevalidated`). These tests show that this
skips only work: every object it builds equals, hashes and prints as the validated
constructor's from the same values, and the loader hands it only values that
validate unchanged."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from reconciler.config.prevalidated import prevalidated
from reconciler.model import Grant, Location, Subject, SubjectDecl
from reconciler.pipeline import load_desired

EXAMPLE = Path(__file__).resolve().parents[2] / "reconciler" / "sandbox" / "example"

_SUBJECT = Subject(kind="user", id="ada@example.com")
_AT = Location(file="licenses/a.yaml", line=12)
CASES: list[tuple[type, dict[str, Any]]] = [
    (Location, {"file": "licenses/a.yaml", "line": 12}),
    (Subject, {"kind": "device", "id": "hw-001"}),
    (SubjectDecl, {"subject": _SUBJECT, "protected": True, "attrs": {"domain": "x"},
                   "source": _AT}),
    (Grant, {"provider": "uipath", "pool": "UNATT", "subject": _SUBJECT, "license": "UNATT",
             "quantity": 4, "expires": dt.date(2027, 1, 31), "attrs": {"organization": "acme"},
             "source": _AT}),
]


@pytest.mark.parametrize(("cls", "values"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_builds_what_the_validated_constructor_builds(cls: type, values: dict[str, Any]) -> None:
    built, validated = prevalidated(cls, **values), cls(**values)
    assert built == validated
    if cls in (Location, Subject):  # the others hold a dict: unhashable either way
        assert hash(built) == hash(validated)
    assert repr(built) == repr(validated)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.__setattr__(next(iter(values)), None)


@pytest.mark.parametrize(("cls", "values"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_a_missing_or_unknown_field_is_refused(cls: type, values: dict[str, Any]) -> None:
    first, *_ = values
    with pytest.raises(TypeError, match=first):
        prevalidated(cls, **{k: v for k, v in values.items() if k != first})
    with pytest.raises(TypeError, match="colour"):
        prevalidated(cls, **values, colour="blue")


def _revalidated(built: Any) -> Any:
    """The same object through its validated constructor, nested ones first."""
    values = {f.name: getattr(built, f.name) for f in dataclasses.fields(built)}
    for name, value in values.items():
        if dataclasses.is_dataclass(value):
            values[name] = _revalidated(value)
    return type(built)(**values)


def test_the_loader_hands_over_only_values_that_validate_unchanged(tmp_path: Path) -> None:
    """Bare licenses, licenses with quantity, expiry and attrs, protected subjects
    and subject attrs: the example estate plus one file with every detail."""
    (tmp_path / "details.yaml").write_text(
        "providers:\n"
        "  uipath:\n"
        "    subjects:\n"
        "      - user: grace@example.com\n"
        "        protected: true\n"
        "        attrs: { organization: acme }\n"
        "        licenses:\n"
        "          - RPADEVPRONU\n"
        "          - { id: ATTUNU, expires: 2027-01-31 }\n",
        encoding="utf-8",
    )
    desired = load_desired([str(EXAMPLE), str(tmp_path)])
    grants = [g for p in desired.providers.values() for g in p.grants]
    subjects = [s for p in desired.providers.values() for s in p.subjects]
    assert any(g.expires for g in grants) and any(g.quantity for g in grants)
    assert any(s.protected for s in subjects) and any(g.attrs for g in grants)
    for built in [*grants, *subjects]:
        revalidated = _revalidated(built)
        assert revalidated == built
        assert repr(revalidated) == repr(built)
