"""Cutting an article into the pieces the model sees: paragraphs, sentences, headline parts.

Text is cut into paragraphs (``\\n``) so no span crosses a paragraph break; sentences that
cannot hold a name are left out (:func:`segments`), and sentences that only name known
entities are marked for the rules alone (:func:`plan_segments`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from services.enricher.canonical import fold, strip_articles
from services.enricher.lexicon import (
    MIN_TITLE_CASE_WORD,
    MIN_TITLE_CASE_WORDS,
    NAMELESS_OPENERS,
    TITLE_CASE_SHARE,
)

#: A paragraph longer than this is cut at a sentence end: NER cost is linear, but one
#: huge "paragraph" (text without newlines) would otherwise be a single enormous Doc.
MAX_SEGMENT_CHARS = 4000

_WORD = re.compile(r"[\w'’.-]+")
_TITLE_SEPARATOR = re.compile(r"\s+[-|–—:·•]\s+")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?\s+")


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


def confirmed(text: str, body: list[tuple[str, ...]]) -> bool:
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
