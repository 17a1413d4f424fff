"""Workers tune the cyclic GC once started (shared.faust_app.tune_gc)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.faust_app import GC_OLDER_THRESHOLDS, GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_startup_objects_are_frozen_and_collections_are_rarer() -> None:
    gc.unfreeze()
    tune_gc()
    assert gc.get_freeze_count() > 1000  # modules and app objects leave every scan
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)
    assert GC_YOUNG_THRESHOLD > 100 * 700  # far above CPython's default
