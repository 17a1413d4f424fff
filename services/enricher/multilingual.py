"""Recognition in non-English text: a gazetteer over folded text, no model.

Turkish, Kurmanji, Arabic, Sorani and Persian copy names the region's entities in its own
spellings and scripts (``native`` blocks of ``data/aliases.json``). Every curated and user
alias is folded exactly like the article (:func:`fold_text`: case, diacritics, dotted and
dotless i, Arabic-script letter variants, apostrophes dropped) and found with one
Aho-Corasick pass (pyahocorasick). A hit counts only at word boundaries that know the
languages' morphology:

* Latin script: the name starts a word; it ends the word, or an apostrophe follows (Turkish
  "Erdoğan'ın", "PKK'nın", "Kandil'deki": whatever follows the apostrophe is a suffix), or a
  Kurmanji ending from :data:`LATIN_SUFFIXES` follows ("Tirkiyeyê"; in Turkish only the
  derivational ones, "Iraklı", :data:`LATIN_SUFFIXES_BY_LANGUAGE`);
* Arabic script: proclitics may precede it inside the word (و ب ل ف ك and the article,
  "والعراق", "بالحسكة", "للعراق"), and suffixes may follow (Arabic nisba "العراقية", Sorani
  "تورکیاوە", "هەرێمی کوردستاندا", Persian "ایرانی"), see :data:`ARABIC_SCRIPT_SUFFIXES`.

A mention is the name alone, with offsets in the ORIGINAL text: a suffix or clitic is never
part of it, so never part of a key. In Latin script a listed given name followed by
capitalised words is a person the curated data does not know ("Ahmet Yılmaz"), and a lone
word equal to the surname of exactly one full name in the article is a back-reference to it
("Yılmaz'ın"): resolution (:mod:`.resolve`) links it, as in English.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

from services.enricher.canonical import (
    NATIVE_LANGUAGES,
    AliasEntry,
    AliasTable,
    Overrides,
    fold,
    split_key,
)
from services.enricher.lexicon import MAX_GIVEN_NAME_TAIL, given_names
from services.enricher.recogniser import Span

# fmt: off
#: Apostrophes that separate a Turkish suffix from a proper name.
APOSTROPHES: frozenset[str] = frozenset("'\u2019\u2018\u02bc\u02bb`\u00b4\u2032")
#: Endings written without an apostrophe after a name (Kurmanji oblique/ezafe, Turkish -li),
#: folded; up to two in a row ("Tirkiyeyê" = Tirkiye + yê).
LATIN_SUFFIXES: frozenset[str] = frozenset({
    "e", "i", "a", "y", "ye", "yi", "ya", "yan", "an", "en", "li", "lu", "ler", "lar",
})
#: Turkish writes a case ending on a proper name after an apostrophe ("Van'a", "Muş'a"); only
#: derivational endings join it ("Iraklı", "Vanlılar"). Without this, "Musa", "Vana"
#: ("valve") and "Batmanı" were Muş, Van and Batman.
LATIN_SUFFIXES_BY_LANGUAGE: dict[str, frozenset[str]] = {
    "tr": frozenset({"li", "lu", "ler", "lar"}),
}
#: Proclitics before an Arabic-script name in the same word (folded: ك -> ک), including the
#: article forms ("وال", "بال", "لل" = li + al).
ARABIC_PROCLITICS: frozenset[str] = frozenset(fold(p) for p in (
    "و", "ف", "ب", "ل", "ك", "وب", "ول", "فب", "فل", "وك",
    "ال", "وال", "فال", "بال", "كال", "لل", "ولل", "فلل",
))
#: Endings after an Arabic-script name (folded: ة/ە -> ه, ي -> ی): Arabic nisba and plural,
#: Sorani ezafe/case/definite endings, Persian ezafe and plural; up to three in a row.
ARABIC_SCRIPT_SUFFIXES: frozenset[str] = frozenset(fold(s) for s in (
    "ي", "ية", "يين", "يون", "ی", "ە", "دا", "وە", "ەوە", "یش", "ش", "ەکە", "ەکان", "یەکان",
    "کان", "ان", "یان", "یی", "ها", "های", "ای",
))
MAX_SUFFIXES = 3
#: Longest proclitic or ending run looked at (folded chars): a longer one is no affix.
MAX_AFFIX_CHARS = 12
#: Native-data languages written in Latin script (the others write Arabic script).
LATIN_LANGUAGES: frozenset[str] = frozenset({"tr", "kmr"})
#: Language codes that share native alias data ("ku" is fastText's Kurmanji).
LANGUAGE_ALIASES: dict[str, str] = {"ku": "kmr"}
#: Last words of a capitalised run that make it something other than a person.
NOT_PERSON_WORDS: frozenset[str] = frozenset(fold(w) for w in (
    "Üniversitesi", "Caddesi", "Sokağı", "Havalimanı", "Camii", "Köprüsü", "Barajı",
    "Hastanesi", "Okulu", "Vakfı", "Partisi", "Bakanlığı", "Meclisi", "Ordusu", "Kampı",
    "Mahallesi", "Köyü", "İlçesi", "Harekâtı", "Operasyonu", "Komutanlığı", "Valiliği",
    "Başkanlığı", "Partiya", "Zanîngeha",
))
# fmt: on

_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN_WORD = re.compile(r"[^\W\d_]+")
_NAME_BREAK = re.compile(r"[^\S\n]+")  # spaces (not newlines) may join words of one name


def is_arabic_script(text: str, *, share: float = 0.3) -> bool:
    """True when at least ``share`` of the letters of ``text`` are Arabic script."""
    letters = [ch for ch in text[:2000] if ch.isalpha()]
    if not letters:
        return False
    arabic = sum(1 for ch in letters if _ARABIC_SCRIPT.match(ch))
    return arabic / len(letters) >= share


@functools.lru_cache(maxsize=16384)
def _fold_char(ch: str) -> str:
    """One character as :func:`canonical.fold` folds it inside a word ("" = dropped)."""
    if ch == "." or ch in APOSTROPHES:
        return ""
    value = fold(ch) if not ch.isspace() else ""
    if value:
        return value
    # fold() returns "" for punctuation and spaces (word separators) and for marks it drops
    if unicodedata.combining(ch) or ch in "\u0640\u200c\u200d":
        return ""
    return " "


class FoldedText:
    """``text`` folded character by character, with the original index of each folded char.

    ``folded[i]`` comes from ``text[origin[i]]``; runs of separators are one space, and
    ``apostrophe_at`` holds folded positions right after a dropped apostrophe.
    """

    __slots__ = ("apostrophe_at", "folded", "origin", "spaces", "text")

    def __init__(self, text: str) -> None:
        out: list[str] = []
        origin: list[int] = []
        apostrophes: set[int] = set()
        last_space = True
        for index, ch in enumerate(text):
            if ch in APOSTROPHES:
                apostrophes.add(len(out))
                continue
            value = _fold_char(ch)
            if not value:
                continue
            if value == " ":
                if last_space:
                    continue
                last_space = True
            else:
                last_space = False
            for part in value:
                out.append(part)
                origin.append(index)
        self.text = text
        self.folded = "".join(out)
        self.origin = origin
        self.apostrophe_at = apostrophes
        self.spaces = [i for i, ch in enumerate(self.folded) if ch == " "]

    def word_bounds(self, start: int, end: int) -> tuple[int, int]:
        """Folded [word start, word end) of the word(s) around [start, end): O(log n)."""
        spaces = self.spaces
        before = bisect.bisect_left(spaces, start)
        word_start = spaces[before - 1] + 1 if before else 0
        after = bisect.bisect_left(spaces, end)
        word_end = spaces[after] if after < len(spaces) else len(self.folded)
        return word_start, word_end

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) of folded [start, end), combining marks (harakat) after the
        last char included; format characters (ZWNJ before a Persian plural, RTL marks) and
        tatweel are not part of the name."""
        a = self.origin[start]
        b = self.origin[end - 1] + 1
        text = self.text
        while b < len(text) and unicodedata.combining(text[b]):
            b += 1
        return a, b


