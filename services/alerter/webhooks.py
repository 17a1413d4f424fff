"""Webhook delivery: Standard Webhooks signatures, SSRF-guarded URLs, capped backoff per
destination honouring Retry-After.

Signing (https://www.standardwebhooks.com, spec 1.0.0): the body is signed as
``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under the base64 secret that
follows ``whsec_``; ``webhook-signature`` is ``v1,<base64 digest>``. The ``standardwebhooks``
package does the signing, so receivers verify with any Standard Webhooks library. The
``webhook-id`` is ``alert_<alert id>``: stable across retries, the receiver's idempotency key.

Outcomes per attempt (spec, "Delivery success and failure"): 2xx delivered; 410 gone (the
receiver says stop: recorded on the alert and the watch, not retried); 408, 425, 429, 5xx and
network errors retried with capped exponential backoff and jitter, ``Retry-After`` honoured;
3xx and other 4xx are failures that a retry cannot fix. After the retry budget the alert is
failed and dead-lettered (``stage=alert``). A failing destination is never disabled: every
failure is recorded in the watch's status and the next alert tries again.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from shared import guard
from shared.retry import parse_retry_after

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
#: Spec: "Random. At least 24 bytes (192 bits, 512 maximum)".
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
#: Spec: "A recommended request timeout value for webhooks is somewhere between 15 and 30s".
DEFAULT_TIMEOUT_S = 15.0
DEFAULT_ATTEMPTS = 6
DEFAULT_BACKOFF_BASE_S = 1.0
DEFAULT_BACKOFF_MAX_S = 300.0
#: A Retry-After longer than this is capped (a receiver cannot park the alerter for a day).
DEFAULT_MAX_RETRY_AFTER_S = 3600.0
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "newsflow/0.1 alerter (Standard Webhooks)"


class WebhookError(ValueError):
    """A webhook URL or secret that cannot be used; the message says why."""


# --- secrets and signing ----------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    """The secret in ``whsec_<base64>`` form; raises :class:`WebhookError` if unusable."""
    value = secret.strip()
    raw = value.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "==", validate=False)
    except ValueError as exc:
        raise WebhookError("webhook secret is not base64 (expected whsec_<base64>)") from exc
    if len(key) < MIN_SECRET_BYTES:
        raise WebhookError(
            f"webhook secret too short: {len(key)} bytes, Standard Webhooks needs at least "
            f"{MIN_SECRET_BYTES} (omit --secret-file to get a generated one)"
        )
    return SECRET_PREFIX + raw


def signed_headers(secret: str, msg_id: str, body: str, *, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for *body* sent at *at*."""
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


# --- URLs and the SSRF guard ------------------------------------------------------------------


