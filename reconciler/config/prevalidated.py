"""Builds the model's slotted dataclasses from values the loader has already checked.

Loading makes five of them per subject (two locations, the subject, its declaration,
its grant). Pydantic validating each construction cost more than the rest of the
merge, and it re-checked what the document model and the provider had just checked:
ids are strings, quantities non-negative integers, dates dates, the kind one the
provider manages. Only the loader builds through here, and only from those checked
values; everything read back from a vendor or a plan file is still validated.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

Built = TypeVar("Built")

_FIELD_NAMES: dict[type, frozenset[str]] = {}


def prevalidated(cls: type[Built], **values: Any) -> Built:
    """`cls(**values)` without pydantic's validation. Every field is given (no
    defaults filled in); a missing or unknown one is a TypeError."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = _FIELD_NAMES[cls] = frozenset(field.name for field in fields)
    if len(values) != len(names) or not names.issuperset(values):
        missing, unknown = sorted(names - set(values)), sorted(set(values) - names)
        raise TypeError(f"{cls.__name__}: missing {missing}, unknown {unknown}")
    built = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(built, name, value)
    return built
