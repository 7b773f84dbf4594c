"""Fewer garbage-collector passes while a large desired state is loaded or planned.

CPython's collector runs a young-generation pass every 700 net allocations and,
every hundred of those, a full pass over every tracked object. Loading 100k grants
allocates millions of objects that all stay alive (grants, subjects, locations,
their dicts), so the full passes traverse an ever larger heap and find nothing:
~30 % of the load at 100k. Raising the young threshold while such a stage runs keeps
that work proportional; cycles are still collected, less often, and the previous
thresholds come back when the stage ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (100_000, 50, 100)


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """Within this block (or a function it decorates) the collector runs less often."""
    previous = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(previous, BULK_THRESHOLDS, strict=True)))
    try:
        yield
    finally:
        gc.set_threshold(*previous)
