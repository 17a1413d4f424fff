"""One guarded HTTP exchange at a time: redirects, size cap, status classification, decoding.

Everything that can go wrong is mapped here, once, into the shared error tree:
``TransientError`` (connect errors, timeouts, 5xx, 408, 429) and ``PermanentError`` with a
``kind`` (``http_404``, ``ssrf_blocked``, ``too_large``, ``wrong_type``, ``redirect_loop``,
``too_many_redirects``, ``bad_url``, ``bad_encoding``, ``robots_disallowed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import brotli
import httpx

from services.fetcher.urls import ALLOWED_SCHEMES, host_of
from shared.errors import PermanentError, TransientError
from shared.guard import BlockedAddressError
from shared.retry import parse_retry_after

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: 4xx statuses that are worth retrying: the server says "later", not "never".
TRANSIENT_4XX = frozenset({408, 425, 429})
#: 5xx statuses that will not heal by waiting.
PERMANENT_5XX = frozenset({501, 505})
ACCEPT_ENCODING = "gzip, deflate, br"
HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
#: Content types accepted as article pages.
HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml")
DEFAULT_RETRY_AFTER_S = 30.0


@dataclass(slots=True)
class HttpResult:
    """The final response of an exchange (after redirects), with its body decompressed."""

    url: str
    final_url: str
    status_code: int
    headers: httpx.Headers
    body: bytes
    redirects: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    #: Every hop was 301/308: the resource has moved for good (feeds update their URL).
    moved_permanently: bool = False

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None


#: Bytes read before deciding what the body really is (gzip magic, zlib header, markup).
SNIFF_HEAD_BYTES = 16
GZIP_MAGIC = b"\x1f\x8b"
#: How uncompressed feeds and pages start (after a BOM and whitespace): markup or JSON.
_PLAIN_START = re.compile(rb"^(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?\s*[<{\[]")


def _is_zlib(head: bytes) -> bool:
    return len(head) >= 2 and (head[0] & 0x0F) == 8 and (head[0] << 8 | head[1]) % 31 == 0


def sniff_coding(head: bytes, declared: str) -> str:
    """The content coding the body's first bytes show, overruling ``declared`` when the
    two disagree (magic numbers beat headers): gzip bytes are gzip whatever was declared,
    and a body declared compressed that starts like markup or JSON is plain."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if declared == "identity":
        return "identity"
    if _PLAIN_START.match(head):
        return "identity"
    if declared == "gzip" and _is_zlib(head):
        return "deflate"  # zlib-wrapped deflate labelled gzip
    return declared


