"""Mojibake repair for pages the fetcher decoded with the wrong charset.

The fetcher owns charset detection and hands us text (``Page.html``), so the original bytes
are gone. Two cases are told apart:

* The text was decoded with a *single-byte* codec it was not written in (cp1252/latin-1 is the
  usual fallback). No information was lost: the bytes are recovered by re-encoding and
  decoded again with the right codec. Repaired here: UTF-8 read as cp1252 (``Ã¼`` for ``ü``)
  and windows-1254 (Turkish) read as cp1252/latin-1 (``ý þ ð Ý Þ Ð`` for ``ı ş ğ İ Ş Ğ``).
* The text was decoded as UTF-8 with replacement (a windows-1254 page *declared* as UTF-8 and
  decoded as declared): every Turkish letter became U+FFFD and cannot be recovered from text.
  :func:`check_replacement_chars` turns that into ``PermanentError(kind="charset")`` so the page
  is dead-lettered, and the fix belongs in the fetcher (sniff when strict decoding fails).
"""

from __future__ import annotations

import re

from shared.errors import PermanentError

#: UTF-8 lead byte + continuation byte(s) as they look after a cp1252/latin-1 decode.
_UTF8_AS_CP1252 = re.compile(
    "[\u00c2-\u00df][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac"
    "\u2122]"
    "|[\u00e0-\u00ef][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac"
    "\u2122]{2}"
)
#: windows-1254 differs from cp1252/latin-1 in the letter range only at these six bytes.
CP1254_FROM_CP1252 = str.maketrans("ÐÝÞðýþ", "ĞİŞğış")
_CP1254_SUSPECTS = re.compile("[a-zA-Zçöüâîû][ÐÝÞðýþ]|[ÐÝÞðýþ][a-zçöüâîû]")
_TURKISH_ONLY = re.compile("[ĞİŞğış]")
#: languages that really use ð, þ, ý: never "repair" them into Turkish.
LANGS_WITH_ETH_THORN = ("is", "fo")

#: below this many suspicious sequences a page is left alone (a stray "Ã©" is not a pattern)
MIN_MOJIBAKE_HITS = 3
#: U+FFFD share of letters above which the text is considered lost in decoding
MAX_REPLACEMENT_RATIO = 0.002
MIN_REPLACEMENT_CHARS = 3


def _single_byte(text: str) -> bytes | None:
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec)
        except UnicodeEncodeError:
            continue
    return None


def _hits(pattern: re.Pattern[str], text: str) -> int:
    """Matches of ``pattern``, counting no further than needed to decide."""
    count = 0
    for _ in pattern.finditer(text):
        count += 1
        if count >= MIN_MOJIBAKE_HITS:
            break
    return count


def repair_mojibake(html: str, *, lang: str | None = None) -> tuple[str, str | None]:
    """Return ``(text, repair)``; ``repair`` names the fix applied, or None if none was needed.

    ``lang`` is the page's declared language (``<html lang>``), used only as a guard.
    """
    if html.isascii():  # the common case, and a C-speed check on 100 KB
        return html, None
    if _hits(_UTF8_AS_CP1252, html) >= MIN_MOJIBAKE_HITS:
        raw = _single_byte(html)
        if raw is not None:
            try:
                return raw.decode("utf-8"), "utf8-as-cp1252"
            except UnicodeDecodeError:
                pass  # not UTF-8 after all: genuine accented text, leave it
    lang = (lang or "").lower()
    if (
        not lang.startswith(LANGS_WITH_ETH_THORN)
        # Czech and Slovak use ý but never þ; Turkish text has both ş and ı everywhere
        and ("þ" in html or "Þ" in html)
        and ("ý" in html or "Ý" in html)
        and not _TURKISH_ONLY.search(html)
        and _hits(_CP1254_SUSPECTS, html) >= MIN_MOJIBAKE_HITS
    ):
        return html.translate(CP1254_FROM_CP1252), "cp1254-as-cp1252"
    return html, None


def check_replacement_chars(text: str, *, charset: str | None = None) -> None:
    """Raise ``PermanentError(kind="charset")`` if decoding replaced too many characters."""
    bad = text.count("\ufffd")
    if bad < MIN_REPLACEMENT_CHARS:
        return
    letters = sum(1 for ch in text if ch.isalpha()) or 1
    if bad / letters > MAX_REPLACEMENT_RATIO:
        raise PermanentError(
            f"{bad} U+FFFD replacement characters in the text: the page was decoded as "
            f"{charset or 'an unknown charset'} but is not; the bytes are lost, re-fetch with "
            "charset sniffing",
            kind="charset",
        )
