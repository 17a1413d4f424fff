"""Chunked folding gives exactly the enricher's fold(), word for word."""

from __future__ import annotations

import pytest

from services.alerter.text import tokens
from services.enricher.canonical import fold

TEXTS = [
    "Türkiye's army struck PKK positions near Şırnak and İDLİB on Monday.",
    "Iraqi Prime Minister Mohammed Shia al-Sudani met U.S. envoys\u00a0in Baghdad.",
    "The Kurdistan Workers' Party (PKK) — a group listed by the E.U. — said: “no”.",
    "رئيس الوزراء العراقي محمد شياع السوداني في بغداد",
    "Serokê Herêma Kurdistanê Nêçîrvan Barzanî çû Hewlêrê",
    "سەرۆکی هەرێمی کوردستان   نێچیرڤان بارزانی",
    "Ba'ath,Ba`ath and ﬁnance ｆｕｌｌｗｉｄｔｈ ２０２６ x_y   tabs\tand\nlines",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_tokens_equal_fold_split(text: str) -> None:
    assert tokens(text) == fold(text).split()


def test_turkish_spellings_meet() -> None:
    assert tokens("Şırnak") == tokens("SIRNAK") == tokens("Sirnak") == ["sirnak"]
