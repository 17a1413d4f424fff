"""Entity keys: the normalisation every stage agrees on, ``"<KIND>:<fold(name)>"``.

:func:`fold` is a pure string function (NFKC, case and diacritic folding with Turkish dotted
and dotless i, hyphen == space, possessive 's and apostrophes dropped), so the same surface
form gets the same key in every article, process and restart. The enricher builds keys with
it (:mod:`services.enricher.canonical` re-exports these names); the alerter folds watch
queries and article text with it, so ``Şırnak`` in a query matches ``Sirnak`` in an article.
Kept in the kernel because two stages need it and a stage imports no other stage.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import get_args

from shared.messages import EntityKind

KINDS: frozenset[str] = frozenset(get_args(EntityKind))

# Leading titles and ranks stripped from PERSON names (folded form, one entry per phrase).
# A title is stripped only when a name remains after it: "President" alone stays "President".
# fmt: off
TITLES: tuple[str, ...] = (
    "first lieutenant general", "lieutenant general", "lt gen", "ltgen",
    "major general", "maj gen", "brigadier general", "brig gen", "general", "gen",
    "lieutenant colonel", "lt col", "colonel", "col", "lieutenant", "lt", "major", "maj",
    "captain", "capt", "commander", "cmdr", "admiral", "adm", "marshal", "field marshal",
    "sergeant", "sgt", "private", "pvt",
    "president", "vice president", "prime minister", "deputy prime minister", "minister",
    "foreign minister", "interior minister", "defence minister", "defense minister",
    "justice minister", "finance minister", "energy minister", "trade minister",
    "national defence minister", "national defense minister", "deputy minister",
    "spokesman", "spokeswoman", "spokesperson", "ambassador", "envoy", "special envoy",
    "governor", "mayor", "chief", "chairman", "chairwoman", "chair", "co chair",
    "speaker", "parliament speaker", "senator", "sen", "rep", "mp", "judge", "prosecutor",
    "sheikh", "shaikh", "sheik", "shaykh", "ayatollah", "grand ayatollah", "imam", "mullah",
    "mufti", "king", "queen", "crown prince", "prince", "emir", "sultan",
    "dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "mister", "sir", "lord",
    "former", "acting", "deputy", "late", "jailed", "imprisoned", "slain", "senior", "top",
    "then", "militant", "commander in chief", "leader", "founder",
)
# fmt: on
# Particles that join an Arabic/Kurdish surname; "al-Sudani" and "Sudani" share a surname.
NAME_PARTICLES: frozenset[str] = frozenset({"al", "el", "ul"})
# Leading articles dropped from every kind: "the Syrian Democratic Forces".
LEADING_ARTICLES: tuple[str, ...] = ("the",)

_APOSTROPHES = re.compile(r"[\u2019\u2018\u02bc\u02bb\u0060\u00b4\u2032]")
_POSSESSIVE = re.compile(r"'s\b")
_NON_WORD = re.compile(r"[^\w]+")
# Python lowercases "İ" to "i" + combining dot and keeps "ı"; fold both to plain "i" first.
_TURKISH_I = str.maketrans({"İ": "i", "ı": "i"})
# Arabic script as written in Arabic, Persian and Sorani copy: one letter per sound whatever the
# writer's keyboard (Arabic/Farsi yeh and kaf; teh marbuta, Sorani ae and heh doachashmee as heh),
# no tatweel, no zero-width (non-)joiners. Hamza seats and harakat go with NFKD below.
_ARABIC_SCRIPT = str.maketrans(
    {
        "ي": "ی",  # ي -> ی
        "ى": "ی",  # ى -> ی
        "ك": "ک",  # ك -> ک
        "ة": "ه",  # ة -> ه
        "ە": "ه",  # ە -> ه
        "ھ": "ه",  # ھ -> ه
        "ـ": None,  # tatweel
        "‌": None,  # zero-width non-joiner (Persian compounds)
        "‍": None,  # zero-width joiner
    }
)


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """The normalisation key of a surface form (without kind). Pure and cached.

    >>> fold("Türkiye's") == fold("TURKIYE") == "turkiye"
    True
    >>> fold("al-Sudani") == fold("Al Sudani") == "al sudani"
    True
    """
    value = unicodedata.normalize("NFKC", text).translate(_TURKISH_I).casefold()
    value = unicodedata.normalize("NFKD", value)
    value = "".join(ch for ch in value if not unicodedata.combining(ch)).translate(_ARABIC_SCRIPT)
    value = _APOSTROPHES.sub("'", value)
    value = _POSSESSIVE.sub("", value)
    # "U.S." -> "us", "Workers'" -> "workers", "Ba'ath" -> "baath"
    value = value.replace("'", "").replace(".", "")
    value = _NON_WORD.sub(" ", value).replace("_", " ")
    return " ".join(value.split())


def _index_prefixes(prefixes: Iterable[str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """First word -> the prefixes starting with it, longest first."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for prefix in prefixes:
        words = tuple(prefix.split())
        index.setdefault(words[0], []).append(words)
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in index.items()}


def _strip_prefixes(folded: str, index: Mapping[str, tuple[tuple[str, ...], ...]]) -> str:
    words = folded.split()
    start = 0
    while len(words) - start > 1:
        for prefix in index.get(words[start], ()):
            n = len(prefix)
            if n < len(words) - start and tuple(words[start : start + n]) == prefix:
                start += n
                break
        else:
            break
    return " ".join(words[start:]) if start else folded


_TITLE_INDEX = _index_prefixes(TITLES)
_ARTICLE_INDEX = _index_prefixes(LEADING_ARTICLES)


@functools.lru_cache(maxsize=65536)
def strip_titles(folded: str) -> str:
    """Drop leading titles/ranks from a folded PERSON name ("lt gen metin gurak" -> "metin gurak")."""
    return _strip_prefixes(folded, _TITLE_INDEX)


def strip_articles(folded: str) -> str:
    return _strip_prefixes(folded, _ARTICLE_INDEX)


@functools.lru_cache(maxsize=65536)
def name_norm(text: str, kind: str) -> str:
    """The folded canonical name of a surface form for ``kind`` (titles only for PERSON)."""
    folded = strip_articles(fold(text))
    if kind == "PERSON":
        folded = strip_titles(folded)
    return folded


def make_key(kind: str, text: str) -> str:
    """The canonical key ``"<KIND>:<normalised name>"`` the writer upserts on."""
    if kind not in KINDS:
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {sorted(KINDS)}")
    return f"{kind}:{name_norm(text, kind)}"


def split_key(key: str) -> tuple[str, str]:
    """``"GPE:turkiye"`` -> ``("GPE", "turkiye")``; raises ValueError for a malformed key."""
    kind, sep, name = key.partition(":")
    if not sep or kind not in KINDS or not name or fold(name) != name:
        raise ValueError(
            f"not an entity key: {key!r}; expected KIND:name with KIND in {sorted(KINDS)} "
            "and a normalised name, e.g. GPE:turkiye"
        )
    return kind, name
