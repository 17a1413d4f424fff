"""URL normalisation: one spelling per article, so dedup and per-host politeness agree.

The rules are deliberately conservative: only changes that cannot alter what the server
returns (case of scheme/host, default ports, fragments, well-known tracking parameters).
Query parameter order is kept because some CMSs route on it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOWED_SCHEMES = ("http", "https")

#: Exact query keys that only track the click, never select content (lower-case).
TRACKING_PARAMS = (
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "wt_mc",
    "cmpid",
    "ocid",
    "ref_src",
    "ref_url",
    "at_medium",
    "at_campaign",
    "smid",
)
#: Query key prefixes that only track the click (lower-case).
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "__twitter_impression")


#: What the WHATWG URL parser does with control characters in a URL (browsers agree):
#: leading/trailing C0 controls and spaces are stripped, tab/LF/CR removed anywhere, the rest
#: percent-encoded. A raw NUL would otherwise reach PostgreSQL (which refuses it) and a lone
#: surrogate the topics (UTF-8 cannot encode it; it is encoded as U+FFFD, like a decoder).
_URL_EDGE = "".join(chr(c) for c in range(0x21))
_URL_REMOVED = re.compile("[\t\n\r]")
_URL_ESCAPED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _escape_control(m: re.Match[str]) -> str:
    char = m.group()
    return "%EF%BF%BD" if "\ud800" <= char <= "\udfff" else f"%{ord(char):02X}"


def _is_tracking(key: str) -> bool:
    low = key.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def _idna_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def normalize_url(url: str, *, base: str | None = None) -> str:
    """Return the canonical spelling of ``url`` (resolved against ``base`` if relative).

    Raises ``ValueError`` for URLs that are not absolute http(s) URLs after resolution.
    """
    url = _URL_ESCAPED.sub(_escape_control, _URL_REMOVED.sub("", url.strip(_URL_EDGE)))
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    host = _idna_host(parts.hostname)
    if "%" in host:
        raise ValueError(f"bad host in URL: {url!r}")
    if ":" in host:  # IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {url!r}") from exc
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if parts.username or parts.password:
        # Credentials never belong in a shared article key; keep them out of logs and topics.
        raise ValueError(f"URL carries credentials: {parts.scheme}://…@{host}")
    path = parts.path or "/"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not _is_tracking(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str) -> str:
    """The politeness/partition key of a URL: its lower-case host, with a non-default port."""
    parts = urlsplit(url)
    host = _idna_host(parts.hostname or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != DEFAULT_PORTS.get(parts.scheme.lower()):
        return f"{host}:{port}"
    return host
