"""Page -> Article: the parser's one entry point (:func:`parse_page`).

Stages: charset repair -> DOM (size limit) -> structured data -> body extraction (fallbacks)
-> cleaning (recorded) -> metadata -> checks (not an article, empty, garbage) -> fingerprints.
"""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Literal

import trafilatura.meta
from lxml.html import HtmlElement

from services.parser import metadata
from services.parser.charset import check_replacement_chars, repair_mojibake
from services.parser.clean import (
    clean_paragraphs,
    record_extractor_duplicates,
    strip_article_boxes,
)
from services.parser.dedup import fingerprint
from services.parser.extract import extract_body, find_captions, load_tree, prune_tree
from services.parser.limits import ParseTimeout, TimeLimit
from services.parser.structured import (
    IMAGE_META,
    MODIFIED_META,
    PUBLISHED_META,
    SITE_NAME_META,
    TITLE_META,
    Structured,
    read_structured,
)
from shared.errors import NewsflowError, PermanentError
from shared.messages import Article, Page
from shared.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: fewer words than this after cleaning: nothing worth publishing (unless it is a teaser)
MIN_ARTICLE_WORDS = 25
#: a paywalled page with fewer words than this is a teaser, not the article
TEASER_MAX_WORDS = 150
#: pages without any article markup whose text is mostly link text are listings
MAX_LINK_TEXT_RATIO = 0.5
#: ... or that show several headlines linking elsewhere (teaser lists on section pages)
LINKED_HEADINGS = "//h2[.//a[@href]] | //h3[.//a[@href]] | //h4[.//a[@href]]"
MIN_LINKED_HEADINGS = 3
#: garbage: too few tokens that look like words or numbers, or too many absurdly long ones
MIN_WORDLIKE_RATIO = 0.5
_WORDLIKE = re.compile(
    r"^[(\"'“‘«\[]*(?:[^\W\d_]+(?:['’.-][^\W\d_]+)*|\d+(?:[.,:/-]\d+)*%?)[)\"'”’»\].,;:!?…]*$"
)
MAX_LONG_TOKEN_RATIO = 0.05
LONG_TOKEN_CHARS = 40
#: garbage is judged on the first tokens: enough to tell, and bounded on long texts
GARBAGE_SAMPLE_TOKENS = 400
#: scripts written without spaces between words (CJK ideographs, kana, Thai): text mostly in
#: them is judged and counted by characters, at this many characters per word
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
UNSPACED_SCRIPT_SHARE = 0.3
UNSPACED_CHARS_PER_WORD = 2
GARBAGE_SAMPLE_CHARS = 2000
#: titles of error pages served with status 200 ("soft 404s")
ERROR_TITLE = re.compile(
    r"\b(?:404|410|500|503|page not found|not found|access denied|forbidden"
    r"|sayfa bulunamad[ıi]|service unavailable)\b|^error\b|\berror$",
    re.IGNORECASE,
)
#: trafilatura/htmldate memoise per process and grow without bound: reset every N pages
RESET_CACHES_EVERY = 500
_HTML_LANG = re.compile(r"<html[^>]*?\blang\s*=\s*[\"']?([A-Za-z-]+)", re.IGNORECASE)

_pages_parsed = itertools.count(1)


def parse_page(
    page: Page, *, settings: Settings | None = None, now: datetime | None = None
) -> Article:
    """Turn a fetched page into a clean :class:`Article` (dedup status not yet resolved).

    Pure and deterministic for a given ``page``, ``settings`` and ``now`` (default: the
    current time, also used as ``parsed_at`` and as the "future date" limit). Raises
    ``PermanentError`` with ``kind`` one of ``not_article`` (HTTP error, index/category/error
    page), ``empty``, ``garbage``, ``charset`` (mis-decoded beyond repair), ``dom_too_large``,
    ``parse_timeout``, or ``parse_error`` (an unexpected library failure on this page).
    """
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    if page.status_code >= 400:
        raise PermanentError(f"HTTP {page.status_code} page", kind="not_article")
    try:
        with TimeLimit(settings.parse_timeout_s) as limit:
            return _parse(page, settings=settings, now=now, limit=limit)
    except ParseTimeout as exc:
        raise PermanentError(str(exc), kind="parse_timeout") from exc
    except NewsflowError:
        raise
    except Exception as exc:
        # Parsing is deterministic: a library failing on this page will fail again, so this
        # is permanent (dead-lettered with the cause), not a worker crash.
        raise PermanentError(f"{type(exc).__name__}: {exc}", kind="parse_error") from exc
    finally:
        if next(_pages_parsed) % RESET_CACHES_EVERY == 0:
            _reset_library_caches()


