"""Which charset an HTML body is in: BOM, header, <meta>, then sniffing (charset_normalizer).

Moved out of ``fetch.py``: decoding text is a separate concern from one HTTP exchange.
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

#: Bytes scanned for a <meta charset>; the HTML spec's prescan uses 1024, servers often
#: put it later after long <head> comments.
META_SCAN_BYTES = 4096
DEFAULT_CHARSET = "utf-8"
#: Sniffing is CPU-heavy on big pages and accurate enough on a prefix.
SNIFF_BYTES = 64 * 1024
#: Sniffing cannot tell Turkish cp1254 from cp1250/cp1252 on many texts (the byte
#: distributions tie). Among near-tied candidates, prefer the legacy charsets of this
#: corpus's regions: Turkish, Arabic-script (Kurdish Sorani, Arabic), Persian, Cyrillic.
PREFERRED_SNIFFED = ("cp1254", "iso8859-9", "cp1256", "iso8859-6", "cp1251")
SNIFF_TIE_COHERENCE = 0.05

_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)


def _codec(name: str | bytes | None) -> str | None:
    if not name:
        return None
    if isinstance(name, bytes):
        name = name.decode("ascii", "ignore")
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def detect_charset(body: bytes, content_type_header: str | None) -> tuple[str, str]:
    """``(codec, source)``: BOM, then header charset, then <meta>, then sniffing, then UTF-8.

    A declared charset the body does not decode in (a windows-1254 page served as UTF-8 is
    common) is overruled by sniffing: decoding it as declared would replace every Turkish
    letter with U+FFFD, which no later stage can repair.
    """
    for bom, bom_name in _BOMS:
        if body.startswith(bom):
            return bom_name, "bom"
    declared: tuple[str, str] | None = None
    if content_type_header:
        m = _HEADER_CHARSET.search(content_type_header)
        if m and (header_name := _codec(m.group(1))):
            declared = header_name, "header"
    if declared is None:
        m2 = _META_CHARSET.search(body[:META_SCAN_BYTES])
        if m2 and (meta_name := _codec(m2.group(1))):
            # A page that claims UTF-16 in an ASCII-readable meta tag is not UTF-16 (HTML spec).
            declared = (
                ("utf-8" if meta_name.startswith(("utf_16", "utf-16")) else meta_name),
                "meta",
            )
    if declared is not None:
        if _decodes(body[:SNIFF_BYTES], declared[0]):
            return declared
        return _sniff(body, exclude_utf8=True) or declared
    if _decodes(body[:SNIFF_BYTES], "utf-8"):
        return "utf-8", "sniffed"
    return _sniff(body, exclude_utf8=True) or (DEFAULT_CHARSET, "default")


def _decodes(prefix: bytes, codec: str) -> bool:
    try:
        prefix.decode(codec)
    except UnicodeDecodeError as exc:
        # A multi-byte sequence cut at the prefix end is not an error in the document.
        return exc.start >= len(prefix) - 4 and len(prefix) >= SNIFF_BYTES
    except LookupError:
        return False
    return True


def _sniff(body: bytes, *, exclude_utf8: bool) -> tuple[str, str] | None:
    matches = charset_normalizer.from_bytes(body[:SNIFF_BYTES])
    best = matches.best()
    if best is None:
        return None
    tied = {
        _codec(m.encoding)
        for m in matches
        if m.chaos <= best.chaos and m.coherence >= best.coherence - SNIFF_TIE_COHERENCE
    }
    for preferred in PREFERRED_SNIFFED:
        if preferred in tied:
            return preferred, "sniffed"
    sniffed = _codec(best.encoding)
    if sniffed and not (exclude_utf8 and sniffed.replace("_", "-") == "utf-8"):
        return sniffed, "sniffed"
    return None


def decode_html(body: bytes, content_type_header: str | None) -> tuple[str, str, str]:
    """``(text, charset, charset_source)``; undecodable bytes become U+FFFD, never an error."""
    charset, source = detect_charset(body, content_type_header)
    text = body.decode(charset, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, charset, source
