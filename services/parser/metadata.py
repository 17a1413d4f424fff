"""Metadata: title, authors, dates (with their source), language, site, image, canonical URL.

Every function here is pure; the pipeline feeds it what :mod:`structured` read from the page.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from services.parser.clean import normalise_key

#: separators between a headline and the site name in <title>/og:title
TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ", " » ", " / ")
#: author strings that are roles or placeholders, not people (compared by normalise_key)
AUTHOR_JUNK = frozenset(
    {
        "admin",
        "administrator",
        "editor",
        "editors",
        "editorial",
        "editorial team",
        "editorial board",
        "staff",
        "staff writer",
        "staff reporter",
        "news desk",
        "newsdesk",
        "web desk",
        "online desk",
        "digital desk",
        "desk",
        "newsroom",
        "team",
        "unknown",
        "guest",
        "guest author",
        "contributor",
        "correspondent",
        "our correspondent",
        "agencies",
        "agency",
        "news agencies",
        "wire services",
        "haber merkezi",
        "by",
    }
)
#: prefixes stripped from author strings
AUTHOR_PREFIXES = re.compile(
    r"^(?:by|written by|reporting by|words by|author|authors|yazar|von|par|por)\s*[:\-]?\s+",
    re.IGNORECASE,
)
AUTHOR_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\bwith\b|&|\bve\b|\||\s[-–—]\s)\s*")
MAX_AUTHOR_WORDS = 5
#: query parameters that only track campaigns or clicks: never part of an article's identity
TRACKING_PARAMS = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_ga|_gl|ocid|cmpid"
    r"|ref|ref_src|referrer|source|src|smid|share|taid|at_medium|at_campaign|ito|int_source)$",
    re.IGNORECASE,
)
#: what AMP variants append to an article path (".../story/amp"): not a section page
AMP_SUFFIXES = frozenset({"amp", "amp.html", "amp/"})
#: two-letter ccTLDs with a public second level (com.tr, co.uk, gov.iq ...)
SECOND_LEVELS = frozenset({"com", "co", "org", "net", "gov", "ac", "edu", "gen", "bel", "web"})
_URL_DATE = (
    re.compile(r"/((?:19|20)\d{2})[/-](\d{1,2})[/-](\d{1,2})(?:[/-]|$)"),
    re.compile(r"/((?:19|20)\d{2})(\d{2})(\d{2})(?:/|[-_]|$)"),
)

#: a clock skew allowance: a date this far ahead of "now" is still accepted
FUTURE_SKEW = timedelta(hours=1)
#: published dates further than this before the URL was first seen are rejected
DEFAULT_MAX_DATE_LAG = timedelta(days=365)
#: a published date may differ this much from the date in the URL (time zones)
URL_DATE_TOLERANCE = timedelta(days=1, hours=14)
#: py3langid is unreliable below this ("PKK attack" comes out as Swedish)
MIN_LANGUAGE_CHARS = 200
MAX_LANGUAGE_CHARS = 1500
#: py3langid labels -> the code we publish. Its "sdh" (Southern Kurdish) is what it answers
#: for Arabic-script Kurdish, which in this corpus is Sorani (Central Kurdish, "ckb").
LANGUAGE_FIXES = {"sdh": "ckb"}


# --- title -------------------------------------------------------------------------------------


def strip_site_suffix(title: str, *, site_names: Iterable[str]) -> str:
    """``"Headline | Site"`` -> ``"Headline"`` when the cut-off part is a known site name."""
    keys = {normalise_key(name) for name in site_names if name}
    keys |= {key.replace(" ", "") for key in keys}
    keys.discard("")
    for separator in TITLE_SEPARATORS:
        if separator not in title:
            continue
        head, _, tail = title.rpartition(separator)
        tail_key = normalise_key(tail)
        if head and (tail_key in keys or tail_key.replace(" ", "") in keys):
            return strip_site_suffix(head.strip(), site_names=site_names)
        first, _, rest = title.partition(separator)
        first_key = normalise_key(first)
        if rest and (first_key in keys or first_key.replace(" ", "") in keys):
            return strip_site_suffix(rest.strip(), site_names=site_names)
    return title


def choose_title(candidates: Iterable[str | None], *, site_names: Iterable[str]) -> str | None:
    """The first non-empty candidate, without the site-name suffix."""
    names = list(site_names)
    titles = [
        strip_site_suffix(" ".join(c.split()), site_names=names)
        for c in candidates
        if c and c.strip()
    ]
    titles = [t for t in titles if t]
    for title in titles:
        stem = title.removesuffix("…").removesuffix("...").rstrip()
        if stem != title:
            # JSON-LD headlines are often cut at 110 characters: prefer a full version
            full = (t for t in titles if t.startswith(stem) and not t.endswith(("…", "...")))
            longer = next((t for t in full if len(t) > len(stem)), None)
            if longer:
                return longer
        return title
    return None


# --- authors -----------------------------------------------------------------------------------

_DATEISH = re.compile(r"\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d")


def clean_authors(raw: Iterable[str], *, site_names: Iterable[str]) -> list[str]:
    """People's names from author strings: no "By", dates, site names, roles, URLs or e-mails."""
    site_keys = {normalise_key(name) for name in site_names if name}
    site_keys |= {key.replace(" ", "") for key in site_keys}
    names: list[str] = []
    seen: set[str] = set()
    for value in raw:
        value = unicodedata.normalize("NFC", " ".join(value.split()))
        if not value or "://" in value or value.startswith("www."):
            continue
        for part in AUTHOR_SPLIT.split(AUTHOR_PREFIXES.sub("", value)):
            name = AUTHOR_PREFIXES.sub("", part.strip(" \t.:,;-–—|()[]\"'"))
            key = normalise_key(name)
            if (
                not key
                or key in seen
                or key in AUTHOR_JUNK
                or key in site_keys
                or key.replace(" ", "") in site_keys
                or "@" in name
                or _DATEISH.search(name.lower())
                or len(key.split()) > MAX_AUTHOR_WORDS
                # one lowercase word is a handle or a role ("admin2", "haber"), not a name
                or (len(key.split()) == 1 and name.islower())
            ):
                continue
            if name.isupper() and len(name) > 3:
                name = name.title()
            seen.add(key)
            names.append(name)
    return names


