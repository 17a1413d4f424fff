"""Resolve one article's mentions to canonical entities, deterministically and explainably.

Order of precedence for each mention (the first rule that applies wins; ``Resolved.rule``
records which):

1. ``user_alias``: a surface form a user attached to an entity (``entities alias add``).
2. ``acronym_definition``: an acronym defined in this article, "Hamrin Border Brigade (HBB)"
   or "HBB (Hamrin Border Brigade)": every "HBB" goes to the expansion's entity.
3. ``surname``: a person's surname or title form ("Sudani", "Prime Minister al-Sudani") goes
   to the one full name in the article that ends with it. If two people in the article share
   it (Bashar and Hafez al-Assad) it is ``surname_ambiguous`` and keeps its own key.
4. ``curated``: the shipped alias table (``data/aliases.json``).
5. ``acronym_initials``: an undefined acronym whose letters are the initials of exactly one
   multi-word name in the article.
6. ``normalised``: ``KIND:fold(name)``; when the model gave one name several kinds in the
   article, the majority kind wins (``kind_vote``).

Finally user merges redirect a key to the entity it was merged into (``+merged``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from services.enricher.canonical import (
    NAME_PARTICLES,
    AliasTable,
    Overrides,
    display_name,
    fold,
    name_norm,
    split_key,
    strip_articles,
)
from services.enricher.recogniser import Span

#: Kinds that win a tie when the model labels one name differently within an article.
# fmt: off
KIND_PRIORITY: tuple[str, ...] = (
    "PERSON", "GPE", "ORG", "LOC", "NORP", "FAC", "EVENT", "LAW", "PRODUCT", "WORK_OF_ART",
)
#: Model labels that a lone surname may carry by mistake ("Sudani" tagged ORG).
SURNAME_MISLABELS: frozenset[str] = frozenset(
    {"PERSON", "ORG", "GPE", "NORP", "PRODUCT", "LOC", "FAC", "WORK_OF_ART"}
)
#: Words skipped when an acronym is compared with a name's initials.
INITIALS_STOPWORDS: frozenset[str] = frozenset({"of", "the", "and", "for", "on", "in", "de", "al"})
#: Name forms that fix a kind (folded words): toponym prefixes, landform heads, org heads.
LOC_FIRST_WORDS: frozenset[str] = frozenset({"mount", "jabal", "jebel", "wadi", "lake", "river"})
LOC_LAST_WORDS: frozenset[str] = frozenset({
    "mountains", "mountain", "mountain range", "valley", "river", "plain", "plains", "desert",
    "lake", "range", "hills", "gorge", "dam lake",
})
GPE_FIRST_WORDS: frozenset[str] = frozenset({
    "tal", "tel", "tell", "deir", "dayr", "ras", "ain", "ayn", "kafr", "khirbet", "qasr",
    "beit", "bir",  # not "abu"/"umm": kunyas of people ("Abu Yahya al-Iraqi")
})
ORG_LAST_WORDS: frozenset[str] = frozenset({
    "brigade", "brigades", "battalion", "battalions", "units", "forces", "army", "militia",
    "party", "movement", "front", "council", "committee", "ministry", "directorate",
    "command", "agency", "organization", "organisation", "union", "coalition", "alliance",
    "government", "administration", "parliament", "assembly", "court", "police",
    "gendarmerie", "service", "corps", "network", "association", "foundation",
})
#: Bracketed credits that follow a name without defining it ("Kurdistan Region (AFP)").
NOT_DEFINITIONS: frozenset[str] = frozenset({
    "AFP", "AP", "DPA", "ANF", "ANHA", "SANA", "IRNA", "INA", "NNA", "KUNA", "WAM", "SPA", "AA",
    "UPI", "EFE", "ANSA", "IHA", "DHA", "TRT", "BBC", "CNN", "PHOTO", "VIDEO", "UPDATED",
})
# fmt: on
FIELD_ORDER = {"title": 0, "body": 1}

_PAREN = re.compile(r"\s*\(\s*([^()\n]{2,80}?)\s*\)")


def kind_by_form(text: str) -> str | None:
    """The kind a name's own words imply, whatever the model said in this article, so an
    unknown name keeps one key across articles: "Wadi Hauran" LOC, "Tal Tamr" GPE,
    "Hamrin Border Brigade" ORG. None when the words do not tell."""
    words = strip_articles(fold(text)).split()
    if len(words) < 2:
        return None
    if words[0] in LOC_FIRST_WORDS or words[-1] in LOC_LAST_WORDS:
        return "LOC"
    if words[0] in GPE_FIRST_WORDS:
        return "GPE"
    if words[-1] in ORG_LAST_WORDS:
        return "ORG"
    return None


@dataclass(frozen=True, slots=True)
class Resolved:
    span: Span
    key: str
    kind: str
    rule: str


def is_acronym(text: str) -> bool:
    """Acronyms like "SDF", "U.N.", "CJTF-OIR": no space, 2-10 letters/digits, nearly all capitals."""
    compact = text.replace(".", "").replace("-", "").replace("&", "")
    if not 2 <= len(compact) <= 10 or not compact.isalnum() or not compact[0].isupper():
        return False
    upper = sum(1 for ch in compact if ch.isupper())
    return upper >= 2 and upper >= len(compact) - 1


def _acronym_form(text: str) -> str:
    return text.replace(".", "")


def _name_tokens(span: Span) -> tuple[str, ...]:
    """Folded name words without titles, "the" and joining particles ("al-Sudani" -> sudani)."""
    words = name_norm(span.text, "PERSON").split()
    return tuple(word for word in words if word not in NAME_PARTICLES)


def _initials(words: Sequence[str], *, skip_stopwords: bool) -> str:
    kept = [w for w in words if not (skip_stopwords and w in INITIALS_STOPWORDS)]
    return "".join(w[0] for w in kept if w)


def _key(kind: str, text: str) -> str:
    return f"{kind}:{name_norm(text, kind)}"


class _Article:
    def __init__(self, spans: Sequence[Span], texts: Mapping[str, str]) -> None:
        self.texts = texts
        self.spans = sorted(
            {(s.field, s.start, s.end): s for s in spans}.values(),
            key=lambda s: (FIELD_ORDER.get(s.field, 9), s.start, s.end),
        )

    def span_at(self, field: str, start: int, end: int) -> Span | None:
        for span in self.spans:
            if span.field == field and span.start == start and span.end == end:
                return span
        return None

    def covered(self, field: str, start: int, end: int) -> bool:
        return any(s.field == field and s.start < end and start < s.end for s in self.spans)

    def add(self, span: Span) -> None:
        self.spans.append(span)
        self.spans.sort(key=lambda s: (FIELD_ORDER.get(s.field, 9), s.start, s.end))


def _acronym_definitions(article: _Article) -> dict[str, Span]:
    """Acronym -> expansion span, from "Name (ACR)" and "ACR (Name)" in the text."""
    definitions: dict[str, Span] = {}
    for span in list(article.spans):
        text = article.texts.get(span.field, "")
        match = _PAREN.match(text, span.end)
        if match is None:
            continue
        inner, start, end = match.group(1), match.start(1), match.end(1)
        inner_span = article.span_at(span.field, start, end)
        if _acronym_form(inner).upper() in NOT_DEFINITIONS:
            continue
        if is_acronym(inner) and len(fold(span.text).split()) >= 2 and not is_acronym(span.text):
            if inner_span is None and not article.covered(span.field, start, end):
                inner_span = Span(span.field, start, end, inner, span.label, "acronym_definition")
                article.add(inner_span)
            definitions.setdefault(_acronym_form(inner), span)
        elif is_acronym(span.text) and inner_span is not None and len(fold(inner).split()) >= 2:
            definitions.setdefault(_acronym_form(span.text), inner_span)
    # later uses the model missed ("... the HBB said") are mentions too
    for acronym, expansion in definitions.items():
        pattern = re.compile(r"(?<![\w.])" + re.escape(acronym) + r"(?![\w])")
        for field, text in article.texts.items():
            for match in pattern.finditer(text):
                if not article.covered(field, match.start(), match.end()):
                    article.add(
                        Span(
                            field,
                            match.start(),
                            match.end(),
                            match.group(),
                            expansion.label,
                            "acronym_occurrence",
                        )
                    )
    return definitions


def resolve_article(
    spans: Sequence[Span],
    *,
    texts: Mapping[str, str],
    table: AliasTable,
    overrides: Overrides | None = None,
    native: bool = False,
) -> list[Resolved]:
    """Canonical entity for every mention of one article (see the module docstring).

    ``texts`` maps a field ("title", "body") to its text; span offsets index into it.
    ``native``: the article is not English, so native alias forms resolve too.
    Returns mentions in reading order (title first). Pure: same input, same output.
    """
    overrides = overrides or Overrides()
    article = _Article(spans, texts)
    definitions = _acronym_definitions(article)
    expansion_ids = {id(span) for span in definitions.values()}

    # full person names: PERSON spans of 2+ name words that do not end a longer one
    person_words = {id(s): _name_tokens(s) for s in article.spans if s.label == "PERSON"}
    candidates = [s for s in article.spans if len(person_words.get(id(s), ())) >= 2]
    # proper word suffixes of every candidate, so each test is a set lookup (a long article
    # with thousands of names must not be quadratic)
    endings = {
        person_words[id(o)][-k:] for o in candidates for k in range(1, len(person_words[id(o)]))
    }
    full_names = [s for s in candidates if person_words[id(s)] not in endings]
    # shorter forms -> the full names they end, in reading order
    by_ending: dict[tuple[str, ...], list[Span]] = defaultdict(list)
    for f in full_names:
        words_f = person_words[id(f)]
        for k in range(1, len(words_f)):
            by_ending[words_f[-k:]].append(f)

    full_ids = {id(f) for f in full_names}
    targets_cache: dict[int, list[Span]] = {}

    def short_targets(span: Span) -> list[Span]:
        cached = targets_cache.get(id(span))
        if cached is None:
            cached = targets_cache[id(span)] = _short_targets(span)
        return cached

    def _short_targets(span: Span) -> list[Span]:
        if not full_names or id(span) in full_ids or span.label not in SURNAME_MISLABELS:
            return []
        if is_acronym(span.text):
            return []
        words = _name_tokens(span)
        if not words or (span.label != "PERSON" and len(words) != 1):
            return []
        if span.label != "PERSON":
            entry = table.lookup(span.text, native=native)
            if entry is not None and entry.entity.kind != "PERSON":
                return []
        return list(by_ending.get(words, ()))

    resolved: dict[int, Resolved] = {}
    deferred: list[tuple[Span, str]] = []
    for span in article.spans:
        if not name_norm(span.text, span.label):
            continue
        user_key = overrides.alias(span.text)
        if user_key is not None:
            resolved[id(span)] = Resolved(span, user_key, split_key(user_key)[0], "user_alias")
            continue
        form = _acronym_form(span.text)
        if form in definitions and id(span) not in expansion_ids:
            deferred.append((span, "acronym_definition"))
            continue
        if short_targets(span):
            deferred.append((span, "surname"))
            continue
        entry = table.lookup(
            span.text, found_by_model=span.rule != "acronym_occurrence", native=native
        )
        if entry is not None:
            resolved[id(span)] = Resolved(span, entry.entity.key, entry.entity.kind, "curated")
            continue
        if is_acronym(span.text):
            deferred.append((span, "acronym_initials"))
            continue
        kind, rule = span.label, "normalised"
        if (
            kind in SURNAME_MISLABELS
            and kind != "PERSON"
            and name_norm(span.text, kind) in table.person_surnames
        ):
            kind, rule = "PERSON", "curated_surname_kind"  # "Barzani" tagged ORG
        else:
            implied = kind_by_form(span.text)
            if implied is not None and implied != kind:
                kind, rule = implied, "kind_by_form"  # "Wadi Hauran" is a LOC in every article
        resolved[id(span)] = Resolved(span, _key(kind, span.text), kind, rule)

    _vote_kinds(resolved)

    for span, rule in deferred:
        if rule == "acronym_definition":
            target = resolved.get(id(definitions[_acronym_form(span.text)]))
            if target is not None:
                resolved[id(span)] = Resolved(span, target.key, target.kind, rule)
                continue
        elif rule == "surname":
            keys = sorted({resolved[id(f)].key for f in short_targets(span) if id(f) in resolved})
            if len(keys) == 1:
                resolved[id(span)] = Resolved(span, keys[0], split_key(keys[0])[0], rule)
            else:  # shared surname: never merge two people; keep the bare form apart
                resolved[id(span)] = Resolved(
                    span, _key("PERSON", span.text), "PERSON", "surname_ambiguous"
                )
            continue
        elif rule == "acronym_initials":
            keys = _initials_match(span, resolved.values())
            if len(keys) == 1:
                key = keys[0]
                resolved[id(span)] = Resolved(span, key, split_key(key)[0], rule)
                continue
        entry = table.lookup(span.text, native=native)
        if entry is not None:
            resolved[id(span)] = Resolved(span, entry.entity.key, entry.entity.kind, "curated")
        else:
            resolved[id(span)] = Resolved(
                span, _key(span.label, span.text), span.label, "normalised"
            )

    result = []
    for span in article.spans:
        item = resolved.get(id(span))
        if item is None:
            continue
        merged = overrides.redirect(item.key)
        if merged != item.key:
            item = replace(item, key=merged, kind=split_key(merged)[0], rule=item.rule + "+merged")
        result.append(item)
    return result


def _vote_kinds(resolved: dict[int, Resolved]) -> None:
    """One normalised name, one kind per article: majority label, ties by KIND_PRIORITY."""
    groups: dict[str, list[int]] = defaultdict(list)
    for ident, item in resolved.items():
        if item.rule == "normalised":
            groups[strip_articles(fold(item.span.text))].append(ident)
    for idents in groups.values():
        kinds = Counter(resolved[i].kind for i in idents)
        if len(kinds) < 2:
            continue
        best = min(kinds, key=lambda k: (-kinds[k], KIND_PRIORITY.index(k)))
        for ident in idents:
            item = resolved[ident]
            if item.kind != best:
                resolved[ident] = Resolved(item.span, _key(best, item.span.text), best, "kind_vote")


def _initials_match(span: Span, resolved: object) -> list[str]:
    acronym = _acronym_form(span.text).replace("-", "").lower()
    keys: set[str] = set()
    for item in resolved:  # type: ignore[attr-defined]
        words = strip_articles(fold(item.span.text)).split()
        if len(words) < 2 or item.kind == "PERSON":
            continue
        if acronym in (
            _initials(words, skip_stopwords=True),
            _initials(words, skip_stopwords=False),
        ):
            keys.add(item.key)
    return sorted(keys)


def canonical_names(
    items: Sequence[Resolved], *, table: AliasTable, overrides: Overrides | None = None
) -> dict[str, str]:
    """Display name per key: curated or user name, else the longest full surface form."""
    overrides = overrides or Overrides()
    names: dict[str, str] = {}
    best: dict[str, tuple[int, int, str]] = {}
    for order, item in enumerate(items):
        if item.key in names:
            continue
        if item.key in table.entities:
            names[item.key] = table.entities[item.key].name
            continue
        if item.key in overrides.names:
            names[item.key] = overrides.names[item.key]
            continue
        shown = display_name(item.span.text, item.kind)
        # an acronym names its entity only when nothing longer was seen
        rank = 0 if is_acronym(shown) else len(shown)
        current = best.get(item.key)
        if current is None or rank > current[0]:
            best[item.key] = (rank, order, shown)
    for key, (_, _, shown) in best.items():
        names.setdefault(key, shown)
    return names
