"""The parser on public corpora of real pages (see parser_corpus.py); skipped when absent.

Floors are the numbers measured when issue 17 landed, so a change that loses ground on pages
nobody on the team wrote fails here. Set NEWSFLOW_FUNDUS_CORPUS / NEWSFLOW_TRAFILATURA_EVAL.
"""

from __future__ import annotations

import os

import pytest

from tests.peers.parser_corpus import FUNDUS_ENV, TRAFILATURA_ENV, evaluate, load

#: fundus (258 pages): body word F1, exact title, author set and date rates
FUNDUS_FLOORS = {"f1": 0.94, "title": 0.85, "authors": 0.80, "date": 0.93}
#: trafilatura's evaluation set: segment F1
TRAFILATURA_FLOOR_F1 = 0.88


@pytest.mark.skipif(not os.environ.get(FUNDUS_ENV), reason=f"{FUNDUS_ENV} not set")
def test_fundus_pages_hold_their_floors() -> None:
    summary, _ = evaluate(load("fundus"), ["newsflow"])
    got = summary["newsflow"]
    assert got["body"]["f1"] >= FUNDUS_FLOORS["f1"], got
    for field in ("title", "authors", "date"):
        assert got[field]["rate"] >= FUNDUS_FLOORS[field], (field, got)


@pytest.mark.skipif(not os.environ.get(TRAFILATURA_ENV), reason=f"{TRAFILATURA_ENV} not set")
def test_trafilatura_eval_pages_hold_their_floor() -> None:
    summary, _ = evaluate(load("trafilatura"), ["newsflow"])
    assert summary["newsflow"]["segments"]["f1"] >= TRAFILATURA_FLOOR_F1, summary
