"""Fault injection for the slow-consumer test, loaded by Python at start-up (``sitecustomize``)
only when this directory is on ``PYTHONPATH``: ``Enricher.enrich`` and ``enrich_many`` sleep
``NEWSFLOW_TEST_ENRICH_DELAY_S`` seconds per article first. The service code is not modified."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

_DELAY = float(os.environ.get("NEWSFLOW_TEST_ENRICH_DELAY_S", "0") or 0)

if _DELAY > 0:
    from services.enricher import pipeline

    _enrich = pipeline.Enricher.enrich
    _enrich_many = pipeline.Enricher.enrich_many
    # stderr, not logging: the worker's logging setup disables loggers made before it
    sys.stderr.write(f"throttled enricher: +{_DELAY}s per article\n")

    def _slow_enrich(self: Any, article: Any) -> Any:
        time.sleep(_DELAY)
        return _enrich(self, article)

    def _slow_enrich_many(self: Any, articles: Any) -> Any:
        time.sleep(_DELAY * len(articles))
        return _enrich_many(self, articles)

    pipeline.Enricher.enrich = _slow_enrich  # type: ignore[method-assign]
    pipeline.Enricher.enrich_many = _slow_enrich_many  # type: ignore[method-assign]
