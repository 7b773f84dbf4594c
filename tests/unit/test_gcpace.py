"""Bulk stages raise the collector's thresholds and always put the old ones back."""

from __future__ import annotations

import gc

import pytest

from reconciler.gcpace import BULK_THRESHOLDS, bulk_allocation
from reconciler.pipeline import load_desired


def test_thresholds_are_raised_inside_and_restored_even_after_an_error():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), bulk_allocation():
        assert gc.get_threshold()[0] >= BULK_THRESHOLDS[0]
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


def test_loading_leaves_the_collector_as_it_was(tmp_path):
    before = gc.get_threshold()
    (tmp_path / "empty.yaml").write_text("providers: {}\n")
    load_desired([str(tmp_path)])
    assert gc.get_threshold() == before