def fold_pattern(surface: str) -> str:
    return FoldedText(surface).folded.strip()


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str
    entries: tuple[AliasEntry, ...]  # empty for a user alias (any script, any case)
    arabic: bool


def _split_suffixes(rest: str, allowed: frozenset[str], limit: int) -> bool:
    """``rest`` is a concatenation of at most ``limit`` endings from ``allowed``."""
    if not rest:
        return True
    if limit == 0:
        return False
    return any(
        rest.startswith(s) and _split_suffixes(rest[len(s) :], allowed, limit - 1) for s in allowed
    )


class MultilingualGazetteer:
    """Curated (English and native forms) and user aliases over folded text."""

    def __init__(
        self, table: AliasTable, overrides: Overrides | None = None, language: str | None = None
    ) -> None:
        grouped: dict[str, list[AliasEntry]] = {}
        for entries in table.by_fold.values():
            for entry in entries:
                if entry.weak:
                    continue  # weak forms need a model span: there is none here
                if (
                    entry.native
                    and language is not None
                    and entry.native != language
                    and not (language in LATIN_LANGUAGES and entry.native not in LATIN_LANGUAGES)
                ):
                    # another language's form in the same script: a word of this one may look
                    # the same. Arabic-script forms never look like a Turkish or Kurmanji word,
                    # and those articles quote them ("Erdoğan (أردوغان)")
                    continue
                pattern = fold_pattern(entry.surface)
                if pattern:
                    grouped.setdefault(pattern, []).append(entry)
        automaton = ahocorasick.Automaton()
        for pattern, group in grouped.items():
            automaton.add_word(
                pattern,
                (
                    len(pattern),
                    _Pattern(
                        group[0].entity.kind, tuple(group), bool(_ARABIC_SCRIPT.search(pattern))
                    ),
                ),
            )
        if overrides is not None:
            for folded, key in overrides.aliases.items():
                pattern = fold_pattern(folded)
                if pattern:
                    kind, _ = split_key(overrides.redirect(key))
                    value = (len(pattern), _Pattern(kind, (), bool(_ARABIC_SCRIPT.search(pattern))))
                    automaton.add_word(pattern, value)
        if len(automaton) == 0:
            automaton.add_word("\x00", (1, _Pattern("ORG", (), False)))  # never matches text
        automaton.make_automaton()
        self._automaton = automaton
        self._latin_suffixes = LATIN_SUFFIXES_BY_LANGUAGE.get(language or "", LATIN_SUFFIXES)

    def find(self, text: str, field: str, offset: int = 0) -> list[Span]:
        """Known names in ``text`` (one paragraph or a whole field), longest first, no overlaps."""
        ft = FoldedText(text)
        folded = ft.folded
        candidates: list[tuple[int, int, int, _Pattern, str]] = []
        for end_index, (length, pattern) in self._automaton.iter(folded):
            start, end = end_index + 1 - length, end_index + 1
            hit = self._accept(ft, start, end, pattern)
            if hit is not None:
                candidates.append((start, end, hit[0], pattern, hit[1]))
        candidates.sort(key=lambda c: (c[0], -(c[1] - c[0])))
        spans: list[Span] = []
        taken_until = -1
        for start, end, span_start, pattern, rule in candidates:
            if start < taken_until:
                continue
            a, b = ft.original_span(span_start, end)
            spans.append(Span(field, offset + a, offset + b, text[a:b], pattern.kind, rule))
            taken_until = end
        return spans

    def _accept(
        self, ft: FoldedText, start: int, end: int, pattern: _Pattern
    ) -> tuple[int, str] | None:
        folded = ft.folded
        word_start, word_end = ft.word_bounds(start, end)
        if start - word_start > MAX_AFFIX_CHARS:
            return None  # deep inside a long word: no proclitic is that long
        apostrophe = end in ft.apostrophe_at
        if word_end - end > MAX_AFFIX_CHARS and not apostrophe:
            return None
        prefix = folded[word_start:start]
        rest = folded[end : min(word_end, end + MAX_AFFIX_CHARS + 1)]
        rule = "alias"
        span_start = start
        if pattern.arabic:
            if prefix and prefix not in ARABIC_PROCLITICS:
                return None
            if not _split_suffixes(rest, ARABIC_SCRIPT_SUFFIXES, MAX_SUFFIXES):
                return None
            if prefix:
                rule = "alias_clitic"
                # the article belongs to the name only where the name is written with it
                # ("العراق" in "والعراق"); "البغدادي" is the nisba of "بغداد", and a span
                # "البغداد" would resolve to no alias and make a key out of the clitic
                article = fold("ال")
                if (
                    prefix.endswith(article)
                    and prefix != fold("لل")
                    and self._automaton.exists(article + folded[start:end])
                ):
                    span_start = start - len(article)
        else:
            if prefix:
                return None
            if rest and not apostrophe and not _split_suffixes(rest, self._latin_suffixes, 2):
                return None
            a, b = ft.original_span(start, end)
            surface = ft.text[a:b]
            initial = next((ch for ch in surface if ch.isalnum()), "")
            if pattern.entries and not (
                initial.isupper()
                or initial.isdigit()
                or any(entry.surface == surface for entry in pattern.entries)
            ):
                return None  # names are capitalised in Latin script
            if pattern.entries and not any(entry.accepts(surface) for entry in pattern.entries):
                return None  # "US" must be written in capitals
        if rest:
            rule += "_suffix"
        return span_start, rule


