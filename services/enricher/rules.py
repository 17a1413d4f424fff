"""The rule layer: fixes of the sm model's known mistakes over token spans of one Doc.

See :mod:`.recogniser` for the list; the word lists are in :mod:`.lexicon`.
"""

from __future__ import annotations

from dataclasses import replace

from services.enricher.canonical import fold
from services.enricher.gazetteer import Tok, View
from services.enricher.lexicon import (
    ARABIC_ARTICLES,
    CONNECTORS,
    FORCE_HEADS,
    LOCATIVE_BEFORE,
    MAX_GIVEN_NAME_TAIL,
    MAX_ORG_TAIL,
    MINISTRY_AFTER,
    NAME_JOINERS,
    NATIONALITY_NOUNS,
    NOT_PERSON_HEADS,
    ORG_HEADS,
    ORG_JOINERS,
    PERSON_MISLABELS,
    PLACE_KINDS,
    PLACE_MISLABELS,
    PLACE_NOUNS,
    PORTFOLIO_WORDS,
    SPAN_PADDING,
    TITLE_AFTER,
    TITLE_WORDS,
    TURKISH_LETTERS,
)


def _overlaps(a: Tok, b: Tok) -> bool:
    return a.start < b.end and b.start < a.end


def _inside(inner: Tok, outer: Tok) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def _inside_padded(v: View, inner: Tok, outer: Tok) -> bool:
    """``inner`` lies within ``outer`` except for padding ("The" of "The Autonomous ...")."""
    outside = [i for i in range(inner.start, inner.end) if not outer.start <= i < outer.end]
    return all(v.lowers[i] in SPAN_PADDING for i in outside)


def _covered(v: View, span: Tok, inner: list[Tok]) -> bool:
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


def merge_gazetteer(v: View, model: list[Tok], names: list[Tok]) -> list[Tok]:
    result: list[Tok] = []
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


def _longer_org(v: View, name: Tok, others: list[Tok]) -> Tok | None:
    """A known name that starts an organisation the model missed ("Sinjar" in "Sinjar
    Resistance Units"): the whole name, as ORG, so the rule does not break it."""
    taken = {i for span in others for i in range(span.start, span.end)}
    end = name.end
    best: int | None = None
    while end < len(v) and end - name.end < MAX_ORG_TAIL and end not in taken:
        lower = v.lowers[end]
        if not (is_capitalised(v.texts[end]) or lower in ORG_JOINERS):
            break
        end += 1
        if lower in ORG_HEADS:
            best = end
    if best is None:
        return None
    return Tok(name.start, best, "ORG", "alias_in_longer_org")


def is_capitalised(text: str) -> bool:
    return text[:1].isupper() and any(ch.isalpha() for ch in text)


def _after_titles(v: View, span: Tok) -> int:
    """Index of the first token of ``span`` after leading one-word titles ("Private Emre")."""
    i = span.start
    while i < span.end - 1 and v.lowers[i].rstrip(".") in TITLE_WORDS:
        i += 1
    return i


def fix_people(v: View, spans: list[Tok], name_orths: frozenset[int]) -> list[Tok]:
    covered = {i for span in spans for i in range(span.start, span.end)}
    fixed: list[Tok] = []
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
                and is_capitalised(v.texts[end])
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
                is_capitalised(v.texts[i]) or v.lowers[i] in NAME_JOINERS
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
            and (is_capitalised(v.texts[end]) or v.lowers[end] in NAME_JOINERS)
        ):
            end += 1
        while end > i + 1 and v.lowers[end - 1] in NAME_JOINERS:
            end -= 1
        if end - i >= 2 and v.lowers[end - 1] not in NOT_PERSON_HEADS:
            fixed.append(Tok(i, end, "PERSON", "given_name_added"))
            covered.update(range(i, end))
    return sorted(fixed, key=lambda t: t.start)


def fix_labels(v: View, spans: list[Tok]) -> list[Tok]:
    fixed: list[Tok] = []
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


def _join_org_of_place(v: View, spans: list[Tok]) -> list[Tok]:
    """An ORG the model cut before "of <place>" ("Kurdistan Democratic Party" | "of Iran")
    is one organisation: a different one from the name without the place."""
    spans = sorted(spans, key=lambda t: t.start)
    out: list[Tok] = []
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
            out.append(Tok(span.start, nxt.end, "ORG", "org_of_place"))
            skip.add(index + 1)
            continue
        out.append(span)
    return out
