"""The rule layer's vocabulary, as data: word lists the recognition rules read.

Rules live as data (STYLE.md): the functions in :mod:`.rules`, :mod:`.segmentation` and
:mod:`.gazetteer` only look words up here, so a new title, force head or opener is a one-line
change. ``data/given_names.txt`` (listed given names) is read once per process.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from services.enricher.canonical import TITLES

GIVEN_NAMES_FILE = "given_names.txt"

# --- rules as data ---------------------------------------------------------------------
# fmt: off

#: Tokens allowed between known names when a model span is split into them.
CONNECTORS: frozenset[str] = frozenset({
    "and", "&", ",", "-", "–", "—", "/", "'s", "’s", "on", "in", "at", "near", "from", "to",
})
#: Tokens allowed around a single known name inside a model span ("The Turkish Armed Forces").
SPAN_PADDING: frozenset[str] = frozenset({"the", "'s", "’s", "'", "’"})
#: Token texts invisible to name matching ("al-Sudani" == "al Sudani", "Türkiye's").
TRANSPARENT = re.compile(r"^(?:[-–—'’.]+|['’]s)$")
#: Last words that make a PRODUCT (or other non-ORG) span an armed force or agency.
FORCE_HEADS: frozenset[str] = frozenset({
    "forces", "force", "army", "armies", "navy", "gendarmerie", "brigade", "brigades",
    "battalion", "battalions", "regiment", "division", "corps", "units", "unit", "militia",
    "militias", "guard", "guards", "police", "command", "service", "services", "agency",
    "ministry", "directorate", "organization", "organisation", "party", "front",
})
#: Last words of an organisation name that starts with a known place ("Sinjar Resistance
#: Units", "Duhok Security Council").
ORG_HEADS: frozenset[str] = FORCE_HEADS | frozenset({
    "council", "government", "administration", "assembly", "committee", "office", "mechanism",
    "alliance", "coalition", "movement", "union", "authority", "court", "parliament",
    "municipality", "asayish", "directorate", "commission", "association", "network",
})
PLACE_KINDS: frozenset[str] = frozenset({"GPE", "LOC"})
#: Lowercase nouns after a name that make it a place ("Batifa subdistrict", "Koya district").
PLACE_NOUNS: frozenset[str] = frozenset({
    "province", "district", "subdistrict", "sub-district", "governorate", "village", "town",
    "city", "municipality",
})
#: Nouns after a lone capitalised word that make it a nationality ("a Tajik national").
NATIONALITY_NOUNS: frozenset[str] = frozenset({"national", "nationals", "citizen", "citizens"})
PLACE_MISLABELS: frozenset[str] = frozenset({"PERSON", "ORG", "PRODUCT", "NORP", "WORK_OF_ART", "FAC"})
ORG_JOINERS: frozenset[str] = frozenset({"-", "of", "and", "for", "'s", "’s"})
MAX_ORG_TAIL = 6
#: Last words that make a span starting with a given name something other than a person.
NOT_PERSON_HEADS: frozenset[str] = FORCE_HEADS | frozenset({
    "airport", "university", "mosque", "street", "avenue", "square", "bridge", "dam",
    "hospital", "school", "stadium", "base", "camp", "prison", "district", "province",
    "foundation", "institute", "center", "centre", "company", "group", "operation",
})
#: Ministerial portfolios: "Interior" before "Minister" is part of a title, not an ORG.
PORTFOLIO_WORDS: frozenset[str] = frozenset({
    "interior", "defence", "defense", "foreign", "justice", "finance", "energy", "trade",
    "health", "education", "oil", "planning", "treasury", "national defence",
    "national defense", "foreign affairs", "peshmerga", "prime", "deputy",
})
TITLE_AFTER: frozenset[str] = frozenset({"minister", "secretary"})
MINISTRY_AFTER: frozenset[str] = frozenset({"ministry", "ministries"})
#: Letters that mark a Turkish word; the sm model has cut names before such words.
TURKISH_LETTERS: frozenset[str] = frozenset("ıİşŞğĞçÇöÖüÜâÂîÎûÛ")
#: Prepositions after which a lone capitalised word is a place, not an organisation.
LOCATIVE_BEFORE: frozenset[str] = frozenset({"in", "near", "outside", "around", "across"})
#: Labels a given-name span may be relabelled from (never GPE/LOC/FAC/EVENT).
PERSON_MISLABELS: frozenset[str] = frozenset(
    {"PRODUCT", "ORG", "NORP", "WORK_OF_ART", "LAW", "FAC"}
)
#: The Arabic article as written in transliterated names ("al-", "ash-", "ad-"...).
ARABIC_ARTICLES: frozenset[str] = frozenset(
    {"al", "el", "ul", "ash", "ad", "as", "at", "az", "an", "ar", "ath", "adh"}
)
#: First words of sentences that are never a name (with no other capital, the sentence is
#: skipped): function words and common news openers.
NAMELESS_OPENERS: frozenset[str] = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "he", "she", "they",
    "we", "i", "you", "his", "her", "their", "our", "there", "here", "in", "on", "at", "of",
    "for", "from", "by", "with", "without", "after", "before", "during", "since", "until",
    "while", "when", "where", "as", "if", "but", "and", "or", "so", "yet", "however",
    "meanwhile", "moreover", "also", "still", "according", "despite", "although", "though",
    "because", "no", "not", "some", "many", "most", "several", "all", "both", "each", "one",
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "dozens",
    "hundreds", "thousands", "officials", "residents", "analysts", "witnesses", "sources",
    "security", "local", "police", "troops", "soldiers", "fighters", "militants", "authorities",
    "critics", "experts", "observers", "families", "civilians", "people", "human", "rights",
    "it's", "what", "who", "which", "why", "how", "such", "other", "another", "last", "earlier",
    "later", "then", "now", "today", "yesterday", "separately", "elsewhere", "overall",
})
#: Name particles allowed inside a person name the rule layer builds ("Ahmed al-Sharaa").
NAME_JOINERS: frozenset[str] = frozenset({"al", "el", "bin", "ibn", "-"})
MAX_GIVEN_NAME_TAIL = 3
#: One-word titles that may open a mislabelled person span ("Private Emre Kılıç" as FAC).
TITLE_WORDS: frozenset[str] = frozenset(t for t in TITLES if " " not in t)
#: Title Case headline detection: share of capitalised words longer than 3 letters.
TITLE_CASE_SHARE = 0.75
MIN_TITLE_CASE_WORD = 3
MIN_TITLE_CASE_WORDS = 3


# fmt: on


@functools.cache
def given_names() -> frozenset[str]:
    text = (
        resources.files("services.enricher")
        .joinpath("data", GIVEN_NAMES_FILE)
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


#: Turkish case/possessive/derivational endings written after an apostrophe on a proper name
#: ("Kandil'deki", "Bağdat'ta", "Fidan'ın"), folded (ı -> i, ü -> u); a suffix is a run of
#: these. "Shi'ite" or "Da'esh" are cut only when the part before the apostrophe is a known
#: name, so an English word with an apostrophe is never split by accident.
TURKISH_SUFFIX_CHUNKS: frozenset[str] = frozenset({
    "in", "un", "nin", "nun", "i", "u", "yi", "yu", "a", "e", "ya", "ye", "na", "ne",
    "da", "de", "ta", "te", "dan", "den", "tan", "ten", "nda", "nde", "ndan", "nden", "ki",
    "la", "le", "yla", "yle", "li", "lu", "ler", "lar", "si", "su", "dir", "tir", "m", "im",
    "um", "miz", "niz",
})  # fmt: skip