class MultilingualRecognizer:
    """Spans of one article in a language without an NER model here (see module docstring)."""

    def __init__(self, table: AliasTable, overrides: Overrides | None = None) -> None:
        self._table = table
        self._overrides = overrides
        self._gazetteers: dict[str | None, MultilingualGazetteer] = {}
        self._given = frozenset(fold(name) for name in given_names())

    def gazetteer(self, language: str | None) -> MultilingualGazetteer:
        """The gazetteer for ``language`` (its native forms + English forms + user aliases);
        for a language without native data (or None), every form. Built on first use."""
        key = language if language in NATIVE_LANGUAGES else None
        if key not in self._gazetteers:
            self._gazetteers[key] = MultilingualGazetteer(self._table, self._overrides, key)
        return self._gazetteers[key]

    def warm(self) -> None:
        """Build every language's automaton now (~50 ms each), not on the first record."""
        for language in (*sorted(NATIVE_LANGUAGES), None):
            self.gazetteer(language)

    def recognize(self, title: str | None, body: str, language: str | None = None) -> list[Span]:
        """Spans of the title and the body, title first, each in text order."""
        gazetteer = self.gazetteer(LANGUAGE_ALIASES.get(language or "", language))
        spans: list[Span] = []
        for field, text in (("title", title or ""), ("body", body)):
            if text.strip():
                spans.extend(self._field(gazetteer, field, text))
        full_names = self._full_names(spans)
        result: list[Span] = []
        for field, text in (("title", title or ""), ("body", body)):
            own = [s for s in spans if s.field == field]
            own += self._surname_references(field, text, own, full_names)
            result.extend(sorted(own, key=lambda s: s.start))
        return result

    def _field(self, gazetteer: MultilingualGazetteer, field: str, text: str) -> list[Span]:
        spans: list[Span] = []
        for match in re.finditer(r"[^\n]+", text):
            spans.extend(gazetteer.find(match.group(), field, match.start()))
        if not is_arabic_script(text):
            spans += self._given_name_people(field, text, spans)
        return spans

    def _given_name_people(self, field: str, text: str, known: list[Span]) -> list[Span]:
        """A listed given name + 1..N capitalised words, the last word's suffix cut off."""
        taken = _Coverage(len(text), known)
        words = list(_LATIN_WORD.finditer(text))
        out: list[Span] = []
        i = 0
        while i < len(words):
            word = words[i]
            if fold(word.group()) not in self._given or taken.overlaps(word.start(), word.end()):
                i += 1
                continue
            j = i
            while (
                j + 1 < len(words)
                and j - i < MAX_GIVEN_NAME_TAIL
                and not _suffixed(text, words[j].end())
                and _NAME_BREAK.fullmatch(text[words[j].end() : words[j + 1].start()] or "x")
                and words[j + 1].group()[0].isupper()
                and not taken.overlaps(words[j + 1].start(), words[j + 1].end())
            ):
                j += 1
            if j > i and fold(words[j].group()) not in NOT_PERSON_WORDS:
                start, end = word.start(), words[j].end()
                out.append(Span(field, start, end, text[start:end], "PERSON", "given_name_added"))
                taken.add(start, end)
            i = j + 1
        return out

    @staticmethod
    def _full_names(spans: Iterable[Span]) -> dict[str, set[str]]:
        """Folded last word -> folded full names (2+ words) of the article's people."""
        names: dict[str, set[str]] = {}
        for span in spans:
            if span.label == "PERSON":
                words = fold(span.text).split()
                if len(words) >= 2:
                    names.setdefault(words[-1], set()).add(" ".join(words))
        return names

    @staticmethod
    def _surname_references(
        field: str, text: str, spans: list[Span], full_names: dict[str, set[str]]
    ) -> list[Span]:
        """A lone word equal to the surname of exactly one full name in the article (cut at an
        apostrophe): a PERSON mention that resolution links to that name."""
        if not full_names:
            return []
        taken = _Coverage(len(text), spans)
        arabic = is_arabic_script(text)
        out: list[Span] = []
        for match in re.finditer(r"[^\W\d_][\w]*", text):
            start, end = match.start(), match.end()
            word = match.group()
            if not arabic and not word[0].isupper():
                continue
            if taken.overlaps(start, end):
                continue
            if len(full_names.get(fold(word), ())) != 1:
                continue  # unknown, or two people share it: never guess
            out.append(Span(field, start, end, word, "PERSON", "surname_reference"))
        return out


class _Coverage:
    """Which characters of a text some span covers: O(length) checks, never O(spans)."""

    __slots__ = ("_mask",)

    def __init__(self, size: int, spans: Iterable[Span] = ()) -> None:
        self._mask = bytearray(size)
        for span in spans:
            self.add(span.start, span.end)

    def add(self, start: int, end: int) -> None:
        self._mask[start:end] = b"\x01" * (end - start)

    def overlaps(self, start: int, end: int) -> bool:
        return 1 in self._mask[start:end]


def _suffixed(text: str, end: int) -> bool:
    """An apostrophe right after a word ends the name there ("Fidan'ın")."""
    return end < len(text) and text[end] in APOSTROPHES