class _CappedDecoder:
    """Content-Encoding decoder that refuses to produce more than ``limit`` bytes.

    httpx's own decoders inflate a whole network chunk at once (a 64 KiB gzip bomb chunk
    becomes ~64 MiB in memory before any size check), so the raw stream is decoded here with
    an output bound per call.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise PermanentError(
                f"stacked content-encodings not supported: {encoding}", kind="bad_encoding"
            )
        self.declared = codings[0] if codings else "identity"
        if self.declared == "x-gzip":
            self.declared = "gzip"
        if self.declared not in ("identity", "gzip", "deflate", "br"):
            raise PermanentError(f"unsupported content-encoding {encoding!r}", kind="bad_encoding")
        self.coding = self.declared
        self._zlib: zlib._Decompress | None = None
        self._brotli: brotli.Decompressor | None = None
        self._first = True
        #: Bytes held until the body's first bytes show what it really is.
        self._head: bytes | None = b""
        #: Set when the bytes overruled the header: ``declared gzip, body is plain``.
        self.mismatch: str | None = None

    def _choose(self, head: bytes) -> None:
        """Trust the bytes over the header: servers send Content-Encoding: gzip over plain
        bodies, and .gz files with none (browsers and feed readers read both)."""
        actual = sniff_coding(head, self.declared)
        if actual != self.declared:
            self.mismatch = f"declared {self.declared}, body is {actual}"
            logger.info("content-encoding overruled by the bytes: %s", self.mismatch)
        self.coding = actual
        if actual == "gzip":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif actual == "br":
            self._brotli = brotli.Decompressor()

    def _too_large(self) -> PermanentError:
        return PermanentError(
            f"body exceeds {self.limit} bytes after decompression", kind="too_large"
        )

    def feed(self, data: bytes) -> bytes:
        if self._head is not None:
            self._head += data
            if len(self._head) < SNIFF_HEAD_BYTES:
                return b""
            data, self._head = self._head, None
            self._choose(data)
        return self._decode(data)

    def _decode(self, data: bytes) -> bytes:
        room = self.limit - self.produced
        try:
            if self.coding == "identity":
                out = data
            elif self._brotli is not None:
                out = self._brotli.process(data, output_buffer_limit=room + 1)
            else:
                if self._zlib is None:  # deflate: zlib-wrapped per RFC, raw in practice
                    raw = not (self._first and len(data) >= 2 and (data[0] & 0x0F) == 8)
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
                self._first = False
                out = self._zlib.decompress(data, room + 1)
                if self._zlib.unconsumed_tail:
                    raise self._too_large()
        except (zlib.error, brotli.error) as exc:
            raise PermanentError(f"corrupt {self.coding} body: {exc}", kind="bad_encoding") from exc
        self.produced += len(out)
        if self.produced > self.limit:
            raise self._too_large()
        return out

    def flush(self) -> bytes:
        out = b""
        if self._head is not None:  # a body shorter than the sniffing window
            data, self._head = self._head, None
            self._choose(data)
            out = self._decode(data)
        tail = self._zlib.flush() if self._zlib is not None else b""
        self.produced += len(tail)
        out += tail
        if self.produced > self.limit:
            raise self._too_large()
        return out


def classify_status(status: int, headers: Mapping[str, str], url: str) -> None:
    """Raise the mapped error for a non-success status; return for 2xx/304."""
    if 200 <= status < 300 or status == 304:
        return
    kind = f"http_{status}"
    if status in TRANSIENT_4XX or (status >= 500 and status not in PERMANENT_5XX):
        retry_after = parse_retry_after(headers.get("retry-after"))
        if status == 429 and retry_after is None:
            retry_after = DEFAULT_RETRY_AFTER_S
        raise TransientError(f"HTTP {status} from {url}", kind=kind, retry_after=retry_after)
    raise PermanentError(f"HTTP {status} from {url}", kind=kind)


async def _exchange(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    max_bytes: int,
    timeout_s: float,
    on_sent: Callable[[], None] | None = None,
) -> tuple[httpx.Response, bytes]:
    """One request, no redirects; the body is read only for 2xx responses."""

    async def trace(event: str, info: dict[str, object]) -> None:
        # httpcore reports when the request headers are actually written (HTTP/1.1 and 2).
        if on_sent is not None and event.endswith("send_request_headers.complete"):
            on_sent()

    try:
        request = client.build_request(
            "GET", url, headers=dict(headers), extensions={"trace": trace}
        )
        # Total deadline on top of httpx's per-read timeouts: a server dripping one byte per
        # second never trips a read timeout but must not hold a slot for minutes.
        async with asyncio.timeout(timeout_s):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                if not 200 <= response.status_code < 300:
                    return response, b""
                length = response.headers.get("content-length")
                if length and length.isdigit() and int(length) > max_bytes:
                    raise PermanentError(
                        f"Content-Length {length} exceeds {max_bytes} bytes", kind="too_large"
                    )
                decoder = _CappedDecoder(response.headers.get("content-encoding", ""), max_bytes)
                parts: list[bytes] = []
                async for chunk in response.aiter_raw():
                    parts.append(decoder.feed(chunk))
                parts.append(decoder.flush())
                body = b"".join(parts)
                if body.startswith(GZIP_MAGIC):
                    # A .gz file served with Content-Encoding: gzip is compressed twice.
                    inner = _CappedDecoder("gzip", max_bytes)
                    body = inner.feed(body) + inner.flush()
                return response, body
            finally:
                await response.aclose()
    except TimeoutError as exc:
        raise TransientError(
            f"no complete response from {url} within {timeout_s}s", kind="timeout"
        ) from exc
    except BlockedAddressError as exc:
        raise PermanentError(str(exc), kind="ssrf_blocked") from exc
    except httpx.TimeoutException as exc:
        raise TransientError(
            f"timeout fetching {url}: {type(exc).__name__}", kind="timeout"
        ) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentError(f"bad URL {url!r}: {exc}", kind="bad_url") from exc
    except httpx.TransportError as exc:
        raise TransientError(
            f"network error fetching {url}: {type(exc).__name__}: {exc}", kind="network"
        ) from exc


#: ``host -> async context`` yielding a ``mark_sent()`` callback (see politeness.Politeness).
SlotFactory = Callable[[str], contextlib.AbstractAsyncContextManager[Callable[[], None]]]
RobotsCheck = Callable[[str], Awaitable[None]]


async def fetch_url(
    client: httpx.AsyncClient,
    url: str,
    *,
    slot: SlotFactory,
    headers: Mapping[str, str] | None = None,
    max_bytes: int,
    max_redirects: int,
    timeout_s: float,
    robots: RobotsCheck | None = None,
) -> HttpResult:
    """GET ``url``, following up to ``max_redirects`` redirects by hand.

    Every hop is scheme-checked, robots-checked (if ``robots`` is given), waits for its host's
    politeness ``slot`` and connects through the guarded transport. Returns the final 2xx or
    304 response; raises TransientError/PermanentError otherwise.
    """
    started = time.perf_counter()
    visited = {url}
    redirects: list[str] = []
    permanent = True
    current = url
    hop_headers = dict(headers or {})
    while True:
        scheme = current.split(":", 1)[0].lower()
        if scheme not in ALLOWED_SCHEMES:
            raise PermanentError(
                f"only http(s) URLs are fetched, got {current!r}", kind="ssrf_blocked"
            )
        if robots is not None:
            await robots(current)
        async with slot(host_of(current)) as mark_sent:
            response, body = await _exchange(
                client,
                current,
                headers=hop_headers,
                max_bytes=max_bytes,
                timeout_s=timeout_s,
                on_sent=mark_sent,
            )
        status = response.status_code
        if status in REDIRECT_STATUSES and "location" in response.headers:
            try:
                target = str(
                    httpx.URL(current).join(response.headers["location"]).copy_with(fragment=None)
                )
            except httpx.InvalidURL as exc:
                raise PermanentError(
                    f"bad redirect target from {current}: {exc}", kind="bad_url"
                ) from exc
            if target in visited:
                raise PermanentError(
                    f"redirect loop: {' -> '.join([*redirects, current, target])}",
                    kind="redirect_loop",
                )
            if len(redirects) >= max_redirects:
                raise PermanentError(
                    f"more than {max_redirects} redirects starting at {url}",
                    kind="too_many_redirects",
                )
            visited.add(target)
            redirects.append(current)
            permanent = permanent and status in (301, 308)
            # Conditional headers belong to the first URL only.
            for name in ("if-none-match", "if-modified-since"):
                hop_headers.pop(name, None)
                hop_headers.pop(name.title(), None)
            current = target
            continue
        classify_status(status, response.headers, current)
        return HttpResult(
            url=url,
            final_url=current,
            status_code=status,
            headers=response.headers,
            body=body,
            redirects=redirects,
            moved_permanently=bool(redirects) and permanent,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    backoff_base_s: float,
    backoff_max_s: float,
    max_retry_after_s: float,
    on_retry_after: Callable[[float], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt`` up to ``attempts`` times while it raises TransientError.

    Waits ``d = min(backoff_max_s, base * 2**n)`` with equal jitter (``d/2 + U(0, d/2)``: the
    floor keeps a retry storm from hammering a recovering server), or the server's Retry-After
    when given; a Retry-After longer than ``max_retry_after_s`` is not waited out here (the
    error is raised at once so the caller can park the work instead of holding it).
    """
    rand = rng or random
    for n in range(1, attempts + 1):
        try:
            return await attempt()
        except TransientError as exc:
            if exc.retry_after is not None and on_retry_after is not None:
                on_retry_after(exc.retry_after)
            if n >= attempts:
                raise
            if exc.retry_after is not None:
                if exc.retry_after > max_retry_after_s:
                    raise
                delay = exc.retry_after
            else:
                step = min(backoff_max_s, backoff_base_s * 2 ** (n - 1))
                delay = step / 2 + rand.uniform(0, step / 2)
            logger.info(
                "retry attempt=%s kind=%s delay_s=%.2f detail=%s", n, exc.kind, delay, exc.detail
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def check_html_type(content_type: str | None, body: bytes, url: str) -> None:
    """Accept HTML (or untyped bodies that look like markup); raise ``wrong_type`` otherwise."""
    if content_type is None or content_type in ("application/octet-stream", "text/plain"):
        head = body[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body", b"<!--")):
            return
        raise PermanentError(
            f"{url} is not HTML (content-type {content_type or 'missing'})", kind="wrong_type"
        )
    if content_type not in HTML_TYPES:
        raise PermanentError(f"{url} is {content_type}, not HTML", kind="wrong_type")
