"""Metadata: title, authors, dates (with their source), language, site, image, canonical URL.

Every function here is pure; the pipeline feeds it what :mod:`structured` read from the page.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from services.parser.clean import NEWS_AGENCIES, normalise_key

#: separators between a headline and the site name in <title>/og:title. Bars, double colons,
#: middots and guillemets separate even without spaces; dashes and slashes only with spaces
#: around them ("Erbil-Baghdad talks", "24/7").
TITLE_SEPARATORS = ("|", "::", "·", "•", "»", "«", " - ", " – ", " — ", " / ", " ~ ")
#: what an empty kicker leaves at a title's edges
TITLE_EDGE_PUNCTUATION = " :|·•/"  # not dashes: "- Quote" opens a quotation in Nordic copy
#: the part cut from a title must look like a name, not a second headline
MAX_SITE_NAME_WORDS = 6
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
        "agenturen",
        "agency",
        "news agencies",
        "wire services",
        "haber merkezi",
        "by",
        "von",
        "par",
        "por",
        "av",
        "door",
        "yazan",
    }
)
#: prefixes stripped from author strings
AUTHOR_PREFIXES = re.compile(
    r"^(?:by|written by|reporting by|words by|posted by|published by|post author(?: by)?"
    r"|authors?|autor(?:in)?|geschrieben von|veröffentlicht von|vom|yazar|muhabir|von|par|por"
    r"|~)\s*[:\-]?\s+",
    re.IGNORECASE,
)
#: "and"/"with" in the languages of the pages we read (en, de, fr, es/pt/it, nl, nordic, tr)
AUTHOR_SPLIT = re.compile(
    r"\s*(?:,|;|&|\||/|\s[-–—]\s|\b(?:and|with|und|mit|et|avec|y|e|con|en|og|och|ve|ile)\b)\s*",
    re.IGNORECASE,
)
#: author values that credit a photo or a source, not a writer ("Foto: X", "Quelle: dpa")
AUTHOR_CREDIT = re.compile(
    r"^(?:(?:photo|foto|image|bild|picture|quelle|source|kaynak|credit)s?\s*:"
    r"|(?:photo|image|picture)(?:graph)?\s+by\s)",
    re.IGNORECASE,
)
#: words that make an author string an organisation ("Haber Ajansı", "وكالة ...", "Rudaw TV")
ORGANISATION_WORDS = re.compile(
    r"\b(?:agency|ajans[ıi]?|press|news|media|network|tv|television|radio|channel|group"
    r"|newspaper|gazetesi|wire)\b|^(?:وكالة|شبكة|قناة|مؤسسة|صحيفة|جريدة)\s",
    re.IGNORECASE,
)
#: words a publisher adds to its name for an edition ("Rudaw English", "Kurdistan24 Türkçe")
EDITION_WORDS = frozenset(
    {"english", "arabic", "turkish", "turkce", "türkçe", "kurdish", "persian", "farsi", "online",
     "digital", "news", "staff", "desk", "team", "web", "عربي", "العربية"}
)  # fmt: skip
#: author strings that name a desk or a role in words AUTHOR_JUNK cannot list one by one:
#: Arabic "محرر الشؤون المحلية" (the local affairs editor), Turkish "Dış Haberler Servisi"
AUTHOR_ROLE = re.compile(r"^(?:ال)?محرر(?:\s|$)|^(?:dış haberler|haber merkezi)\b", re.IGNORECASE)
#: a trailing "(abc)" is the author's initials or desk code: "Elena Oberholzer (obe)"
AUTHOR_TRAILING_CODE = re.compile(r"\s*\([^()]{0,12}\)?$")
MAX_AUTHOR_WORDS = 5
#: CJK names are 2-4 characters; longer runs are labels ("この記事の筆者 ... フォロー")
MAX_UNSPACED_NAME_CHARS = 10
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
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
#: dates in article URLs. The day must be a whole path segment in "/2019/03/12/": in
#: "/2019/03/12-killed-in-raid" the 12 starts the slug and is not a day.
_URL_DATE = (
    re.compile(r"/((?:19|20)\d{2})/(\d{1,2})/(\d{1,2})(?:/|\.html?|$)"),
    re.compile(r"/((?:19|20)\d{2})-(\d{2})-(\d{2})(?:[/_.-]|$)"),
    re.compile(r"/((?:19|20)\d{2})(\d{2})(\d{2})(?:/|[-_]|$)"),
)

#: date sources the publisher states for this article (JSON-LD, meta/<time> markup, its own
#: feed). Kept whatever their age: archives and backfills are full of old articles. Only
#: the weak sources (URL patterns, htmldate's guesses) get the plausibility checks, and they
#: come after the strong ones, so a heuristic never overrules what the page states.
STRONG_DATE_SOURCES = frozenset({"jsonld", "meta", "feed"})
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


def _site_keys(site_names: Iterable[str]) -> set[str]:
    keys = {normalise_key(name) for name in site_names if name}
    keys |= {key.replace(" ", "") for key in keys}
    keys.discard("")
    return keys


def _is_site(part: str, keys: set[str]) -> bool:
    key = normalise_key(part)
    return bool(key) and (key in keys or key.replace(" ", "") in keys)


def _splits(title: str) -> Iterable[tuple[str, str]]:
    """(head, tail) pairs at each separator, the last separator first."""
    for separator in TITLE_SEPARATORS:
        index = title.rfind(separator)
        while index > 0:
            head, tail = title[:index].strip(), title[index + len(separator) :].strip()
            if head and tail:
                yield head, tail
            index = title.rfind(separator, 0, index)


def strip_site_suffix(title: str, *, site_names: Iterable[str]) -> str:
    """``"Headline | Site"`` / ``"Site - Headline"`` -> ``"Headline"`` for a known site name."""
    keys = _site_keys(site_names)
    for head, tail in _splits(title):
        if _is_site(tail, keys):
            return strip_site_suffix(head, site_names=keys)
        if _is_site(head, keys):
            return strip_site_suffix(tail, site_names=keys)
    return title


def _related_to_site(affix: str, declared: Iterable[str], host_label: str | None) -> bool:
    """An affix is the site's name unless the page declares a name it has nothing in common
    with (then it is a kicker: "Nationale Demo / Headline")."""
    names = [n for n in declared if n]
    if not names:
        return True
    key = normalise_key(affix)
    compact = key.replace(" ", "")
    if host_label and len(host_label) >= 3 and (host_label in compact or compact in host_label):
        return True
    words = set(key.split())
    return any(words & set(normalise_key(name).split()) for name in names) or any(
        compact in normalise_key(name).replace(" ", "") for name in names
    )


def split_by_agreement(
    title: str,
    references: Iterable[str],
    *,
    declared: Iterable[str] = (),
    host_label: str | None = None,
) -> tuple[str, str | None]:
    """``("Headline | Site", ["Headline"])`` -> ``("Headline", "Site")``.

    A title that is another of the page's headlines (the <h1>, og:title) plus a short affix at
    a separator is that headline. A suffix is furniture (the site's name, a section); a prefix
    is the site's name unless the page ``declared`` a name it has nothing in common with, when
    it is a kicker and stays (see _related_to_site).
    Unchanged (with ``None``) when no reference agrees.
    """
    # a reference equal to the title itself (og:title repeating <title>) agrees with nothing
    keys = {normalise_key(r) for r in references if r} - {"", normalise_key(title)}
    if not keys:
        return title, None
    declared = list(declared)
    for head, tail in _splits(title):
        for kept, affix, is_prefix in ((head, tail, False), (tail, head, True)):
            if (
                normalise_key(kept) in keys
                and len(affix.split()) <= MAX_SITE_NAME_WORDS
                and (not is_prefix or _related_to_site(affix, declared, host_label))
            ):
                return kept, affix
    return title, None


#: a title affix this short whose letters are part of the host's name is the site's name
MAX_HOST_AFFIX_WORDS = 3
MIN_HOST_AFFIX_CHARS = 4


def split_host_affix(title: str, host_label: str) -> tuple[str, str | None]:
    """``"Headline | Rudaw"`` on rudawnews.net -> ``("Headline", "Rudaw")``: the affix is the
    host's name (or the host's name is in it: "Kurdistan24 English" on kurdistan24.net), so it
    is cut even when no <h1> agrees and the page declares no site name. Only the outermost
    affix, and only a short one: "Erdoğan – Barzani meeting" keeps its dash."""
    host = normalise_key(host_label).replace(" ", "")
    if len(host) < MIN_HOST_AFFIX_CHARS:
        return title, None
    for head, tail in _splits(title):
        for kept, affix in ((head, tail), (tail, head)):
            words = normalise_key(affix).split()
            # "Rudaw English", "Rudaw Türkçe": the edition's word is not part of the name
            compact = "".join(w for w in words if w not in EDITION_WORDS) or "".join(words)
            if (
                len(affix.split()) <= MAX_HOST_AFFIX_WORDS
                and len(compact) >= MIN_HOST_AFFIX_CHARS
                and (compact in host or host in compact)
                and len(kept.split()) >= max(2, len(affix.split()))
                # the outermost affix only, never a piece from the middle of the title
                and not any(separator in f" {affix} " for separator in TITLE_SEPARATORS)
            ):
                return kept, affix
    return title, None


@dataclass(frozen=True, slots=True)
class Title:
    text: str | None
    #: the site's name as the page's own title showed it ("Headline | Site"), if any
    site_name: str | None = None


def choose_title(
    candidates: Iterable[str | None],
    *,
    site_names: Iterable[str],
    references: Iterable[str | None] = (),
    declared: Iterable[str | None] = (),
    host_label: str | None = None,
) -> Title:
    """The first non-empty candidate, without the site's name.

    The name is cut when it is a known one (``site_names``: og:site_name, publisher, host) or
    when the rest agrees with one of ``references`` (the <h1>, og:title), in every separator
    style; a JSON-LD headline cut at ~110 characters yields to a full version.
    """
    names = list(site_names)
    agreed = [" ".join(r.split()) for r in references if r and r.strip()]
    titles: list[str] = []
    affix: str | None = None
    for candidate in candidates:
        if not candidate or not candidate.strip():
            continue
        title = strip_site_suffix(" ".join(candidate.split()), site_names=names)
        title, cut = split_by_agreement(
            title, agreed, declared=[d for d in declared if d], host_label=host_label
        )
        if cut is None and host_label:
            title, cut = split_host_affix(title, host_label)
        # an empty kicker or label leaves ": Headline" behind
        title = title.strip(TITLE_EDGE_PUNCTUATION)
        affix = affix or cut
        if title:
            titles.append(title)
    for title in titles:
        stem = title.removesuffix("…").removesuffix("...").rstrip()
        if stem != title:
            # JSON-LD headlines are often cut at 110 characters: prefer a full version
            full = (t for t in titles if t.startswith(stem) and not t.endswith(("…", "...")))
            longer = next((t for t in full if len(t) > len(stem)), None)
            if longer:
                return Title(longer, affix)
        return Title(title, affix)
    return Title(None, affix)


# --- authors -----------------------------------------------------------------------------------

_DATEISH = re.compile(r"\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d")


def clean_authors(
    raw: Iterable[str], *, site_names: Iterable[str], keep_sites: bool = False
) -> list[str]:
    """People's names from author strings: no "By", dates, site names, roles, URLs or e-mails.

    ``keep_sites``: keep the site's own name (used for organisation authors, when no person is
    named anywhere).
    """
    site_keys = set() if keep_sites else _site_keys(site_names)
    names: list[str] = []
    seen: set[str] = set()
    for value in raw:
        value = unicodedata.normalize("NFC", " ".join(value.split()))
        if value.startswith("(") and value.endswith(")"):
            value = value[1:-1].strip()  # "(AA)": a credit in brackets, not initials
        if (
            not value
            or "://" in value
            or value.startswith("www.")
            or AUTHOR_CREDIT.match(value.lstrip("([ "))
        ):
            continue
        for part in AUTHOR_SPLIT.split(AUTHOR_PREFIXES.sub("", value)):
            name = AUTHOR_TRAILING_CODE.sub("", part.strip())
            name = AUTHOR_PREFIXES.sub("", name.strip(" \t.:,;-–—|()[]\"'"))
            key = normalise_key(name)
            if (
                not key
                or key in seen
                or key in AUTHOR_JUNK
                or AUTHOR_ROLE.match(name)
                or _names_site(key, site_keys)
                or (not keep_sites and _is_organisation(name, key))
                or "@" in name
                or _DATEISH.search(name.lower())
                or len(key.split()) > MAX_AUTHOR_WORDS
                or AUTHOR_CREDIT.match(name)
                # a name in an unspaced script is a few characters, not a sentence
                or (_UNSPACED.search(name) and len(key) > MAX_UNSPACED_NAME_CHARS)
                # one lowercase word is a handle or a role ("admin2", "haber"), not a name
                or (len(key.split()) == 1 and name.islower())
            ):
                continue
            if name.isupper() and len(name) > 3:
                name = name.title()
            seen.add(key)
            names.append(name)
    return names


def _names_site(key: str, site_keys: set[str]) -> bool:
    """ "Rudaw", "Rudaw English", "Kurdistan24 Staff" for the site "Rudaw News"/rudaw.net."""
    if not site_keys:
        return False
    core = " ".join(word for word in key.split() if word not in EDITION_WORDS) or key
    compact = core.replace(" ", "")
    if core in site_keys or compact in site_keys:
        return True
    # the site's name without its suffix ("rudaw" of "rudaw news", "rudawnews"); one word only:
    # "Matthew Davis" of "Matthew Davis's Blog" is the person the blog is named after
    return (
        len(core.split()) == 1
        and len(compact) >= 4
        and any(site.startswith(compact) and len(compact) * 2 > len(site) for site in site_keys)
    )


def _is_organisation(name: str, key: str) -> bool:
    """An agency or an organisation's name (by its words), not a person's."""
    return key in NEWS_AGENCIES or bool(ORGANISATION_WORDS.search(name))


AuthorKind = Literal["person", "organization"]


@dataclass(frozen=True, slots=True)
class Authors:
    names: list[str]
    #: "person", or "organization" when no person is named and an organisation stands in
    kind: AuthorKind | None


def choose_authors(
    people: Iterable[Iterable[str]],
    organisations: Iterable[Iterable[str]],
    *,
    site_names: Iterable[str],
) -> Authors:
    """People from the first source that names any; else the first organisation named.

    ``people``: sources in priority order (JSON-LD persons, meta tags, visible bylines, the
    feed); a source's site or agency names are not people. ``organisations``: JSON-LD authors
    typed as organisations, then the people sources again with site names allowed.
    """
    names = list(site_names)
    people_sources = [list(source) for source in people]
    for source in people_sources:
        found = clean_authors(source, site_names=names)
        if found:
            return Authors(found, "person")
    for fallback in [*organisations, *people_sources]:
        found = clean_authors(fallback, site_names=names, keep_sites=True)
        if found:
            return Authors(found, "organization")
    return Authors([], None)


# --- dates -------------------------------------------------------------------------------------


#: UTC offsets (hours) of zone abbreviations pages write into dates; unknown ones count as UTC
ZONE_ABBREVIATIONS = {
    "UTC": 0.0, "GMT": 0.0, "Z": 0.0, "WET": 0.0, "BST": 1.0, "WEST": 1.0, "CET": 1.0,
    "CEST": 2.0, "MEZ": 1.0, "MESZ": 2.0, "EET": 2.0, "EEST": 3.0, "TRT": 3.0, "MSK": 3.0,
    "AST": 3.0, "IRST": 3.5, "GST": 4.0, "IST": 5.5, "EST": -5.0, "EDT": -4.0, "CST": -6.0,
    "CDT": -5.0, "MST": -7.0, "MDT": -6.0, "PST": -8.0, "PDT": -7.0, "JST": 9.0, "KST": 9.0,
}  # fmt: skip
_ZONE_NAME = re.compile(r"\b([A-Z]{1,4}T|Z|MEZ|MESZ)\b")


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
        # "Fri Apr 28 19:20:36 CEST 2023" (Java's Date.toString): the RFC 2822 parser reads it
        # but knows only US zone names; a zone named in the text is the page's own statement
        zone = _ZONE_NAME.search(value) if isinstance(value, str) else None
        offset = ZONE_ABBREVIATIONS.get(zone[1], 0.0) if zone else 0.0
        parsed = parsed.replace(tzinfo=timezone(timedelta(hours=offset)))
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
    after ``now`` (+1 h skew); a modified date before the published date; and for weak sources
    only (not in :data:`STRONG_DATE_SOURCES`), more than ``max_lag`` before ``first_seen`` or
    more than ~1.5 days away from the date in the URL.
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
        weak = source not in STRONG_DATE_SOURCES
        if parsed > now + FUTURE_SKEW:
            why = "future"
        elif weak and first_seen is not None and parsed < first_seen - max_lag:
            why = "before_first_seen"
        elif after is not None and parsed < after:
            why = "before_published"
        elif weak and after is None and in_url is not None and source != "url":
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
        pending = list(candidates)
        strong: list[tuple[str, datetime]] = []
        for source, value in pending:
            if source in STRONG_DATE_SOURCES and not callable(value):
                parsed = valid(source, value, after=after)
                if parsed is not None:
                    strong.append((source, parsed))
        if strong:
            return _agreed(strong, in_url=in_url if after is None else None, rejected=rejected)
        for source, value in pending:
            if source in STRONG_DATE_SOURCES:
                continue
            if callable(value):
                value = value()
            parsed = valid(source, value, after=after)
            if parsed is not None:
                return parsed, source
        return None, None

    published_at, published_source = first(published)
    modified_at, modified_source = first(modified, after=published_at)
    return Dates(published_at, published_source, modified_at, modified_source, tuple(rejected))


def _agreed(
    strong: list[tuple[str, datetime]],
    *,
    in_url: date | None,
    rejected: list[tuple[str, str, str]],
) -> tuple[datetime, str]:
    """The strong date most other sources agree with (within a day and a half; the URL's date
    only breaks ties), in priority order among equals; the others are recorded as outvoted."""

    def support(when: datetime) -> float:
        votes = sum(1.0 for _, other in strong if abs(other - when) <= URL_DATE_TOLERANCE)
        if in_url is not None:
            midday = datetime(in_url.year, in_url.month, in_url.day, 12, tzinfo=UTC)
            votes += 0.5 if abs(when - midday) <= URL_DATE_TOLERANCE else 0.0
        return votes

    best_source, best = max(strong, key=lambda item: support(item[1]))  # first of equals
    for source, when in strong:
        if abs(when - best) > URL_DATE_TOLERANCE:
            rejected.append((source, when.isoformat(), "outvoted"))
    return best, best_source


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


def host_label(host: str) -> str:
    """The name part of a host: ``www.northgatemedia.co.uk`` -> ``northgatemedia``.

    Compared without spaces, it recognises the site's name in titles ("Northgate Media").
    """
    return site_of(host).split(".", 1)[0]
