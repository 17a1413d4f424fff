"""Structured data a page declares about itself: JSON-LD, OpenGraph, meta tags, link rels.

Everything here reads the parsed tree and never modifies it. Values are returned raw (strings
as the page wrote them); :mod:`services.parser.metadata` validates and chooses between them.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml.html import HtmlElement

logger = logging.getLogger(__name__)

#: JSON-LD ``@type`` values that describe one article (schema.org Article and subtypes).
ARTICLE_TYPES = frozenset(
    {
        "Article",
        "NewsArticle",
        "ReportageNewsArticle",
        "AnalysisNewsArticle",
        "BackgroundNewsArticle",
        "OpinionNewsArticle",
        "ReviewNewsArticle",
        "AskPublicNewsArticle",
        "BlogPosting",
        "LiveBlogPosting",
        "Report",
        "ScholarlyArticle",
        "SocialMediaPosting",
    }
)
#: JSON-LD ``@type`` values of listing pages (index, section, tag, search pages).
LISTING_TYPES = frozenset({"CollectionPage", "ItemList", "SearchResultsPage"})

#: meta tags holding a publication date, best first (property= or name= or itemprop=).
PUBLISHED_META = (
    "article:published_time",
    "article:published:time",
    "og:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.created",
    "dc.date",
    "date",
)
MODIFIED_META = (
    "article:modified_time",
    "article:modified:time",
    "og:updated_time",
    "datemodified",
    "dcterms.modified",
    "last-modified",
)
AUTHOR_META = ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator")
SITE_NAME_META = ("og:site_name", "application-name", "apple-mobile-web-app-title")
IMAGE_META = (
    "og:image:secure_url",
    "og:image",
    "og:image:url",
    "twitter:image",
    "twitter:image:src",
)
TITLE_META = ("og:title", "twitter:title")

#: JSON-LD ``@type`` values of organisations (authors that are not people).
ORGANISATION_TYPES = frozenset(
    {
        "Organization",
        "NewsMediaOrganization",
        "Corporation",
        "GovernmentOrganization",
        "NGO",
        "EducationalOrganization",
        "LocalBusiness",
        "Brand",
        "WebSite",
    }
)
#: where the headline a reader sees is, best first; a page-wide <h1> only when it is the only
#: one (several: one of them is a logo or a teaser)
SHOWN_HEADLINE_XPATHS = (
    "//article//h1",
    "//main//h1",
    "//*[@itemprop='headline' and not(self::meta)]",
    "//h1",
)
#: one word is a logo or a section label, not a headline
MIN_SHOWN_HEADLINE_WORDS = 2
#: an empty kicker leaves ": Headline" behind
TITLE_EDGE_PUNCTUATION = " :|-–—·•"
#: visible bylines: author links and elements whose class names an author or byline
DOM_AUTHOR_XPATH = (
    ".//*[@rel='author' or @itemprop='author' or contains(@class, 'author')"
    " or contains(@class, 'byline')]"
)
#: byline-like elements that credit someone else: photographers (figures), commenters
#: (comment sections), form labels ("Name *")
NOT_A_BYLINE_XPATH = (
    "ancestor-or-self::figure or ancestor-or-self::figcaption or ancestor-or-self::form"
    " or ancestor-or-self::label or ancestor-or-self::*[contains(@class, 'comment')"
    " or contains(@id, 'comment') or contains(@class, 'respond')]"
)
#: longer elements are bios or author boxes, not a name
MAX_DOM_AUTHOR_CHARS = 60
#: bylines beyond this many are lists of other stories' authors
MAX_DOM_AUTHORS = 4
#: a value double-encoded by its CMS ("&amp;#8217;") needs this many decoding rounds
MAX_UNESCAPE_ROUNDS = 3
#: tags that end a line of text: replaced by a space when markup is stripped from a value
_BLOCK_TAG = re.compile(r"<(?:br|/?p|/?div|/?li|/?h[1-6]|/?tr|/?td)\b[^>]*>", re.IGNORECASE)
#: invisible characters CMSes leave in headlines (soft hyphen, ZWSP, word joiner, BOM); not
#: ZWNJ/ZWJ, which Persian and Kurdish spelling needs
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))
_ANY_TAG = re.compile(r"</?[A-Za-z][^<>]*>")

#: JSON-LD keys whose values are further nodes describing the page
NESTED_NODE_KEYS = ("mainEntity", "@graph")
#: markers around a JSON-LD block that are not JSON: CDATA sections (with "//" or "/* */"
#: around them), HTML comments and a stray ";", at the start or the end only
_JSONLD_WRAPPER = re.compile(
    r"^\s*(?://\s*|/\*\s*)?(?:<!\[CDATA\[|<!--)(?:\s*\*/)?"
    r"|(?://\s*|/\*\s*)?(?:\]\]>|-->)(?:\s*\*/)?\s*$|;\s*$"
)
#: JSON-LD blocks above this size are skipped: they are data dumps, not page metadata.
MAX_JSONLD_CHARS = 500_000


@dataclass(slots=True)
class Structured:
    """What the page says about itself. Lists keep the page's order (best source first)."""

    article_types: list[str] = field(default_factory=list)
    listing: bool = False
    headline: str | None = None
    #: people named as authors; ``jsonld_organisations``: authors typed as an organisation
    jsonld_authors: list[str] = field(default_factory=list)
    jsonld_organisations: list[str] = field(default_factory=list)
    jsonld_published: str | None = None
    jsonld_modified: str | None = None
    article_body: str | None = None
    is_free: bool | None = None
    publisher: str | None = None
    jsonld_image: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    meta_authors: list[str] = field(default_factory=list)
    #: names in visible byline elements, in page order (inside <article> when there is one)
    dom_authors: list[str] = field(default_factory=list)
    time_published: str | None = None
    canonical: str | None = None
    html_lang: str | None = None
    title_tag: str | None = None
    h1: str | None = None
    #: the headline a reader sees: the <h1> of the article (or the page's only <h1>)
    headline_shown: str | None = None

    def first_meta(self, names: tuple[str, ...]) -> str | None:
        for name in names:
            value = self.meta.get(name)
            if value:
                return value
        return None


