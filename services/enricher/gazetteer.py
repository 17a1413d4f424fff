"""Curated and user names matched over a Doc's tokens: the token view and the gazetteer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.enricher.canonical import AliasEntry, AliasTable, Overrides, fold, split_key
from services.enricher.lexicon import TRANSPARENT

if TYPE_CHECKING:
    from spacy.tokens import Doc

MAX_FOLD_CACHE = 200_000


@dataclass(frozen=True, slots=True)
class Tok:
    """Token-index span used while applying rules to one Doc."""

    start: int
    end: int
    label: str
    rule: str
    weak: bool = False


# --- token view ------------------------------------------------------------------------


class View:
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
        for folded, all_entries in table.by_fold.items():
            words = tuple(folded.split())
            # native forms are for non-English text (services/enricher/multilingual.py)
            entries = tuple(entry for entry in all_entries if not entry.native)
            if words and entries:
                weak = all(entry.weak for entry in entries)
                index[words] = _GazHit(entries[0].entity.kind, weak, entries)
        if overrides is not None:
            for folded, key in overrides.aliases.items():
                words = tuple(folded.split())
                kind, _ = split_key(overrides.redirect(key))
                if words:
                    index[words] = _GazHit(kind, False, ())
        self._index = index
        #: folded curated (native forms too) and user names -> kind: a Turkish suffix after one
        #: of these in English text is cut off (recogniser.cut_turkish_suffix)
        kinds = {folded: entries[0].entity.kind for folded, entries in table.by_fold.items()}
        if overrides is not None:
            for folded, key in overrides.aliases.items():
                kinds[folded] = split_key(overrides.redirect(key))[0]
        self.kind_of: dict[str, str] = kinds
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

    def match(self, doc: Doc, view: View | None = None) -> list[Tok]:
        """Longest non-overlapping name matches in ``doc``, left to right.

        Folding is cached per ORTH, so most tokens cost two dict lookups; a window of
        following words is built only at a token that starts some known name.
        """
        v = view if view is not None else View(doc)
        folds, longest_of = self._folds, self._longest
        orths, texts = v.orths, v.texts
        size = len(orths)

        def fold_at(i: int) -> str | None:
            orth = orths[i]
            return folds[orth] if orth in folds else self._fold_orth(orth, texts[i])

        hits: list[Tok] = []
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

    def _longest_hit(self, v: View, words: list[str], positions: list[int]) -> Tok | None:
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
            return Tok(start, end, hit.kind, "alias", weak)
        return None
