"""`itemjson` writes a grant's and a subject declaration's JSON by hand for the config
digest; saved plans carry that digest, so it must be pydantic's dump, encoded compactly,
to the byte. Compared here over hostile strings, dates, quantities and nested attrs."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from pydantic import TypeAdapter

from reconciler.itemjson import COMPACT, grant_json, subject_decl_json
from reconciler.model import Grant, Location, Subject, SubjectDecl

HOSTILE = ["", "a", "ada@example.com", 'quote"d', "back\\slash", "tab\tnew\nline", "\x00\x1f",
           "é, ü: ß", "日本語", "emoji 🎫", "\u2028\u2029", "</script>", "a, b", "x: y",
           "-0", "null", "true", "1e3", " lead", "trail ", "\ud800"]
ATTRS: list[dict[str, Any]] = [
    {}, {"domain": "x"}, {"disabled_plans": ["TEAMS1", "YAMMER"]}, {"n": 3, "f": -0.0},
    {"f": 1.5e300, "big": 2**70}, {"when": dt.date(2027, 1, 31)}, {"t": (1, "a")},
    {"nested": {"b": [None, True, False, {"c": "é"}]}}, {"nan": float("nan")},
    {"inf": float("inf")}, {"z": 1, "a": 2, "é": 3},
]
_GRANT = TypeAdapter(Grant)
_DECL = TypeAdapter(SubjectDecl)
_AT = Location(file="a.yaml", line=1)


def _pydantic(adapter: TypeAdapter[Any], item: Any) -> str:
    return COMPACT(adapter.dump_python(item, mode="json", exclude={"source"}))


def _grants(count: int) -> list[Grant]:
    rng = random.Random(23)
    return [Grant(provider=rng.choice(HOSTILE[1:]), pool=rng.choice(HOSTILE),
                  subject=Subject(kind=rng.choice(["user", "device", "client_2"]),
                                  id=rng.choice(HOSTILE)),
                  license=rng.choice(HOSTILE), quantity=rng.choice([None, 0, 1, 10**12]),
                  expires=rng.choice([None, dt.date(1999, 12, 31), dt.date(2027, 2, 1)]),
                  attrs=rng.choice(ATTRS), source=_AT) for _ in range(count)]


@pytest.mark.parametrize("grant", _grants(400))
def test_a_grant_is_written_as_pydantic_dumps_it(grant: Grant) -> None:
    assert grant_json(grant) == _pydantic(_GRANT, grant)


@pytest.mark.parametrize("attrs", ATTRS)
@pytest.mark.parametrize("protected", [False, True])
@pytest.mark.parametrize("subject_id", HOSTILE)
def test_a_subject_declaration_is_written_as_pydantic_dumps_it(
        attrs: dict[str, Any], protected: bool, subject_id: str) -> None:
    declared = SubjectDecl(subject=Subject(kind="entity", id=subject_id), protected=protected,
                           attrs=attrs, source=_AT)
    assert subject_decl_json(declared) == _pydantic(_DECL, declared)
