"""Feed documents -> items: RSS 0.9x/1.0/2.0, Atom, JSON Feed, XML sitemaps (urlset,
sitemapindex, Google News). Pure functions: bytes in, :class:`ParsedFeed` out.

Safety first: XML goes through defusedxml before feedparser sees it, so entity expansion
(billion laughs) and external entities (XXE) are refused rather than parsed.
"""

from __future__ import annotations

import email.utils
import html
import json
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
import feedparser
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from services.fetcher.charset import detect_charset
from services.fetcher.dates import dateparser_budget, parse_feed_date
from services.fetcher.urls import normalize_url
from shared.errors import PermanentError
from shared.messages import clean_text

logger = logging.getLogger(__name__)

#: MIME types a <link rel="alternate"> may carry for a feed.
FEED_LINK_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+json",
    "application/json",
    "application/xml",
    "text/xml",
)
#: Tried in order when a home page advertises no feed.
COMMON_FEED_PATHS = (
    "/feed",
    "/rss",
    "/rss.xml",
    "/feed.xml",
    "/atom.xml",
    "/index.xml",
    "/feeds/posts/default",
    "/?feed=rss2",
    "/news-sitemap.xml",
    "/sitemap_news.xml",
)
#: sy:updatePeriod values, in seconds.
UPDATE_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 7 * 86400.0,
    "monthly": 30 * 86400.0,
    "yearly": 365 * 86400.0,
}
MAX_SUMMARY_CHARS = 2000
MAX_TITLE_CHARS = 500
#: Dates further ahead than this are publisher clock or timezone bugs; drop them.
FUTURE_DATE_TOLERANCE = timedelta(hours=26)
#: Child sitemaps of a sitemapindex polled per cycle (newest first).
MAX_CHILD_SITEMAPS = 3

_ENTITY_DECL = re.compile(rb"<!ENTITY\s+(%\s*)?[^\s>]+\s+(SYSTEM|PUBLIC)?", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_XML_ENCODING_BYTES = re.compile(rb"""(^\s*<\?xml[^>]*?)encoding\s*=\s*["'][A-Za-z0-9._:-]+["']""")
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)


@dataclass(frozen=True, slots=True)
class FeedItem:
    url: str
    title: str | None = None
    published_at: datetime | None = None
    summary: str | None = None
    authors: tuple[str, ...] = ()
    guid: str | None = None


@dataclass(slots=True)
class ParsedFeed:
    kind: str  # rss20, rss10, rss091u, atom10, json, sitemap, news_sitemap, sitemapindex, …
    title: str | None = None
    site_url: str | None = None
    items: list[FeedItem] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    #: The publisher's own "poll no more often than" hint (TTL, sy:updatePeriod), seconds.
    min_interval_hint_s: float | None = None
    #: Why the document was only partly parseable (feedparser's bozo), if it was.
    recovered_error: str | None = None
    #: Why item links were refused and never fetched (``not an http(s) URL: 'file:///…'``),
    #: one entry per refused item, so the poll can say so in the feed's status.
    refused: list[str] = field(default_factory=list)
    #: Text cleaned on the way in (NUL, C0 controls, lone surrogates: PostgreSQL and the
    #: topics cannot carry them), as ``item 3 title: 1 NUL``; shown in the feed's status.
    cleaned: list[str] = field(default_factory=list)


def _text(value: Any, limit: int) -> str | None:
    if not value:
        return None
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", str(value)))).strip()
    return text[:limit] or None


#: An item date earlier than this is a placeholder, not a publication date: CMSs write
#: 0001-01-01 and 1970-01-01 (Unix time 0) for "no date", and feeds began in the late 1990s.
#: (Here, not in ``dates.py``: reading "Thu, 01 Jan 0100" as year 100 is right for a parser.)
EARLIEST_ITEM_DATE = datetime(1990, 1, 1, tzinfo=UTC)


def _future_safe(when: datetime | None, now: datetime) -> datetime | None:
    """*when*, or None when it is in the future (beyond the tolerance) or a placeholder."""
    if when is None or when > now + FUTURE_DATE_TOLERANCE or when < EARLIEST_ITEM_DATE:
        return None
    return when


