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


@pytest.mark.parametrize(
    ("text", "surface"),
    [
        ("اردوغان\u200cها", "اردوغان"),  # ZWNJ before the Persian plural
        ("در تهران\u200c و", "تهران"),
        ("\u200fأردوغان\u200f قال", "أردوغان"),  # RTL marks around the name
        ("أردوغان\u200d", "أردوغان"),
        ("أَرْدُوغَانُ قال", "أَرْدُوغَانُ"),  # harakat on the last letter stay with it
    ],
)
def test_invisible_format_characters_stay_out_of_the_mention(
    recognizer: MultilingualRecognizer, text: str, surface: str
) -> None:
    spans = recognizer.recognize(None, text, "fa")
    assert [s.text for s in spans] == [surface]
    assert text[spans[0].start : spans[0].end] == surface


def test_persian_adjective_after_zwnj_is_the_name(recognizer: MultilingualRecognizer) -> None:
    text = "نیروهای ترکیه\u200cای در مرز"  # "Turkish forces": ترکیه + ZWNJ + ای
    spans = recognizer.recognize(None, text, "fa")
    assert [(s.text, s.label) for s in spans] == [("ترکیه", "GPE")]