def check_url_syntax(url: str) -> str:
    """Reject what no resolver needs to see: scheme, credentials, missing host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise WebhookError(f"webhook URL must be http(s), not {parts.scheme or 'relative'!r}")
    if not parts.hostname:
        raise WebhookError("webhook URL has no host")
    if parts.username or parts.password:
        raise WebhookError("webhook URL must not carry credentials; sign with the secret")
    return url.strip()


async def check_url(
    url: str,
    *,
    allow_private: bool,
    resolve: Callable[[str, int], Awaitable[list[str]]] | None = None,
) -> str:
    """Vet a webhook URL when a watch is saved: same policy as fetching (private networks
    refused unless allowed, cloud metadata endpoints always refused).

    Raises :class:`WebhookError` with the reason. Delivery checks again at connect time
    (the transport is guarded), so a DNS answer that changes later is still refused.
    """
    url = check_url_syntax(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await (resolve or guard.system_resolve)(host, port)
        except OSError as exc:
            raise WebhookError(f"webhook host {host!r} does not resolve: {exc}") from exc
    refused = guard.is_metadata_ip if allow_private else guard.is_blocked_ip
    blocked = [a for a in addresses if refused(a)]
    if addresses and len(blocked) == len(addresses):
        error = guard.BlockedAddressError(host, blocked, private_allowed=allow_private)
        raise WebhookError(f"webhook URL refused: {error}")
    return url


def guarded_client(
    *, allow_private: bool, timeout_s: float = DEFAULT_TIMEOUT_S
) -> httpx.AsyncClient:
    """An HTTP client whose every connection goes through the SSRF guard the fetcher uses (shared/guard.py).

    Redirects are not followed (spec: a 3xx is a failure; the URL should be updated).
    """
    transport = guard.guarded_transport(
        allow_private=allow_private, limits=httpx.Limits(max_connections=32), http2=False
    )
    return httpx.AsyncClient(
        transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False
    )


def destination(url: str) -> str:
    """The backoff unit: the webhook URL (scheme, host and port normalised, path and query
    kept). Not the host: Slack, Teams or Discord serve every customer's webhook from one host,
    and one watch's dead hook (a 404, or a 429 with a one-hour Retry-After) must not hold up
    the others' alerts.
    """
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}{path}{query}"


# --- retry policy -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = DEFAULT_ATTEMPTS
    base_s: float = DEFAULT_BACKOFF_BASE_S
    max_s: float = DEFAULT_BACKOFF_MAX_S
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S

    def delay(self, failures: int, *, retry_after: float | None = None, rng: Any = random) -> float:
        """Seconds before the next try after *failures* consecutive failures (>= 1).

        Capped exponential backoff with "equal jitter" (half fixed, half random), so retries
        from many alerts spread out without ever retrying at once. A Retry-After wins when it
        is longer, up to ``max_retry_after_s``.
        """
        ceiling = min(self.max_s, self.base_s * (2 ** max(0, failures - 1)))
        delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_s))
        return delay


# --- one attempt ------------------------------------------------------------------------------

Verdict = Literal["delivered", "retry", "gone", "rejected"]


@dataclass(frozen=True, slots=True)
class Attempt:
    verdict: Verdict
    status: int | None
    error: str | None
    retry_after: float | None = None


def classify(status: int, headers: httpx.Headers | dict[str, str]) -> Attempt:
    """What a response status means for this delivery (see the module docstring)."""
    if 200 <= status < 300:
        return Attempt("delivered", status, None)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 410:
        return Attempt("gone", status, "410 Gone: the receiver asked to stop")
    if status in RETRYABLE_STATUS:
        return Attempt("retry", status, f"HTTP {status}", retry_after)
    if 300 <= status < 400:
        return Attempt(
            "rejected", status, f"HTTP {status}: redirects are not followed; update the URL"
        )
    return Attempt("rejected", status, f"HTTP {status}")


async def send_once(
    client: httpx.AsyncClient, url: str, body: str, *, secret: str | None, msg_id: str
) -> Attempt:
    """POST *body* once; never raises for network or HTTP failures (they are verdicts)."""
    headers = (
        signed_headers(secret, msg_id, body, at=datetime.now(UTC))
        if secret
        else {"webhook-id": msg_id, "content-type": "application/json", "user-agent": USER_AGENT}
    )
    # httpx's timeouts are per read: a receiver trickling a byte a second never trips them,
    # so the whole exchange gets one deadline too.
    deadline_s = client.timeout.read or DEFAULT_TIMEOUT_S
    try:
        async with asyncio.timeout(deadline_s):
            async with client.stream("POST", url, content=body.encode(), headers=headers) as reply:
                # the status is the answer; the body is never read (a receiver answering with
                # gigabytes would otherwise be held in the alerter's memory)
                return classify(reply.status_code, reply.headers)
    except TimeoutError:
        return Attempt("retry", None, f"no complete response within {deadline_s:g}s")
    except httpx.TimeoutException as exc:
        return Attempt("retry", None, f"{type(exc).__name__}: no response within {deadline_s:g}s")
    except httpx.HTTPError as exc:
        return Attempt("retry", None, f"{type(exc).__name__}: {exc}"[:500])
    except guard.BlockedAddressError as exc:  # refused at connect time: retrying cannot help
        return Attempt("rejected", None, str(exc)[:500])


# --- per-destination backoff ------------------------------------------------------------------


@dataclass
class _Destination:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended: ``delivered``, ``gone`` (410), or ``failed`` (rejected, or the
    retry budget spent)."""

    state: Literal["delivered", "gone", "failed"]
    attempts: int
    status: int | None
    error: str | None


#: Called after every attempt: (attempt, consecutive failures of the destination, seconds
#: until its next attempt or None). The alerter records it in the watch's status.
AttemptHook = Callable[[Attempt, int, float | None], Awaitable[None]]


class Deliverer:
    """Delivers alerts to webhooks, one at a time per destination, with shared backoff.

    A destination that fails delays every delivery to it (not only the failing one) until its
    next attempt time; other destinations are unaffected. ``clock``/``sleep`` are injectable
    for tests.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Any = random,
    ) -> None:
        self._client = client
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._destinations: dict[str, _Destination] = {}

    def failures(self, url: str) -> int:
        state = self._destinations.get(destination(url))
        return state.failures if state else 0

    async def deliver(
        self,
        url: str,
        body: str,
        *,
        secret: str | None,
        msg_id: str,
        on_attempt: AttemptHook | None = None,
    ) -> Outcome:
        """Deliver *body* to *url* within the retry budget; never raises for HTTP failures."""
        state = self._destinations.setdefault(destination(url), _Destination())
        last: Attempt | None = None
        for number in range(1, self.policy.attempts + 1):
            async with state.lock:
                wait = state.not_before - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                last = await send_once(self._client, url, body, secret=secret, msg_id=msg_id)
                if last.verdict == "delivered":
                    state.failures = 0
                    state.not_before = 0.0
                    delay = None
                else:
                    state.failures += 1
                    delay = self.policy.delay(
                        state.failures, retry_after=last.retry_after, rng=self._rng
                    )
                    state.not_before = self._clock() + delay
            if on_attempt is not None:
                await on_attempt(last, state.failures, delay)
            if last.verdict == "delivered":
                return Outcome("delivered", number, last.status, None)
            if last.verdict == "gone":
                return Outcome("gone", number, last.status, last.error)
            if last.verdict == "rejected":
                return Outcome("failed", number, last.status, last.error)
            logger.info(
                "webhook retry url=%s attempt=%s status=%s error=%s delay=%.1fs",
                url,
                number,
                last.status,
                last.error,
                delay or 0.0,
            )
        assert last is not None
        return Outcome(
            "failed",
            self.policy.attempts,
            last.status,
            f"gave up after {self.policy.attempts} attempts: {last.error}",
        )
