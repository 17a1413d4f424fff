"""Redirect stubs: pages that answer 200 with no text, only a refresh to the real article.

Alert services and some CMSs link items to such a page: ``<meta http-equiv="refresh"
content="0;url=...">`` or a one-line ``location.replace("...")``. The fetcher follows them
like an HTTP redirect (same guard, robots and hop limit). A page with article text is never a
stub, and a refresh inside ``<noscript>`` (a fallback for readers without JavaScript) is
never followed.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

#: A refresh later than this is a page that reloads itself, not a forward.
MAX_STUB_DELAY_S = 2.0
#: Visible text above this is content: the page is the article, whatever it refreshes to.
MAX_STUB_TEXT_CHARS = 200
#: A stub is small; a bigger page is parsed by the parser, never as a stub.
MAX_STUB_BYTES = 16 * 1024

#: HTML's declarative refresh: whole seconds, then any fraction (".5" and "0.5." are valid and
#: mean 0), then ``;`` or ``,``, an optional ``url=``, the URL (up to its closing quote).
_REFRESH = re.compile(r"^\s*(\d*)(?:\.[\d.]*)?\s*(?:[;,]\s*(?:url\s*=\s*)?(.*))?$", re.I | re.S)
_SCRIPT_TARGET = re.compile(
    r"""(?:window\.|document\.|top\.|self\.)?location(?:\.href)?\s*(?:=|\.replace\(|\.assign\()\s*"""
    r"""(["'])([^"'\s]+)\1""",
    re.I,
)
_HIDDEN = ("script", "style", "noscript", "title", "template")


def find_stub_target(html: str) -> str | None:
    """The URL a redirect stub forwards to (as written, maybe relative), or None.

    None for any page with more than :data:`MAX_STUB_TEXT_CHARS` of visible text, for a
    refresh delay above :data:`MAX_STUB_DELAY_S` and for refreshes inside ``<noscript>``.
    """
    if len(html) > MAX_STUB_BYTES or ("refresh" not in html.lower() and "location" not in html):
        return None
    try:
        doc = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    if _visible_chars(doc) > MAX_STUB_TEXT_CHARS:
        return None
    for meta in doc.iter("meta"):
        if (meta.get("http-equiv") or "").strip().lower() != "refresh":
            continue
        if any(a.tag == "noscript" for a in meta.iterancestors()):
            continue
        content = meta.get("content") or ""
        m = _REFRESH.match(content)
        if m is None or not (m.group(1) or content.lstrip().startswith(".")):
            continue
        if int(m.group(1) or 0) > MAX_STUB_DELAY_S:
            continue
        target = _unquoted((m.group(2) or "").strip())
        if target:
            return target
    scripts = [s.text or "" for s in doc.iter("script")]
    code = "\n".join(scripts).strip()
    if code and len(code.splitlines()) <= 3:
        m2 = _SCRIPT_TARGET.search(code)
        if m2:
            return m2.group(2)
    return None


def _unquoted(target: str) -> str:
    """The URL of a refresh: a quoted one ends at its closing quote (``'/a' x`` is ``/a``)."""
    if target[:1] in ("'", '"'):
        end = target.find(target[0], 1)
        target = target[1:] if end < 0 else target[1:end]
    return target.strip()


def _visible_chars(doc: lxml.html.HtmlElement) -> int:
    total = 0
    for el in doc.iter():
        if not isinstance(el.tag, str) or el.tag in _HIDDEN:
            pass
        elif el.text:
            total += len(el.text.strip())
        if el.tail and el.getparent() is not None:
            total += len(el.tail.strip())
    return total
