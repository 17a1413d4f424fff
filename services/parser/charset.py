"""Mojibake repair for pages the fetcher decoded with the wrong charset.

The fetcher owns charset detection and hands us text (``Page.html``), so the original bytes
are gone. Two cases are told apart:

* The text was decoded with a *single-byte* codec it was not written in (``Page.charset``
  says which; cp1252/latin-1 when a CMS did it before us). No information was lost: the bytes
  are recovered by re-encoding and decoded again. Repaired here: UTF-8 read as a single-byte
  codec (``Ã¼`` for ``ü``), and windows-1254 (Turkish) read as cp1252/latin-1/cp1250/...
  (``ý þ ð`` or ``ý ţ đ`` for ``ı ş ğ``).
* The text was decoded as UTF-8 with replacement (a windows-1254 page *declared* as UTF-8 and
  decoded as declared): every Turkish letter became U+FFFD and cannot be recovered from text.
  :func:`check_replacement_chars` turns that into ``PermanentError(kind="charset")`` so the page
  is dead-lettered, and the fix belongs in the fetcher (sniff when strict decoding fails).
"""

from __future__ import annotations

import codecs
import functools
import re

from shared.errors import PermanentError

#: windows-1254 has Ğ İ Ş ğ ı ş at these bytes, where cp1252/latin-1 have Ð Ý Þ ð ý þ
CP1254_LETTER_BYTES = bytes([0xD0, 0xDD, 0xDE, 0xF0, 0xFD, 0xFE])
_TURKISH_ONLY = re.compile("[ĞİŞğış]")
#: codecs the fetcher may have decoded with: one byte, one character, nothing lost
SINGLE_BYTE_PREFIXES = ("cp12", "iso8859", "koi8", "mac-", "cp437", "cp85", "cp86", "cp874")
#: when the page says UTF-8 (or nothing) but shows mojibake, the text went through these
#: on its way (a CMS or the fetcher's fallback)
FALLBACK_CODECS = ("cp1252", "iso8859-1")
#: languages whose own letters look like Turkish mojibake (ð þ ý, ţ ý): never "repaired"
GUARDED_LANGS = ("is", "fo", "cs", "sk", "ro")

#: below this many suspicious sequences a page is left alone (a stray "Ã©" is not a pattern)
MIN_MOJIBAKE_HITS = 3
#: bytes.translate table deleting everything below 0xC2 (the smallest UTF-8 lead byte)
_BELOW_UTF8_LEADS = bytes(range(0xC2))
#: share of words with a U+FFFD above which the text is considered lost in decoding. Turkish
#: read as UTF-8 loses a letter in 30-50 % of its words; an English page with cp1252 curly
#: quotes loses punctuation in a few % of them and is better kept than dead-lettered.
MAX_DAMAGED_WORD_RATIO = 0.1
MIN_REPLACEMENT_CHARS = 3


def _single_byte_codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return None
    return name if name.startswith(SINGLE_BYTE_PREFIXES) else None


@functools.cache
def _cp1254_suspects(codec: str) -> tuple[str, str, re.Pattern[str]]:
    """What ş and ı look like through ``codec``, and a pattern of such letters inside words."""
    seen = CP1254_LETTER_BYTES.decode(codec, errors="replace")
    letters = re.escape(seen)
    pattern = re.compile(f"[a-zA-Zçöüâîû][{letters}]|[{letters}][a-zçöüâîû]")
    return seen[5], seen[4], pattern  # bytes 0xFE (ş) and 0xFD (ı)


def _hits(pattern: re.Pattern[str], text: str) -> int:
    """Matches of ``pattern``, counting no further than needed to decide."""
    count = 0
    for _ in pattern.finditer(text):
        count += 1
        if count >= MIN_MOJIBAKE_HITS:
            break
    return count


def repair_mojibake(
    html: str, *, lang: str | None = None, charset: str | None = None
) -> tuple[str, str | None]:
    """Return ``(text, codec)``: the codec the text was re-decoded with, or None if untouched.

    ``charset`` is the codec the fetcher decoded with (``Page.charset``): when it is a
    single-byte codec, re-encoding with it gives back the exact bytes. Otherwise cp1252 and
    latin-1 are tried, for text that was mis-decoded before it reached the fetcher.
    ``lang`` is the page's declared language, a guard against "repairing" Icelandic or Czech.
    """
    if html.isascii():  # the common case, and a C-speed check on 100 KB
        return html, None
    single = _single_byte_codec(charset)
    guarded = (lang or "").lower().startswith(GUARDED_LANGS)
    for codec in (single,) if single else FALLBACK_CODECS:
        try:
            raw = html.encode(codec)
        except UnicodeEncodeError:
            continue
        # Valid UTF-8 across a whole document with several multi-byte sequences does not
        # happen by chance in single-byte text.
        if len(raw.translate(None, _BELOW_UTF8_LEADS)) >= MIN_MOJIBAKE_HITS:
            try:
                return raw.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                pass
        s_look, i_look, suspects = _cp1254_suspects(codec)
        if (
            not guarded
            # Czech uses ý but not þ/ţ, Romanian ţ but not ý: Turkish needs both (ş and ı)
            and (s_look in html or s_look.upper() in html)
            and (i_look in html or i_look.upper() in html)
            and not _TURKISH_ONLY.search(html)
            and _hits(suspects, html) >= MIN_MOJIBAKE_HITS
        ):
            try:
                return raw.decode("cp1254"), "cp1254"
            except UnicodeDecodeError:
                continue
    return html, None


def check_replacement_chars(text: str, *, charset: str | None = None) -> None:
    """Raise ``PermanentError(kind="charset")`` if decoding replaced letters in many words."""
    bad = text.count("\ufffd")
    if bad < MIN_REPLACEMENT_CHARS:
        return
    words = text.split()
    damaged = sum(1 for word in words if "\ufffd" in word)
    if damaged / len(words) > MAX_DAMAGED_WORD_RATIO:
        raise PermanentError(
            f"U+FFFD in {damaged} of {len(words)} words: the page was decoded as "
            f"{charset or 'an unknown charset'} but is not; the bytes are lost, re-fetch with "
            "charset sniffing",
            kind="charset",
        )