def check_xml_safety(body: bytes) -> Element | None:
    """Refuse entity tricks; return the parsed root, or None if the XML is malformed.

    Raises PermanentError(kind="xxe") for external entities and (kind="xml_bomb") for any
    other entity declaration: real feeds do not declare entities, and defusedxml may never
    see a declaration in a document that is malformed before it.
    """
    decl = _ENTITY_DECL.search(body[:65536])
    if decl is not None:
        kind = "xxe" if decl.group(2) else "xml_bomb"
        raise PermanentError(f"feed declares XML entities ({kind}); refused", kind=kind)
    try:
        return safe_et.fromstring(
            body, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except ExternalReferenceForbidden as exc:
        raise PermanentError(f"feed references external XML entities: {exc}", kind="xxe") from exc
    except (EntitiesForbidden, DTDForbidden) as exc:
        raise PermanentError(f"feed declares XML entities: {exc}", kind="xml_bomb") from exc
    except ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _child(el: Element, name: str) -> Element | None:
    for sub in el:
        if _local(sub.tag) == name:
            return sub
    return None


def _parse_sitemap(root: Element, *, url: str, now: datetime) -> ParsedFeed:
    kind = _local(root.tag)
    if kind == "sitemapindex":
        children: list[tuple[str, str]] = []
        for sm in root:
            loc = _child(sm, "loc")
            loc_raw = (loc.text or "").strip() if loc is not None else ""
            if not loc_raw:
                continue
            lastmod = _child(sm, "lastmod")
            children.append(((lastmod.text or "") if lastmod is not None else "", loc_raw))
        children.sort(reverse=True)  # ISO dates sort lexically; newest first
        sitemaps = []
        for _, loc_text in children:
            try:
                sitemaps.append(normalize_url(loc_text, base=url))
            except ValueError:
                continue
        return ParsedFeed(kind="sitemapindex", sitemaps=sitemaps)
    items: list[FeedItem] = []
    refused: list[str] = []
    is_news = False
    for entry in root:
        if _local(entry.tag) != "url":
            continue
        loc = _child(entry, "loc")
        loc_raw = (loc.text or "").strip() if loc is not None else ""
        if not loc_raw:
            continue
        link = _item_link(loc_raw, base=url, refused=refused)
        if link is None:
            continue
        title = None
        published = None
        news = _child(entry, "news")
        if news is not None:
            is_news = True
            title_el = _child(news, "title")
            title = _text(title_el.text if title_el is not None else None, MAX_TITLE_CHARS)
            date_el = _child(news, "publication_date")
            published = parse_feed_date(date_el.text if date_el is not None else None)
        if published is None:
            lastmod = _child(entry, "lastmod")
            published = parse_feed_date(lastmod.text if lastmod is not None else None)
        items.append(FeedItem(url=link, title=title, published_at=_future_safe(published, now)))
    return ParsedFeed(kind="news_sitemap" if is_news else "sitemap", items=items, refused=refused)


def _parse_json_feed(data: dict[str, Any], *, url: str, now: datetime) -> ParsedFeed:
    base = data.get("feed_url") or url
    items: list[FeedItem] = []
    refused: list[str] = []
    for entry in data.get("items") or []:
        if not isinstance(entry, dict):
            continue
        raw = entry.get("url") or entry.get("external_url")
        if not isinstance(raw, str):
            continue
        link = _item_link(raw, base=base if isinstance(base, str) else url, refused=refused)
        if link is None:
            continue
        authors = entry.get("authors") or ([entry["author"]] if entry.get("author") else [])
        names = tuple(str(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name"))
        items.append(
            FeedItem(
                url=link,
                title=_text(entry.get("title"), MAX_TITLE_CHARS),
                published_at=_future_safe(
                    parse_feed_date(entry.get("date_published"))
                    or parse_feed_date(entry.get("date_modified")),
                    now,
                ),
                summary=_text(
                    entry.get("summary") or entry.get("content_text") or entry.get("content_html"),
                    MAX_SUMMARY_CHARS,
                ),
                authors=names,
                guid=str(entry["id"]) if entry.get("id") is not None else None,
            )
        )
    home = data.get("home_page_url")
    return ParsedFeed(
        kind="json",
        title=_text(data.get("title"), MAX_TITLE_CHARS),
        site_url=home if isinstance(home, str) else None,
        items=items,
        refused=refused,
    )


#: Longest item URL taken, in UTF-8 bytes: the sitemap protocol's limit. PostgreSQL's btree
#: indexes (seen_links.url, articles.canonical_url) refuse keys over ~2,700 bytes, so a
#: 9,000-character link was refused only at the insert, as "not stored (Error)".
MAX_ITEM_URL_BYTES = 2048
#: Characters of a refused over-long URL quoted in the feed's status.
QUOTED_URL_CHARS = 120


def _item_link(raw: str, *, base: str, refused: list[str]) -> str | None:
    """The normalised item URL, or None with the reason added to *refused* (never fetched)."""
    try:
        link = normalize_url(raw, base=base)
    except ValueError as exc:
        refused.append(str(exc))
        return None
    size = len(link.encode("utf-8", "replace"))
    if size > MAX_ITEM_URL_BYTES:
        refused.append(
            f"URL of {size} bytes, over {MAX_ITEM_URL_BYTES}: {link[:QUOTED_URL_CHARS]}…"
        )
        return None
    return link


def _is_web_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def _entry_link(entry: Any) -> str | None:
    """The item's article URL: its alternate link, else an http(s) id (Atom entries and RSS
    guids that are URLs but carry no <link>). feedparser already resolved both against
    xml:base (item, channel, feed) and then the document URL."""
    original = entry.get("feedburner_origlink")  # the article behind a feedproxy link
    if _is_web_url(original):
        return str(original).strip()
    link = entry.get("link")
    if isinstance(link, str) and link.strip():
        return link.strip()
    for candidate in entry.get("links") or ():
        href = candidate.get("href") if isinstance(candidate, dict) else None
        if href and candidate.get("rel", "alternate") == "alternate":
            return str(href).strip()
    entry_id = entry.get("id")
    return entry_id.strip() if _is_web_url(entry_id) else None


def _entry_date(entry: Any) -> datetime | None:
    """published (pubDate, dcterms:issued), else updated (dc:date, atom:updated,
    dcterms:modified), else created; parsed by :mod:`services.fetcher.dates`."""
    for key in ("published", "updated", "created"):
        # dict.get: feedparser's own get maps a missing "updated" to "published" (with a
        # DeprecationWarning), which read an unreadable date twice
        when = parse_feed_date(dict.get(entry, key))
        if when is not None:
            return when
    return None


def _entry_summary(entry: Any) -> str | None:
    summary = entry.get("summary")
    if summary:
        return str(summary)
    for content in entry.get("content") or ():
        value = content.get("value") if isinstance(content, dict) else None
        if value:
            return str(value)
    return None


def _entry_authors(entry: Any) -> tuple[str, ...]:
    """Author names. feedparser splits ``email (Name)`` and ``Name <email>``, but its e-mail
    pattern allows only 2-4 letter top-level domains: ``desk@rudaw.online (Desk)`` becomes
    the name ``ne (Desk`` and the e-mail ``desk@rudaw.onli``. So the raw RSS author string
    is split again with :func:`email.utils.parseaddr` and overrides what it truncated; an
    author that is only an e-mail address has no name to keep."""
    fixed_name, fixed_addr = "", ""
    raw = entry.get("author")
    if isinstance(raw, str) and "@" in raw:
        fixed_name, fixed_addr = email.utils.parseaddr(raw)
    names: list[str] = []
    for author in entry.get("authors") or ():
        if not isinstance(author, dict):
            continue
        name = str(author.get("name") or "").strip()
        mail = str(author.get("email") or "")
        if fixed_addr and mail and fixed_addr.startswith(mail):
            name = fixed_name.strip()
        if name and "@" not in name:
            names.append(name)
    if not names and isinstance(raw, str) and raw.strip() and "@" not in raw:
        names.append(raw.strip())
    return tuple(dict.fromkeys(names))


def _strip_leading_space(body: bytes) -> bytes:
    """Blank lines before ``<?xml`` (PHP templates and WordPress plugins print them) make the
    document not well-formed: expat refuses it, and a sitemap was lost whole. Feed readers
    skip them; so do we (a UTF-8 BOM goes too: UTF-8 is XML's default)."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    stripped = body.lstrip(b" \t\r\n")
    return stripped if stripped.startswith(b"<") else body


def _readable_encoding(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """``(body, content_type)`` that feedparser will decode right.

    A feed whose bytes do not decode in the charset it declares (or in UTF-8 when it
    declares none) is a server that lies: feedparser then falls back to windows-1252, and
    a windows-1254 Turkish feed comes out as "Þýrnak". Such a body is sniffed (the same
    detector as pages, which prefers the corpus's regional charsets) and re-encoded as UTF-8.
    """
    if body.startswith(b"\xef\xbb\xbf"):
        return body, content_type  # a BOM is the strongest declaration there is
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        # UTF-16 (BOM-declared) becomes UTF-8, so the byte-level cleaning that follows
        # (neutralise_charrefs) sees its references: "&#xD800;" in a UTF-16 feed crashed
        # feedparser. Undecodable UTF-16 is left to feedparser as it is.
        try:
            text = body.decode("utf-16").removeprefix("\ufeff")
        except UnicodeDecodeError:
            return body, content_type
        utf8 = _XML_ENCODING_BYTES.sub(rb'\1encoding="utf-8"', text.encode("utf-8"), count=1)
        return utf8, (content_type or "application/xml").split(";", 1)[0]
    head = body[:512]
    decl = _XML_ENCODING.search(head)
    header = _HEADER_CHARSET.search(content_type or "")
    declared = decl.group(1).decode("ascii") if decl else (header.group(1) if header else None)
    try:
        body.decode(declared or "utf-8")
        return body, content_type
    except (UnicodeDecodeError, LookupError):
        pass
    # The false declaration goes first: charset_normalizer would take it as a hint.
    undeclared = _XML_ENCODING_BYTES.sub(rb'\1encoding="utf-8"', body, count=1)
    codec, _source = detect_charset(_XML_ENCODING_BYTES.sub(rb"\1", body, count=1), None)
    text = undeclared.decode(codec, errors="replace")
    logger.info("feed bytes are not in their declared charset %s; read as %s", declared, codec)
    ctype = (content_type or "application/xml").split(";", 1)[0]
    return text.encode("utf-8"), ctype


#: A numeric character reference, as feedparser's loose parser matches it (``;`` required).
_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
#: More digits than any code point needs: the reference cannot name a character.
_MAX_CHARREF_DIGITS = 8


def _charref_code_point(match: re.Match[bytes]) -> int | None:
    hex_digits, dec_digits = match.groups()
    digits = (hex_digits or dec_digits).lstrip(b"0") or b"0"
    if len(digits) > _MAX_CHARREF_DIGITS:
        return None
    return int(digits, 16 if hex_digits else 10)


def neutralise_charrefs(body: bytes) -> tuple[bytes, int]:
    """``(body, count)``: references to code points no text can hold (lone surrogates such
    as ``&#xD800;``, beyond U+10FFFF) replaced by ``&#xFFFD;``, as HTML reads them.

    feedparser's loose parser runs ``chr(n).encode("utf-8")`` on every reference, so one
    ``&#xD800;`` in one item used to fail the whole feed (UnicodeEncodeError). Only
    ASCII-compatible bodies are rewritten; a UTF-16 body passes through unchanged.
    """
    count = 0

    def replace_unholdable(match: re.Match[bytes]) -> bytes:
        nonlocal count
        code = _charref_code_point(match)
        if code is None or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            count += 1
            return b"&#xFFFD;"
        return match.group(0)

    if b"&#" not in body:  # the common case: no copy
        return body, 0
    return _CHARREF.sub(replace_unholdable, body), count


#: Raw bytes XML 1.0 forbids (C0 controls other than tab, LF, CR).
_XML_FORBIDDEN_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XML_ALLOWED_CONTROLS = (0x09, 0x0A, 0x0D)


def xml_chars_cleaned(body: bytes) -> tuple[bytes, str | None]:
    """``(body, note)`` with what makes XML not well-formed although every tag is right
    removed: raw C0 control bytes and references to them (``&#0;``) dropped, references to
    no character (``&#xD800;``, ``&#xFFFE;``) made U+FFFD. ``note`` says what, None if
    nothing. For ASCII-compatible bodies (sitemaps are UTF-8)."""
    body, raw = _XML_FORBIDDEN_BYTES.subn(b"", body)
    refs = 0

    def replace_forbidden(match: re.Match[bytes]) -> bytes:
        nonlocal refs
        code = _charref_code_point(match)
        if code is not None and code < 0x20 and code not in _XML_ALLOWED_CONTROLS:
            refs += 1
            return b""
        if code is None or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF) or code > 0x10FFFF:
            refs += 1
            return b"&#xFFFD;"
        return match.group(0)

    if b"&#" in body:
        body = _CHARREF.sub(replace_forbidden, body)
    parts = [f"{n} {what}" for n, what in ((raw, "control byte"), (refs, "bad reference")) if n]
    return body, ", ".join(parts) or None


def run_feedparser(body: bytes, *, url: str, content_type: str | None) -> Any:
    """feedparser's result for a document already checked by :func:`check_xml_safety`.

    The document URL goes in as Content-Location, so relative links resolve against
    xml:base on the feed, channel and item elements first, then the document's URL.
    """
    return feedparser.parse(
        body,
        response_headers={
            "content-location": url,
            "content-type": content_type or "application/xml",
        },
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def entry_item(entry: Any, *, url: str, now: datetime) -> FeedItem:
    """A feedparser entry's fields as newsflow keeps them (text, one UTC date, names)."""
    guid = entry.get("id")
    return FeedItem(
        url=url,
        title=_text(entry.get("title"), MAX_TITLE_CHARS),
        published_at=_future_safe(_entry_date(entry), now),
        summary=_text(_entry_summary(entry), MAX_SUMMARY_CHARS),
        authors=_entry_authors(entry),
        guid=(guid.strip() or None) if isinstance(guid, str) else None,
    )


def _interval_hint(feed: Any) -> float | None:
    hints: list[float] = []
    ttl = feed.get("ttl")
    if ttl and str(ttl).strip().isdigit():
        hints.append(int(str(ttl).strip()) * 60.0)
    period = UPDATE_PERIODS.get(str(feed.get("sy_updateperiod") or "").strip().lower())
    if period:
        freq_raw = str(feed.get("sy_updatefrequency") or "1").strip()
        freq = int(freq_raw) if freq_raw.isdigit() and int(freq_raw) > 0 else 1
        hints.append(period / freq)
    return max(hints) if hints else None


def _not_a_feed(url: str, content_type: str | None, what: str) -> PermanentError:
    return PermanentError(
        f"expected a feed at {url} but got {what} (content-type {content_type or 'missing'}); "
        "if this is a site's home page, run `newsflow feeds discover URL` to find its feeds",
        kind="not_a_feed",
    )


def parse_feed(
    body: bytes, *, url: str, content_type: str | None = None, now: datetime | None = None
) -> ParsedFeed:
    """Parse a feed or sitemap document fetched from ``url``.

    Item URLs are resolved against the feed and normalised. Raises PermanentError with kind
    ``not_a_feed`` (HTML or unrecognised document), ``xml_bomb`` or ``xxe``. A malformed feed
    whose items can still be recovered returns them, with ``recovered_error`` set. Text that
    PostgreSQL or the topics cannot carry is cleaned here, where it enters, and listed in
    ``cleaned``.
    """
    with dateparser_budget():
        parsed = _parse_document(body, url=url, content_type=content_type, now=now)
    return _clean_parsed(parsed)


def _clean_field(value: str | None, where: str, notes: list[str]) -> str | None:
    if value is None:
        return None
    cleaned, note = clean_text(value)
    if note:
        notes.append(f"{where}: {note}")
    return cleaned


def _clean_parsed(parsed: ParsedFeed) -> ParsedFeed:
    notes: list[str] = []
    parsed.title = _clean_field(parsed.title, "feed title", notes)
    parsed.site_url = _clean_field(parsed.site_url, "feed link", notes)
    items = []
    for n, item in enumerate(parsed.items):
        where = f"item {n + 1}"
        items.append(
            replace(
                item,
                title=_clean_field(item.title, f"{where} title", notes),
                summary=_clean_field(item.summary, f"{where} summary", notes),
                guid=_clean_field(item.guid, f"{where} guid", notes),
                authors=tuple(
                    _clean_field(a, f"{where} author", notes) or "" for a in item.authors
                ),
            )
        )
    parsed.items = items
    parsed.refused = [clean_text(r)[0] for r in parsed.refused]
    parsed.cleaned.extend(notes)
    return parsed


def _parse_document(
    body: bytes, *, url: str, content_type: str | None, now: datetime | None
) -> ParsedFeed:
    now = now or datetime.now(UTC)
    body = _strip_leading_space(body)
    head = body[:1024].removeprefix(b"\xef\xbb\xbf").lstrip()
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if head.startswith(b"{") or ctype in ("application/feed+json", "application/json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" 5,000 deep
            raise _not_a_feed(url, content_type, f"invalid JSON ({exc})") from exc
        version = data.get("version") if isinstance(data, dict) else None
        if not (isinstance(version, str) and "jsonfeed.org" in version):
            raise _not_a_feed(url, content_type, "JSON that is not a JSON Feed")
        return _parse_json_feed(data, url=url, now=now)
    if _HTML_START.match(body[:4096]):
        raise _not_a_feed(url, content_type, "an HTML page")
    root = check_xml_safety(body)
    if root is None:
        # One control byte or bad reference in one <loc> made expat refuse the document, and
        # feedparser does not read sitemaps: the whole sitemap was lost for one item.
        cleaned_body, note = xml_chars_cleaned(body)
        retried = check_xml_safety(cleaned_body) if note else None
        if retried is not None and _local(retried.tag) in ("urlset", "sitemapindex"):
            parsed = _parse_sitemap(retried, url=url, now=now)
            parsed.cleaned.append(f"document: {note}")
            return parsed
    if root is not None:
        tag = _local(root.tag)
        if tag in ("urlset", "sitemapindex"):
            return _parse_sitemap(root, url=url, now=now)
        if tag == "html":
            raise _not_a_feed(url, content_type, "an XHTML page")
    body, content_type = _readable_encoding(body, content_type)
    body, unholdable = neutralise_charrefs(body)
    parsed = run_feedparser(body, url=url, content_type=content_type)
    if not parsed.version and not parsed.entries:
        if ctype in ("text/html", "application/xhtml+xml"):
            raise _not_a_feed(url, content_type, "an HTML page")
        raise _not_a_feed(
            url, content_type, "a document that is not RSS, Atom, JSON Feed or a sitemap"
        )
    items: list[FeedItem] = []
    refused: list[str] = []
    for entry in parsed.entries:
        raw = _entry_link(entry)
        if not raw:
            continue
        link = _item_link(raw, base=url, refused=refused)
        if link is None:
            continue
        items.append(entry_item(entry, url=link, now=now))
    recovered = None
    if parsed.bozo:
        problem = parsed.get("bozo_exception")
        # feedparser flags harmless charset mismatches as bozo too; only report real breakage.
        if problem is not None and not isinstance(problem, feedparser.CharacterEncodingOverride):
            recovered = f"{type(problem).__name__}: {problem}"[:500]
    site = parsed.feed.get("link")
    return ParsedFeed(
        cleaned=[f"document: {unholdable} character reference(s) to no character"]
        if unholdable
        else [],
        kind=parsed.version or "unknown",
        title=_text(parsed.feed.get("title"), MAX_TITLE_CHARS),
        site_url=site if isinstance(site, str) else None,
        items=items,
        min_interval_hint_s=_interval_hint(parsed.feed),
        recovered_error=recovered,
        refused=refused,
    )


def discover_feed_links(page: bytes | str, *, base_url: str) -> list[str]:
    """Feed URLs a home page advertises with ``<link rel="alternate" type=…feed…>``."""
    import lxml.html  # deferred: only the discovery path needs lxml

    try:
        doc = lxml.html.fromstring(page)
    except (ValueError, lxml.etree.ParserError):
        return []
    found: dict[str, None] = {}
    for link in doc.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        ltype = (link.get("type") or "").split(";", 1)[0].strip().lower()
        href = link.get("href")
        if "alternate" in rel and ltype in FEED_LINK_TYPES and href:
            try:
                found.setdefault(normalize_url(href, base=base_url), None)
            except ValueError:
                continue
    return list(found)
