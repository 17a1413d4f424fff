"""Dates as feeds actually write them -> aware UTC datetimes.

Two well-kept libraries do the parsing; this module only decides which one to trust:

1. ``feedparser.datetimes._parse_date`` (feedparser's own registry of date handlers: RFC 822
   with or without a colon in the offset, two-digit years, missing seconds, ISO 8601 and
   W3C-DTF in any element, asctime, Greek/Hungarian/Korean forms). It is fast (~20 µs).
   It has one silent fault: a zone *name* it does not know (``EEST``, ``TRT``, ``MSK``,
   ``GMT+3``) is read as UTC, not refused. So a trailing zone name outside its table skips it.
2. ``dateparser`` (already installed for htmldate) for everything else: named zones
   worldwide, ``GMT+3``, month and weekday names in the corpus languages. It is slow
   (2–10 ms, and seconds when it has to guess among all languages), so it only sees what
   feedparser refused, with the languages limited to :data:`DATE_LANGUAGES`.

A date without a zone is taken as UTC (what feed readers do). Ambiguous zone abbreviations
are resolved for this corpus's region by :data:`REGIONAL_ZONES` (data, not code).
"""

from __future__ import annotations

import calendar
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import dateparser
from feedparser.datetimes import (
    _parse_date_asctime,
    _parse_date_greek,
    _parse_date_hungarian,
    _parse_date_iso8601,
    _parse_date_nate,
    _parse_date_onblog,
    _parse_date_perforce,
    _parse_date_rfc822,
    _parse_date_w3dtf,
)
from feedparser.datetimes.rfc822 import timezone_names as FEEDPARSER_ZONES

logger = logging.getLogger(__name__)

#: Abbreviations whose common meaning differs by region. Publishers in Iraq, Syria and the
#: Gulf write "AST" for Arabia Standard Time (UTC+3); feedparser and dateparser read it as
#: Atlantic Standard Time (UTC-4), which would shift every such item by seven hours.
REGIONAL_ZONES: dict[str, str] = {
    "AST": "+0300",  # Arabia Standard Time (Baghdad, Riyadh)
    "TRT": "+0300",  # Türkiye Time (since 2016; dateparser knows it, feedparser does not)
}
#: Month names of Iraq, Syria, Lebanon and Jordan (Syriac-derived), which dateparser's
#: Arabic does not know; rewritten to the Egyptian/Gulf names it knows. Longest names first, so
#: "تشرين الثاني" is not read as "تشرين".
LEVANTINE_MONTHS: tuple[tuple[str, str], ...] = (
    ("كانون الثاني", "يناير"),  # January
    ("كانون الأول", "ديسمبر"),  # December
    ("تشرين الثاني", "نوفمبر"),  # November
    ("تشرين الأول", "أكتوبر"),  # October
    ("شباط", "فبراير"),  # February
    ("آذار", "مارس"),  # March
    ("نيسان", "أبريل"),  # April
    ("أيار", "مايو"),  # May
    ("حزيران", "يونيو"),  # June
    ("تموز", "يوليو"),  # July
    ("آب", "أغسطس"),  # August
    ("أيلول", "سبتمبر"),  # September
)
#: Languages dateparser may try for month and weekday names: the corpus languages first
#: (Turkish, Arabic, Persian, Sorani Kurdish), then the European ones feeds commonly use.
#: Limiting them keeps a failing string at milliseconds instead of seconds.
DATE_LANGUAGES = ("en", "tr", "ar", "fa", "ckb", "de", "fr", "es", "it", "pt", "nl", "ru")
_DATEPARSER_SETTINGS: dict[str, Any] = {
    "TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
    # A feed date is a full date; "yesterday" or a bare "10:00" is not one.
    "REQUIRE_PARTS": ["day", "month", "year"],
    "PREFER_DAY_OF_MONTH": "first",
    # "05/11/2026" is 5 November in Türkiye, Iraq, Syria and Iran (dateparser's default reads
    # it the US way); an impossible day-month order ("11/30/2026") still falls back.
    "DATE_ORDER": "DMY",
}
#: feedparser's own handlers, in its order but with its lenient ISO 8601 handler moved last:
#: first it reads "2004-július-13T9:15-05:00" (Hungarian) as 1 November 2004, before the
#: Hungarian handler gets its turn.
FEEDPARSER_HANDLERS: tuple[Callable[[str], Any], ...] = (
    _parse_date_w3dtf,
    _parse_date_rfc822,
    _parse_date_asctime,
    _parse_date_perforce,
    _parse_date_hungarian,
    _parse_date_greek,
    _parse_date_nate,
    _parse_date_onblog,
)
#: Longest date string worth parsing (a feed element full of text is not a date).
MAX_DATE_CHARS = 100

