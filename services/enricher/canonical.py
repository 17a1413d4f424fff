"""Canonical identities: the normalisation key, the curated alias table and user overrides.

Everything here is deterministic and explainable: a key is ``"<KIND>:<fold(name)>"`` where
:func:`fold` is a pure string function (NFKC, case and diacritic folding with Turkish dotted
and dotless i, hyphen == space, possessive 's and apostrophes dropped). The same surface form
therefore gets the same key in every article, process and restart.

The curated alias table lives in ``data/aliases.json`` (facts written by hand); user aliases
and merges come from the database (:mod:`services.enricher.admin`) as :class:`Overrides`.
Per-article resolution (acronyms, surnames) is in :mod:`services.enricher.resolve`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

# Key normalisation lives in the kernel (the alerter needs it too); re-exported here for the
# enricher's modules (listed in __all__).
from shared.entity_keys import (
    KINDS,
    LEADING_ARTICLES,
    NAME_PARTICLES,
    TITLES,
    fold,
    make_key,
    name_norm,
    split_key,
    strip_articles,
    strip_titles,
)

__all__ = [
    "ALIASES_FILE",
    "KINDS",
    "LEADING_ARTICLES",
    "NAME_PARTICLES",
    "TITLES",
    "AliasEntry",
    "AliasTable",
    "CuratedEntity",
    "Overrides",
    "display_name",
    "fold",
    "follow_merges",
    "load_curated",
    "make_key",
    "name_norm",
    "parse_alias_data",
    "split_key",
    "strip_articles",
    "strip_titles",
]

ALIASES_FILE = "aliases.json"


# --- display names ---------------------------------------------------------------------

_SURFACE_POSSESSIVE = re.compile(r"['\u2019]s?$")
_DISPLAY_ARTICLE = re.compile(r"^the\s+", re.IGNORECASE)


def _title_pattern() -> re.Pattern[str]:
    alternatives = []
    for title in sorted(TITLES, key=lambda t: -len(t.split())):
        words = [re.escape(word) + r"\.?" for word in title.split()]
        alternatives.append(r"[\s-]*".join(words))
    return re.compile(r"^(?:(?:" + "|".join(alternatives) + r")\s+)+", re.IGNORECASE)


_TITLE_PREFIX = _title_pattern()


def display_name(text: str, kind: str) -> str:
    """A readable canonical name from a surface form: no leading "the", title or possessive."""
    value = " ".join(unicodedata.normalize("NFKC", text).split())
    value = _SURFACE_POSSESSIVE.sub("", value) if value.endswith(("'s", "’s")) else value
    stripped = _DISPLAY_ARTICLE.sub("", value)
    if kind == "PERSON":
        stripped = _TITLE_PREFIX.sub("", stripped)
    return stripped or value


# --- curated aliases -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CuratedEntity:
    key: str
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class AliasEntry:
    """One curated surface form. ``weak`` forms only resolve spans the model already found;
    ``case_sensitive`` forms (short acronyms) must be written in capitals ("US", not "us")."""

    entity: CuratedEntity
    surface: str
    weak: bool
    case_sensitive: bool
    #: the language of a form from the entity's ``native`` block ("tr", "ckb", ...; "" for
    #: the English forms): matched in text of that language only, so "Şam" (Damascus) never
    #: claims an English "Sam" and Arabic "باسيان" (Basyan) never a Sorani "باسیان" (their talk)
    native: str = ""

    def accepts(self, surface: str) -> bool:
        if not self.case_sensitive:
            return True
        surface = _DISPLAY_ARTICLE.sub("", surface)
        return surface.replace(".", "").replace(" ", "") == self.surface.replace(".", "").replace(
            " ", ""
        )


def _is_acronym(surface: str) -> bool:
    letters = surface.replace(".", "").replace("-", "").replace(" ", "")
    return 1 < len(letters) <= 6 and letters.isupper()


@dataclass(frozen=True)
class AliasTable:  # not slots: person_surnames is a cached_property
    """The curated alias dataset, indexed by folded surface form."""

    version: str
    digest: str
    entities: Mapping[str, CuratedEntity]
    by_fold: Mapping[str, tuple[AliasEntry, ...]]

    @functools.cached_property
    def person_surnames(self) -> frozenset[str]:
        """Last name words of curated people ("barzani", "guler"): a lone such word is a
        person even when the model calls it ORG."""
        return frozenset(
            key.rsplit(" ", 1)[-1]
            for key, entity in self.entities.items()
            if entity.kind == "PERSON" and " " in key
        )

    def lookup(
        self, surface: str, *, found_by_model: bool = True, native: bool = False
    ) -> AliasEntry | None:
        """The curated entry for ``surface`` (a span's text, titles allowed for people).

        ``native``: the text is not English, so native-script and native-spelling forms count.
        """
        folded = strip_articles(fold(surface))
        entry = self._accepting(folded, surface, found_by_model, native)
        if entry is None:
            # "Prime Minister al-Sudani": titles are only meaningful before a person's name
            untitled = strip_titles(folded)
            if untitled != folded:
                candidate = self._accepting(untitled, surface, found_by_model, native)
                if candidate is not None and candidate.entity.kind == "PERSON":
                    entry = candidate
        return entry

    def _accepting(
        self, folded: str, surface: str, found_by_model: bool, native: bool
    ) -> AliasEntry | None:
        for entry in self.by_fold.get(folded, ()):
            if entry.native and not native:
                continue
            if entry.accepts(surface.strip()) and (found_by_model or not entry.weak):
                return entry
        return None


def parse_alias_data(data: Mapping[str, Any], *, digest: str = "") -> AliasTable:
    """Build the table from the JSON structure; raises ValueError on a conflicting alias."""
    entities: dict[str, CuratedEntity] = {}
    by_fold: dict[str, tuple[AliasEntry, ...]] = {}
    for item in data["entities"]:
        kind, name = item["kind"], item["name"]
        key = make_key(kind, name)
        if key in entities:
            raise ValueError(f"aliases: duplicate entity {key}")
        entity = CuratedEntity(key=key, kind=kind, name=name)
        entities[key] = entity
        # "model_spans_only": every form is weak (a place name that is also a common word)
        all_weak = bool(item.get("model_spans_only", False))
        forms = [(name, all_weak)] + [(a, all_weak) for a in item.get("aliases", ())]
        forms += [(a, True) for a in item.get("weak", ())]
        entries = [AliasEntry(entity, f, weak, _is_acronym(f)) for f, weak in forms]
        for language, native_forms in sorted(item.get("native", {}).items()):
            if language not in NATIVE_LANGUAGES:
                raise ValueError(f"aliases: {key}: unknown native language {language!r}")
            for surface in native_forms:
                entries.append(AliasEntry(entity, surface, False, _is_acronym(surface), language))
                bare = _without_arabic_article(surface)
                if bare is not None:  # "العراق" after لل: "للعراق"
                    entries.append(AliasEntry(entity, bare, False, False, language))
        for entry in entries:
            folded = strip_articles(fold(entry.surface))
            previous = by_fold.get(folded, ())
            if previous and previous[0].entity.key != key:
                if entry.native and entry.surface not in _native_surfaces(item):
                    continue  # a derived bare form that names something else: keep the other
                raise ValueError(
                    f"aliases: {entry.surface!r} maps to both {previous[0].entity.key} and {key}"
                )
            if any(
                e.surface == entry.surface
                and (e.native == entry.native or (not e.native and not e.weak))
                for e in previous
            ):
                continue
            # strong forms first: lookup() returns the first form that accepts the surface
            by_fold[folded] = tuple(sorted((*previous, entry), key=lambda e: e.weak))
    return AliasTable(
        version=str(data.get("version", "")),
        digest=digest,
        entities=MappingProxyType(entities),
        by_fold=MappingProxyType(by_fold),
    )


#: Languages of the ``native`` alias blocks: Turkish, Kurmanji, Arabic, Sorani, Persian.
NATIVE_LANGUAGES: frozenset[str] = frozenset({"tr", "kmr", "ar", "ckb", "fa"})
#: The Arabic definite article as it opens a name ("العراق").
ARABIC_ARTICLE = "\u0627\u0644"


def _without_arabic_article(surface: str) -> str | None:
    """ "العراق" -> "عراق"; None when the form has no article or nothing would remain."""
    if surface.startswith(ARABIC_ARTICLE) and len(surface) > len(ARABIC_ARTICLE) + 1:
        return surface[len(ARABIC_ARTICLE) :]
    return None


def _native_surfaces(item: Mapping[str, Any]) -> set[str]:
    return {form for forms in item.get("native", {}).values() for form in forms}


@functools.cache
def load_curated() -> AliasTable:
    """The shipped alias dataset (read once per process)."""
    raw = resources.files("services.enricher").joinpath("data", ALIASES_FILE).read_bytes()
    return parse_alias_data(json.loads(raw), digest=hashlib.sha256(raw).hexdigest())


# --- user overrides --------------------------------------------------------------------


@dataclass(frozen=True)
class Overrides:
    """User decisions loaded from the DB: they win over the curated data.

    ``aliases``: folded surface form -> entity key (``entities alias add``).
    ``merges``: entity key -> the key it was merged into, chains already followed.
    ``names``: entity key -> display name, for keys the user created or merged into.
    """

    aliases: Mapping[str, str] = field(default_factory=dict)
    merges: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    def redirect(self, key: str) -> str:
        return self.merges.get(key, key)

    def alias(self, surface: str) -> str | None:
        if not self.aliases:
            return None
        folded = strip_articles(fold(surface))
        hit = self.aliases.get(folded)
        if hit is None:
            hit = self.aliases.get(strip_titles(folded))
        return hit

    @property
    def digest(self) -> str:
        """Changes whenever the overrides do; logged so a reload is visible."""
        payload = json.dumps(
            [sorted(self.aliases.items()), sorted(self.merges.items())], ensure_ascii=False
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def follow_merges(edges: Mapping[str, str]) -> dict[str, str]:
    """Collapse merge chains (A->B->C gives A->C); a cycle is cut where it closes."""
    result: dict[str, str] = {}
    for start in edges:
        seen = {start}
        current = start
        while current in edges and edges[current] not in seen:
            current = edges[current]
            seen.add(current)
        if current != start:
            result[start] = current
    return result