class _NothingToClear(logging.Filter):
    """Drops htmldate's ERROR "impossible to clear cache for function": charset_normalizer
    3.5 no longer memoises the functions htmldate tries to clear, so there is nothing to
    clear, yet every reset logged an ERROR line in a healthy parser (found by ``make soak``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("impossible to clear cache for function")


_NOTHING_TO_CLEAR = _NothingToClear()


def _reset_library_caches() -> None:
    """trafilatura's reset (justext, htmldate, courlan and its own memoised helpers)."""
    htmldate_log = logging.getLogger("htmldate.meta")
    if _NOTHING_TO_CLEAR not in htmldate_log.filters:
        htmldate_log.addFilter(_NOTHING_TO_CLEAR)
    trafilatura.meta.reset_caches()


def warm_up() -> None:
    """Load what the first parse would otherwise load inside its time limit (~1 s).

    Optional; call once at worker start. py3langid reads its model and trafilatura/htmldate
    build their caches on first use.
    """
    page = Page(
        url="https://warm.up/a",
        final_url="https://warm.up/a",
        host="warm.up",
        status_code=200,
        html="<html><head><meta property='og:type' content='article'></head><body><article><p>"
        + "Officials in Erbil said the talks with Baghdad would continue next week. " * 8
        + "</p></article></body></html>",
        discovered_at=datetime(2026, 1, 1, tzinfo=UTC),
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    _htmldate(load_tree(page.html, max_nodes=1000), url=page.url, now=page.fetched_at)
    parse_page(page, settings=Settings(), now=page.fetched_at)


def _has_article_markup(structured: Structured, tree: HtmlElement) -> bool:
    return bool(
        structured.article_types
        or structured.meta.get("og:type", "").lower() == "article"
        or structured.first_meta(PUBLISHED_META)
        or tree.find(".//article") is not None
    )


def _link_text_ratio(tree: HtmlElement) -> float:
    body = tree.find(".//body")
    if body is None:
        return 0.0
    total = len("".join(body.text_content().split()))
    linked = sum(len("".join(a.text_content().split())) for a in body.iter("a"))
    return linked / total if total else 0.0


def _strip_marks(token: str) -> str:
    return "".join(ch for ch in token if not unicodedata.category(ch).startswith("M"))


def _unspaced_share(text: str) -> float:
    sample = "".join(text[:GARBAGE_SAMPLE_CHARS].split())
    return len(_UNSPACED.findall(sample)) / len(sample) if sample else 0.0


def _is_garbage(text: str) -> bool:
    if _unspaced_share(text) >= UNSPACED_SCRIPT_SHARE:
        # Chinese, Japanese, Thai: no spaces between words, so tokens say nothing; judge the
        # characters instead
        sample = "".join(text[:GARBAGE_SAMPLE_CHARS].split())
        return sum(c.isalnum() for c in sample) / len(sample) < MIN_WORDLIKE_RATIO
    # vowel signs and other combining marks (Devanagari, Arabic harakat) are parts of words
    tokens = [_strip_marks(t) for t in text.split()[:GARBAGE_SAMPLE_TOKENS]]
    if not tokens:
        return False
    wordlike = sum(1 for t in tokens if _WORDLIKE.match(t))
    long_tokens = sum(1 for t in tokens if len(t) >= LONG_TOKEN_CHARS)
    return (
        wordlike / len(tokens) < MIN_WORDLIKE_RATIO
        or long_tokens / len(tokens) > MAX_LONG_TOKEN_RATIO
    )


def _word_count(text: str) -> int:
    """Words; in text mostly in an unspaced script, its characters / UNSPACED_CHARS_PER_WORD."""
    if _unspaced_share(text) >= UNSPACED_SCRIPT_SHARE:
        return max(len(text.split()), len(_UNSPACED.findall(text)) // UNSPACED_CHARS_PER_WORD)
    return len(text.split())


def _htmldate(tree: HtmlElement, *, url: str, now: datetime) -> str | None:
    from htmldate import find_date

    return find_date(
        tree,
        original_date=True,  # else htmldate prefers the last-modified date
        # the extensive search falls back to the copyright year ("© 2026" -> 2026-01-01), and
        # its text-date parsing (dateparser) compiles regexes for 200 locales on first use:
        # 10-15 s, past the per-page time limit
        extensive_search=False,
        url=url,
        max_date=now.strftime("%Y-%m-%d"),
        outputformat="%Y-%m-%d",
    )


def _parse(page: Page, *, settings: Settings, now: datetime, limit: TimeLimit) -> Article:
    declared = _HTML_LANG.search(page.html[:4096])
    html, repair = repair_mojibake(
        page.html, lang=declared[1] if declared else None, charset=page.charset
    )
    if repair:
        logger.info("mojibake re-decoded as %s url=%s", repair, page.final_url)
    tree = load_tree(html, max_nodes=settings.max_dom_nodes)
    limit.check()
    st = read_structured(tree)
    host_name = metadata.host_site_name(page.host)
    declared_site = st.first_meta(SITE_NAME_META) or st.publisher
    known_sites = [
        n
        for n in (declared_site, st.publisher, host_name, page.host, metadata.host_label(page.host))
        if n
    ]
    chosen = metadata.choose_title(
        (st.headline, st.first_meta(TITLE_META), st.title_tag, st.h1, page.entry.title),
        site_names=known_sites,
        references=(st.headline_shown, st.h1, st.first_meta(TITLE_META), st.headline),
        declared=(declared_site, st.publisher),
        host_label=metadata.host_label(page.host),
    )
    title = chosen.text
    # no declared name: the one the page's own <title> shows beats the bare host name
    site_name = declared_site or chosen.site_name or host_name
    site_names = [n for n in (site_name, *known_sites) if n]
    has_markup = _has_article_markup(st, tree)
    if st.listing and not st.article_types:
        raise PermanentError(
            "page declares itself a listing (CollectionPage/ItemList)", kind="not_article"
        )

    captions = find_captions(tree)
    boxes = strip_article_boxes(tree)
    prune_tree(tree)
    # decided before extraction: on a big index page trafilatura alone can take a second
    if not has_markup and (
        _link_text_ratio(tree) > MAX_LINK_TEXT_RATIO
        or len(tree.xpath(LINKED_HEADINGS)) >= MIN_LINKED_HEADINGS
    ):
        raise PermanentError(
            "no article markup; link lists or teaser headlines", kind="not_article"
        )
    extraction = extract_body(tree, url=page.final_url, article_body=st.article_body)
    limit.check()
    cleaned = clean_paragraphs(extraction.paragraphs, titles=(title, st.h1), captions=captions)
    record_extractor_duplicates(tree, cleaned)
    body_text = "\n\n".join(cleaned.paragraphs)
    check_replacement_chars(f"{title or ''} {body_text}", charset=page.charset)
    word_count = _word_count(body_text)
    paywalled = st.is_free is False or cleaned.paywall_prompt
    if title and ERROR_TITLE.search(title) and word_count < TEASER_MAX_WORDS and not has_markup:
        raise PermanentError(f"error page titled {title!r}", kind="not_article")
    if _is_garbage(body_text):
        raise PermanentError("text is mostly non-letters or unbroken tokens", kind="garbage")
    if word_count == 0 or (word_count < MIN_ARTICLE_WORDS and not paywalled):
        raise PermanentError(f"only {word_count} words after cleaning", kind="empty")
    limit.check()

    in_url = metadata.url_date(page.final_url) or metadata.url_date(page.url)
    dates = metadata.choose_dates(
        published=(
            ("jsonld", st.jsonld_published),
            ("meta", st.first_meta(PUBLISHED_META) or st.time_published),
            ("feed", page.entry.published_at),
            ("url", in_url.isoformat() if in_url else None),
            ("htmldate", lambda: _htmldate(tree, url=page.final_url, now=now)),
        ),
        modified=(("jsonld", st.jsonld_modified), ("meta", st.first_meta(MODIFIED_META))),
        now=now,
        first_seen=page.discovered_at,
        in_url=in_url,
        max_lag=timedelta(days=settings.max_date_lag_days),
    )
    if dates.rejected:
        logger.debug("rejected dates url=%s %s", page.final_url, dates.rejected)

    bylines = [span.text for span in cleaned.removed if span.reason == "byline"]
    authors = metadata.choose_authors(
        (st.jsonld_authors, st.meta_authors, bylines, st.dom_authors, page.entry.authors),
        (st.jsonld_organisations,),
        site_names=site_names,
    )

    status: Literal["ok", "paywalled", "teaser"]
    if paywalled and (cleaned.paywall_prompt or word_count < TEASER_MAX_WORDS):
        status = "teaser"
    elif paywalled:
        status = "paywalled"
    else:
        status = "ok"
    image = metadata.absolute_http_url(
        st.first_meta(IMAGE_META) or st.jsonld_image, base=page.final_url
    )
    # "+cp1254": the text was repaired by re-decoding it as cp1254 (see charset.py)
    method = f"{extraction.method}+{repair}" if repair else extraction.method
    digest, signature = fingerprint(body_text)
    return Article(
        url=page.url,
        final_url=page.final_url,
        canonical_url=metadata.choose_canonical(st.canonical, final_url=page.final_url),
        host=page.host,
        status=status,
        title=title,
        authors=authors.names,
        author_kind=authors.kind,
        published_at=dates.published_at,
        published_source=dates.published_source,
        modified_at=dates.modified_at,
        modified_source=dates.modified_source,
        language=metadata.detect_language(body_text),
        site_name=site_name,
        top_image=image,
        # the first paragraph, not the meta description (often a rewritten summary)
        lead=cleaned.paragraphs[0],
        body_text=body_text,
        captions=cleaned.captions,
        removed=[*boxes, *cleaned.removed],
        paywalled=paywalled,
        content_hash=digest,
        minhash=signature,
        feed_id=page.feed_id,
        feed_url=page.feed_url,
        word_count=word_count,
        extraction=method,
        discovered_at=page.discovered_at,
        fetched_at=page.fetched_at,
        parsed_at=now,
    )