_SPACE = re.compile(r"\s+")
#: ISO 8601 / W3C-DTF shapes ("2013-01-28T09:xx", "22013"): feedparser's ISO handlers are
#: the authority; when they refuse one, dateparser only guesses (it read "2013-xx-27" as
#: 1 November 2013).
_ISO_SHAPED = re.compile(r"^\d{4,}(?:[-T:]|$)")
_NUMBER = re.compile(r"\d+")
#: What feedparser's lenient ISO 8601 handler would still turn into a date: letters other
#: than the T and Z separators ("2013-xx-27", "09:xx") and out-of-range clock fields
#: ("25:14", "10:61"), which it rolls over into the next hour or day, and a full date with
#: more after it ("2013-01-27-01"), which it cuts, and slashes ("2026/11/30" became
#: 1 November), which ISO 8601 never uses.
_ISO_GARBLED = re.compile(r"[^\W\dTZ_]|(?<!\d)(2[4-9]|[3-9]\d):\d\d|:[6-9]\d|^\d{4}-\d\d-\d\d-|/")
#: A zone name after a time of day: "10:00:00 EEST", "10:00 GMT+3", "10:00:00 UTC+03:00".
_TRAILING_ZONE = re.compile(r"(?<=\d)(\s*)([A-Za-z]{1,6})(\s*[+-]\d{1,2}(?::?\d{2})?)?\s*$")


#: ISO 8601 with a two-digit offset ("2026-11-30 10:00:00 +03"): W3C-DTF wants "+03:00", and
#: feedparser's lenient ISO handler then kept the date and dropped the time (00:00 UTC).
_ISO_SHORT_OFFSET = re.compile(
    r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*([+-]\d\d)$"
)
#: ISO 8601 basic format ("20261130T100000Z", "20261130T1000+0300"), which W3C-DTF lacks; the
#: lenient handler read only its date.
_ISO_BASIC = re.compile(
    r"^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)?(?:[.,]\d+)?(Z|[+-]\d\d(?::?\d\d)?)?$"
)
#: Unix time in seconds (9-10 digits: 1973-2286) or milliseconds (12-13 digits), as some
#: feeds write it; the lenient ISO handler read "1796032800" as 28 March 1796.
_EPOCH_S = re.compile(r"^\d{9,10}$")
_EPOCH_MS = re.compile(r"^\d{12,13}$")
#: A numeric UTC offset at the end; real ones lie within -12:00..+14:00 (RFC 822 readers
#: accept "+9999" and shift the date by four days).
_NUMERIC_OFFSET = re.compile(r"[+-](\d\d):?(\d\d)$")
MAX_OFFSET_MINUTES = 14 * 60
#: A time of day written in the text, which a parse must not drop.
_CLOCK = re.compile(r"\d:\d\d")
_CLOCK_MIDNIGHT = re.compile(r"(?<!\d)0?0:00(?::00)?(?![:\d])")


def _iso_normalised(text: str) -> str:
    m = _ISO_SHORT_OFFSET.match(text)
    if m:
        return f"{m.group(1)}{m.group(2)}:00"
    m = _ISO_BASIC.match(text)
    if m:
        year, month, day, hour, minute, second, zone = m.groups()
        if zone and zone not in ("Z",) and ":" not in zone:
            zone = f"{zone[:3]}:{zone[3:] or '00'}"
        return f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}{zone or ''}"
    return text