def read_structured(tree: HtmlElement) -> Structured:
    """Collect JSON-LD (incl. ``@graph``), OpenGraph/meta tags and link rels from ``tree``."""
    found = Structured()
    _read_meta(tree, found)
    nodes = list(_jsonld_nodes(tree))
    # Yoast and other @graph writers name the author and publisher by reference:
    # "author": {"@id": ".../#/schema/person/abc"}, the Person being another node
    by_id = {node["@id"]: node for node in nodes if isinstance(node.get("@id"), str)}
    for node in nodes:
        _read_jsonld_node(_resolved(node, by_id), found)
    return found


#: JSON-LD keys whose {"@id": ...} references are replaced by the node they name
REFERENCE_KEYS = ("author", "publisher", "creator")


def _resolved(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``node`` with its author/publisher references replaced by the nodes they name (one
    level: a reference to a reference stays as it is)."""

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, dict) and set(value) <= {"@id", "@type"}:
            return by_id.get(str(value.get("@id")), value)
        return value

    if not any(key in node for key in REFERENCE_KEYS):
        return node
    return {**node, **{key: resolve(node[key]) for key in REFERENCE_KEYS if key in node}}


def clean_value(value: str) -> str:
    """Text of a value the page declares (JSON-LD, OpenGraph, meta, <title>): entities decoded
    (also when double-encoded), markup stripped, whitespace squashed. The one place this is done.
    """
    for _ in range(MAX_UNESCAPE_ROUNDS):
        if "&" not in value:
            break
        decoded = html.unescape(value)
        if decoded == value:
            break
        value = decoded
    if "<" in value and ">" in value:
        value = _ANY_TAG.sub("", _BLOCK_TAG.sub(" ", value))
    value = value.replace("\u00a0", " ").translate(_INVISIBLE)
    return " ".join(value.split())


#: elements that end a line: their text and the text after them are separate words
_LINE_BREAKING = frozenset({"br", "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td"})


def _text(element: HtmlElement) -> str:
    """The element's text, a space where a <br> or a block breaks the line
    ("Duhok<br>and Zakho" is "Duhok and Zakho", not "Duhokand Zakho")."""
    parts: list[str] = []

    def walk(node: HtmlElement) -> None:
        if isinstance(node.tag, str):  # not a comment or processing instruction
            breaks = node.tag.lower() in _LINE_BREAKING
            if breaks:
                parts.append(" ")
            parts.append(node.text or "")
            for child in node:
                walk(child)
                parts.append(child.tail or "")
            if breaks:
                parts.append(" ")
        else:
            for child in node:
                walk(child)

    walk(element)
    return clean_value("".join(parts))


#: an unmarked <time datetime> is the article's date only where the article's header is: the
#: first one inside the page's first <article>, not inside a link or list (related stories,
#: "latest news"; a forum's later posts are further <article>s)
ARTICLE_TIME = "(//article)[1]//time[@datetime][not(ancestor::a)][not(ancestor::li)]"


def _time_published(tree: HtmlElement) -> str | None:
    """The ``datetime`` of the <time> the page marks as published (itemprop, pubdate, class),
    else of the first unmarked <time> of the <article>: the publisher states both."""
    for time_el in tree.iter("time"):
        marked = (time_el.get("itemprop") or "").lower() == "datepublished"
        marked = marked or time_el.get("pubdate") is not None
        marked = marked or "published" in (time_el.get("class") or "").lower().split()
        if marked and time_el.get("datetime"):
            return time_el.get("datetime")
    for time_el in tree.xpath(ARTICLE_TIME):
        # a <time> marked as the modification date is not the publication date
        if (time_el.get("itemprop") or "").lower() == "datemodified":
            continue
        if {"updated", "modified"} & set((time_el.get("class") or "").lower().split()):
            continue
        return str(time_el.get("datetime"))
    return None


def _read_meta(tree: HtmlElement, found: Structured) -> None:
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip()
        content = clean_value(meta.get("content") or "")
        if not key or not content:
            continue
        key = key.lower()
        if key in AUTHOR_META:
            found.meta_authors.append(content)
        # first occurrence wins: later duplicates are usually from embedded widgets
        found.meta.setdefault(key, content)
    for link in tree.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        if "canonical" in rels and found.canonical is None and link.get("href"):
            found.canonical = link.get("href", "").strip()
    found.time_published = _time_published(tree)
    root = tree.getroottree().getroot()
    found.html_lang = (root.get("lang") or root.get("xml:lang") or "").strip() or None
    title = tree.find(".//title")
    if title is not None:
        found.title_tag = _text(title) or None
    h1 = tree.find(".//h1")
    if h1 is not None:
        found.h1 = _text(h1) or None
    found.headline_shown = _shown_headline(tree)
    found.dom_authors = _dom_authors(tree)


def _shown_headline(tree: HtmlElement) -> str | None:
    for xpath in SHOWN_HEADLINE_XPATHS:
        found = [e for e in tree.xpath(xpath) if isinstance(e, HtmlElement)]
        if found and (xpath != SHOWN_HEADLINE_XPATHS[-1] or len(found) == 1):
            text = _text(found[0]).strip(TITLE_EDGE_PUNCTUATION)
            if len(text.split()) >= MIN_SHOWN_HEADLINE_WORDS:
                return text
    return None


def _dom_authors(tree: HtmlElement) -> list[str]:
    scope = tree.find(".//article")
    names: list[str] = []
    for element in (scope if scope is not None else tree).xpath(DOM_AUTHOR_XPATH):
        if not isinstance(element, HtmlElement) or element.tag in ("meta", "link"):
            continue
        if element.xpath(NOT_A_BYLINE_XPATH):
            continue  # a photographer's credit, a commenter, a form label
        named = element.xpath(".//*[@itemprop='name']")
        # text nodes joined with spaces: "<span>Author</span>Andreas Kalt" is two words
        text = clean_value(" ".join((named[0] if named else element).itertext()))
        if text and len(text) <= MAX_DOM_AUTHOR_CHARS and text not in names:
            names.append(text)
        if len(names) >= MAX_DOM_AUTHORS:
            break
    return names


def _jsonld_nodes(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        raw = script.text or ""
        if not raw.strip() or len(raw) > MAX_JSONLD_CHARS:
            continue
        # Rails and older CMSes wrap the block in "//<![CDATA[ ... //]]>" or "<!-- ... -->"
        raw = _JSONLD_WRAPPER.sub("", raw)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
            # CMSes often emit JSON-LD with trailing commas or raw newlines: not worth repairing,
            # the meta tags carry the same facts.
            logger.debug("skipping invalid JSON-LD block (%s chars)", len(raw))
            continue
        yield from _walk(data)


def _walk(data: Any) -> Iterator[dict[str, Any]]:
    """Top-level nodes, ``@graph`` members and a WebPage's ``mainEntity`` (where some CMSes
    put the article), depth-first, without recursion."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            yield item
            for key in NESTED_NODE_KEYS:
                nested = item.get(key)
                if isinstance(nested, (dict, list)):
                    stack.append(nested)