# --- dates -------------------------------------------------------------------------------------


def parse_datetime(value: str | datetime | None) -> datetime | None:
    """ISO 8601 or RFC 2822 -> aware UTC datetime; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed: datetime | None = value
    else:
        text = value.strip()
        if not text:
            return None
        parsed = None
        try:
            parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def url_date(url: str) -> date | None:
    """The ``/YYYY/MM/DD/`` (or ``/YYYYMMDD/``) date in an article URL, if any."""
    path = urlsplit(url).path
    for pattern in _URL_DATE:
        match = pattern.search(path)
        if match:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                continue
    return None


@dataclass(frozen=True, slots=True)
class Dates:
    published_at: datetime | None = None
    published_source: str | None = None
    modified_at: datetime | None = None
    modified_source: str | None = None
    rejected: tuple[tuple[str, str, str], ...] = ()  # (source, value, why) for the log


DateCandidate = tuple[str, str | datetime | Callable[[], str | None] | None]


def choose_dates(
    published: Iterable[DateCandidate],
    modified: Iterable[DateCandidate],
    *,
    now: datetime,
    first_seen: datetime | None,
    in_url: date | None,
    max_lag: timedelta = DEFAULT_MAX_DATE_LAG,
) -> Dates:
    """Pick the first valid candidate of each list (sources in priority order).

    A candidate value may be a zero-argument callable, evaluated only when reached (htmldate is
    comparatively slow and only needed when nothing better exists). Rejected: unparseable,
    after ``now`` (+1 h skew), more than ``max_lag`` before ``first_seen``, more than ~1.5 days
    away from the date in the URL; a modified date before the published date.
    """
    rejected: list[tuple[str, str, str]] = []

    def valid(
        source: str, value: str | datetime | None, *, after: datetime | None
    ) -> datetime | None:
        parsed = parse_datetime(value)
        if parsed is None:
            if value:
                rejected.append((source, str(value), "unparseable"))
            return None
        why = None
        if parsed > now + FUTURE_SKEW:
            why = "future"
        elif first_seen is not None and parsed < first_seen - max_lag:
            why = "before_first_seen"
        elif after is not None and parsed < after:
            why = "before_published"
        elif after is None and in_url is not None and source != "url":
            # only the published date must agree with the URL; updates come days later
            midday = datetime(in_url.year, in_url.month, in_url.day, 12, tzinfo=UTC)
            if abs(parsed - midday) > URL_DATE_TOLERANCE:
                why = "conflicts_with_url"
        if why:
            rejected.append((source, parsed.isoformat(), why))
            return None
        return parsed

    def first(
        candidates: Iterable[DateCandidate], *, after: datetime | None = None
    ) -> tuple[datetime | None, str | None]:
        for source, value in candidates:
            if callable(value):
                value = value()
            parsed = valid(source, value, after=after)
            if parsed is not None:
                return parsed, source
        return None, None

    published_at, published_source = first(published)
    modified_at, modified_source = first(modified, after=published_at)
    return Dates(published_at, published_source, modified_at, modified_source, tuple(rejected))


# --- language ----------------------------------------------------------------------------------


def detect_language(text: str, *, min_chars: int = MIN_LANGUAGE_CHARS) -> str | None:
    """ISO 639-1 code of ``text`` (py3langid), or None when the text is too short to tell."""
    if len(text) < min_chars:
        return None
    import py3langid  # deferred: it loads its model on first use (~1 s), not at import

    # the first few thousand characters decide as well as the whole text, at a fraction of
    # the cost (py3langid is linear in the input)
    language, _score = py3langid.classify(text[:MAX_LANGUAGE_CHARS])
    return LANGUAGE_FIXES.get(str(language), str(language))


# --- URLs --------------------------------------------------------------------------------------


def normalise_url(url: str) -> str:
    """Lower-case scheme/host, no default port, no fragment, no tracking parameters."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = (
        parts.port
        if parts.port and (scheme, parts.port) not in (("http", 80), ("https", 443))
        else None
    )
    netloc = f"{host}:{port}" if port else host
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not TRACKING_PARAMS.match(k)
        ]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def site_of(host: str) -> str:
    """Registrable part of a host, approximately (no public-suffix list needed for news sites)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in SECOND_LEVELS:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def choose_canonical(candidate: str | None, *, final_url: str) -> str:
    """``rel=canonical`` when it is same-site and sane, else the normalised final URL.

    Not sane: not http(s); the site's home page; a parent of the final URL's path (a section
    page: a common CMS bug puts the section's canonical on every article).
    """
    final = normalise_url(final_url)
    if not candidate:
        return final
    absolute = normalise_url(urljoin(final_url, candidate.strip()))
    parts, final_parts = urlsplit(absolute), urlsplit(final)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return final
    if site_of(parts.hostname) != site_of(final_parts.hostname or ""):
        return final
    path = parts.path.rstrip("/")
    if not path:
        return final
    final_path = final_parts.path.rstrip("/")
    if (
        final_path != path
        and final_path.startswith(path + "/")
        and final_path.removeprefix(path + "/") not in AMP_SUFFIXES
    ):
        return final
    return absolute


def absolute_http_url(value: str | None, *, base: str) -> str | None:
    if not value:
        return None
    url = urljoin(base, value.strip())
    return url if urlsplit(url).scheme in ("http", "https") else None


def host_site_name(host: str) -> str:
    return host.lower().removeprefix("www.")