def _epoch(text: str) -> datetime | None:
    if _EPOCH_S.match(text):
        return datetime.fromtimestamp(int(text), UTC)
    if _EPOCH_MS.match(text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return None


def _impossible_offset(text: str) -> bool:
    m = _NUMERIC_OFFSET.search(text)
    return m is not None and (
        int(m.group(1)) * 60 + int(m.group(2)) > MAX_OFFSET_MINUTES or int(m.group(2)) > 59
    )


def _regional(value: str) -> str:
    m = _TRAILING_ZONE.search(value)
    if m is None or m.group(3):
        return value
    offset = REGIONAL_ZONES.get(m.group(2).upper())
    if offset is None:
        return value
    return value[: m.start(2)] + offset


def _feedparser_trusted(value: str) -> bool:
    """False when feedparser would silently read an unknown trailing zone name as UTC."""
    m = _TRAILING_ZONE.search(value)
    if m is None:
        return True
    name = m.group(2).lower()
    if m.group(3):  # "GMT+3": feedparser refuses it anyway; "GMT+03:00" it reads right
        return name in ("gmt", "utc", "ut") and ":" in m.group(3)
    if name == "t" or (len(name) == 1 and not m.group(1)):
        return True  # ISO "T" separators and single-letter military zones like "Z"
    return name in FEEDPARSER_ZONES or name == "utc"


def _feedparser_stamp(text: str) -> Any:
    """feedparser's ``_parse_date`` with the handler order above (a UTC 9-tuple or None)."""
    for handler in FEEDPARSER_HANDLERS:
        try:
            stamp = handler(text)
        except (KeyError, OverflowError, ValueError, AttributeError):
            continue
        if stamp and len(stamp) == 9:
            return stamp
    if _ISO_GARBLED.search(text):
        return None
    try:
        stamp = _parse_date_iso8601(text)
    except (KeyError, OverflowError, ValueError, AttributeError):
        return None
    if not stamp or len(stamp) != 9:
        return None
    if _CLOCK.search(text) and tuple(stamp[3:6]) == (0, 0, 0) and not _CLOCK_MIDNIGHT.search(text):
        return None  # it kept the date and dropped a time the text wrote: a wrong instant
    return stamp


def parse_feed_date(value: Any) -> datetime | None:
    """An aware UTC datetime from a feed's date text, or None when it is not a date.

    Never raises: a date nobody can read is a missing date, not a lost feed.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # JSON Feeds that write Unix time as a number
    if not isinstance(value, str):
        return None
    text = _SPACE.sub(" ", value).strip()
    if not text or len(text) > MAX_DATE_CHARS:
        return None
    epoch = _epoch(text)
    if epoch is not None:
        return epoch
    if _impossible_offset(text):
        return None
    text = _regional(_iso_normalised(text))
    if _feedparser_trusted(text):
        stamp = _feedparser_stamp(text)
        if stamp is not None:
            try:
                return datetime.fromtimestamp(calendar.timegm(stamp), UTC)
            except (OverflowError, ValueError, OSError):
                return None
    if _ISO_SHAPED.match(text):
        return None
    return _dateparser_date(text)


#: dateparser costs 2-3 ms CPU per date it reads and as much per string it refuses: 5,000
#: items with odd dates were 13 s of CPU in every poll. Its answers are kept (feeds repeat
#: the same strings poll after poll) ...
DATEPARSER_CACHE_SIZE = 20_000
#: ... and within one document it may spend at most this long on strings it then refuses
#: (dates it reads cost nothing from it); after that, strings it has not seen are read by
#: feedparser only (usually: no date), and the log says how many.
DATEPARSER_BUDGET_S = 1.0
_dateparser_cache: OrderedDict[str, datetime | None] = OrderedDict()
#: Seconds dateparser may still spend in the current document (None: no budget).
_budget: ContextVar[list[float] | None] = ContextVar("dateparser_budget", default=None)


@contextlib.contextmanager
def dateparser_budget(seconds: float | None = None) -> Iterator[list[float]]:
    """Bound dateparser's CPU on refused strings within the block to *seconds* (default
    :data:`DATEPARSER_BUDGET_S`); yields ``[remaining_s, skipped_count]``."""
    seconds = DATEPARSER_BUDGET_S if seconds is None else seconds
    state = [seconds, 0.0]
    token = _budget.set(state)
    try:
        yield state
    finally:
        _budget.reset(token)
        if state[1]:
            logger.warning(
                "date budget of %.1f s spent; %d date(s) read by feedparser only",
                seconds,
                int(state[1]),
            )


def _dateparser_date(text: str) -> datetime | None:
    if text in _dateparser_cache:
        _dateparser_cache.move_to_end(text)
        return _dateparser_cache[text]
    state = _budget.get()
    if state is not None and state[0] <= 0:
        state[1] += 1
        return None
    started = time.process_time()
    when = _dateparser_read(text)
    if state is not None and when is None:  # only refusals spend it: real dates are read
        state[0] -= time.process_time() - started
    _dateparser_cache[text] = when
    if len(_dateparser_cache) > DATEPARSER_CACHE_SIZE:
        _dateparser_cache.popitem(last=False)
    return when


def _dateparser_read(text: str) -> datetime | None:
    for levantine, month in LEVANTINE_MONTHS:
        if levantine in text:
            text = text.replace(levantine, month)  # same script: dateparser reads one language
            break
    try:
        when = dateparser.parse(text, languages=list(DATE_LANGUAGES), settings=_DATEPARSER_SETTINGS)
    except Exception:  # dateparser raises assorted errors on odd input; it is not a date
        logger.debug("date not parsed value=%r", text, exc_info=True)
        return None
    if when is None or not _plausible(when, text):
        return None
    return when.astimezone(UTC)


def _plausible(when: datetime, text: str) -> bool:
    """dateparser fills what it could not read; a day or year the text never wrote means
    it guessed (it read a Korean date as 1 November), and a guessed date is worse than none."""
    numbers = {int(n) for n in _NUMBER.findall(text)}
    return when.day in numbers and (when.year in numbers or when.year % 100 in numbers)