def _types(node: dict[str, Any]) -> list[str]:
    value = node.get("@type")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _string(value: Any) -> str | None:
    if isinstance(value, str):
        return clean_value(value) or None
    if isinstance(value, list) and value:
        return _string(value[0])
    if isinstance(value, dict):
        for key in ("url", "name", "@value", "contentUrl"):
            if key in value:
                return _string(value[key])
    return None


def _names(value: Any, *, organisations: bool = False) -> list[str]:
    """Names of the people (or, with ``organisations``, of the organisations) in ``value``.

    A bare string counts as a person: schema.org says nothing, and bylines name people.
    """
    if isinstance(value, str):
        name = clean_value(value)
        return [name] if name and not organisations else []
    if isinstance(value, dict):
        is_organisation = any(t in ORGANISATION_TYPES for t in _types(value))
        if is_organisation != organisations:
            return []
        named = _string(value.get("name"))
        return [named] if named else []
    if isinstance(value, list):
        return [name for item in value for name in _names(item, organisations=organisations)]
    return []


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


def _read_jsonld_node(node: dict[str, Any], found: Structured) -> None:
    types = _types(node)
    if any(t in LISTING_TYPES for t in types):
        found.listing = True
    if types and any(t in ("WebSite", "Organization", "NewsMediaOrganization") for t in types):
        if found.publisher is None and "NewsMediaOrganization" in types:
            found.publisher = _string(node.get("name"))
        return
    if not any(t in ARTICLE_TYPES for t in types):
        return
    # several article nodes (e.g. a teaser list rendered as JSON-LD) - the first one describes
    # the page; the rest only count towards article_types.
    first = not found.article_types
    found.article_types.extend(t for t in types if t in ARTICLE_TYPES)
    if not first:
        return
    found.headline = _string(node.get("headline")) or _string(node.get("name"))
    found.jsonld_authors = _names(node.get("author"))
    found.jsonld_organisations = _names(node.get("author"), organisations=True)
    found.jsonld_published = _string(node.get("datePublished")) or _string(node.get("dateCreated"))
    found.jsonld_modified = _string(node.get("dateModified"))
    body = node.get("articleBody")
    found.article_body = body if isinstance(body, str) and body.strip() else None
    found.is_free = _bool(node.get("isAccessibleForFree"))
    if found.is_free is None:
        parts = node.get("hasPart")
        for part in parts if isinstance(parts, list) else [parts]:
            if isinstance(part, dict) and _bool(part.get("isAccessibleForFree")) is False:
                found.is_free = False
    publisher = node.get("publisher")
    if isinstance(publisher, dict):
        found.publisher = _string(publisher.get("name")) or found.publisher
    found.jsonld_image = _string(node.get("image")) or _string(node.get("thumbnailUrl"))
