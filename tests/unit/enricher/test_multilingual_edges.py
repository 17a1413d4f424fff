"""Regressions found by attacking the multilingual enricher with invented inputs."""

from __future__ import annotations

import pytest

from services.enricher.canonical import load_curated
from services.enricher.multilingual import MultilingualRecognizer
from services.enricher.pipeline import Enricher


@pytest.fixture(scope="module")
def recognizer() -> MultilingualRecognizer:
    return MultilingualRecognizer(load_curated())


@pytest.mark.parametrize(
    ("text", "surface", "key"),
    [
        ("قال البغدادي إن الوضع مستقر", "بغداد", "GPE:baghdad"),  # al-Baghdadi: nisba of بغداد
        ("والبغدادية", "بغداد", "GPE:baghdad"),
        ("الكركوكي", "كركوك", "GPE:kirkuk"),
        ("الأردوغانية", "أردوغان", "PERSON:recep tayyip erdogan"),
        ("والعراق", "العراق", "GPE:iraq"),  # the article stays where the name takes it
    ],
)
def test_article_clitic_joins_the_name_only_when_the_name_takes_it(
    enricher: Enricher, make_article, text: str, surface: str, key: str
) -> None:
    result = enricher.enrich(make_article(text, language="ar"))
    assert [(m.text, m.entity_key) for m in result.mentions] == [(surface, key)]
    assert {e.key for e in result.entities} == {key}
