"""Webhooks: Standard Webhooks signatures (spec test vector), URL checks through the SSRF
guard, retries with capped backoff, Retry-After, 410, and per-destination state."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from services.alerter.webhooks import (
    Deliverer,
    RetryPolicy,
    WebhookError,
    check_secret,
    check_url,
    classify,
    guarded_client,
    new_secret,
    parse_retry_after,
    signed_headers,
)

# The Standard Webhooks reference test vector (libraries/python/tests/test_webhooks.py).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_spec_test_vector() -> None:
    headers = signed_headers(
        SPEC_SECRET, SPEC_ID, SPEC_BODY, at=datetime.fromtimestamp(SPEC_TS, UTC)
    )
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    assert headers["webhook-id"] == SPEC_ID
    assert headers["webhook-timestamp"] == str(SPEC_TS)


def test_signature_is_hmac_sha256_of_id_timestamp_body() -> None:
    """The algorithm itself, independent of the library: HMAC-SHA256 over id.ts.body with the
    base64-decoded secret, base64 digest behind 'v1,'."""
    secret = new_secret()
    at = datetime.now(UTC)
    body = '{"alert_id":1,"title":"Şırnak"}'
    headers = signed_headers(secret, "alert_1", body, at=at)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"alert_1.{int(at.timestamp())}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v1," + expected
    # and a receiver using the reference library accepts it
    assert Webhook(secret).verify(body, headers) == {"alert_id": 1, "title": "Şırnak"}


def test_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert check_secret(" " + secret + "\n") == secret
    with pytest.raises(WebhookError, match="too short"):
        check_secret("whsec_" + base64.b64encode(b"short").decode())


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (410, "gone"),
        (429, "retry"),
        (503, "retry"),
        (502, "retry"),
        (408, "retry"),
        (301, "rejected"),
        (400, "rejected"),
        (404, "rejected"),
    ],
)
def test_classify(status: int, verdict: str) -> None:
    assert classify(status, {}).verdict == verdict


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Mon, 30 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 30 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_capped_exponential_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(attempts=10, base_s=1.0, max_s=60.0, max_retry_after_s=120.0)
    rng = random.Random(1)
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (30, 60)]:
        delays = [policy.delay(failures, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not fixed
    assert policy.delay(1, retry_after=30, rng=rng) == 30
    assert policy.delay(1, retry_after=10_000, rng=rng) == 120  # capped


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def scripted(statuses: list[tuple[int, dict[str, str]]], seen: list[httpx.Request]):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, headers = statuses[min(len(seen), len(statuses)) - 1]
        return httpx.Response(status, headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_503_then_200_is_retried_after_retry_after_and_signed_each_time() -> None:
    seen: list[httpx.Request] = []
    clock = FakeClock()
    attempts: list[tuple[str, int, float | None]] = []

    async def on_attempt(attempt, failures, delay) -> None:  # type: ignore[no-untyped-def]
        attempts.append((attempt.verdict, failures, delay))

    secret = new_secret()
    async with scripted([(503, {"Retry-After": "5"}), (200, {})], seen) as client:
        deliverer = Deliverer(client, clock=clock, sleep=clock.sleep, rng=random.Random(2))
        outcome = await deliverer.deliver(
            "https://hooks.example.org/in",
            '{"a":1}',
            secret=secret,
            msg_id="alert_9",
            on_attempt=on_attempt,
        )
    assert (outcome.state, outcome.attempts, outcome.status) == ("delivered", 2, 200)
    assert clock.slept == [5.0]  # Retry-After beat the 0.5-1 s backoff
    assert [a[:2] for a in attempts] == [("retry", 1), ("delivered", 0)]
    assert all(r.headers["webhook-id"] == "alert_9" for r in seen)  # stable id for dedup
    for request in seen:
        Webhook(secret).verify(request.content.decode(), dict(request.headers))


async def test_410_is_not_retried() -> None:
    seen: list[httpx.Request] = []
    clock = FakeClock()
    async with scripted([(410, {})], seen) as client:
        outcome = await Deliverer(client, clock=clock, sleep=clock.sleep).deliver(
            "https://hooks.example.org/in", "{}", secret=None, msg_id="alert_1"
        )
    assert (outcome.state, outcome.attempts, outcome.status) == ("gone", 1, 410)
    assert "410" in (outcome.error or "")
    assert len(seen) == 1


async def test_retry_budget_then_failed_and_destination_backoff_is_shared() -> None:
    seen: list[httpx.Request] = []
    clock = FakeClock()
    policy = RetryPolicy(attempts=3, base_s=2.0, max_s=8.0)
    async with scripted([(500, {})], seen) as client:
        deliverer = Deliverer(
            client, policy=policy, clock=clock, sleep=clock.sleep, rng=random.Random(3)
        )
        outcome = await deliverer.deliver(
            "https://hooks.example.org/a", "{}", secret=None, msg_id="alert_1"
        )
        assert (outcome.state, outcome.attempts) == ("failed", 3)
        assert "gave up after 3 attempts" in (outcome.error or "")
        assert len(clock.slept) == 2 and 1 <= clock.slept[0] <= 2 and 2 <= clock.slept[1] <= 4
        # the same destination waits out the backoff the failures left
        assert deliverer.failures("https://HOOKS.example.org:443/a") == 3
        before = len(clock.slept)
        await deliverer.deliver("https://hooks.example.org/a", "{}", secret=None, msg_id="x")
        assert len(clock.slept) > before and clock.slept[before] >= 4
        # another webhook on the same host (Slack: one host for every customer) is not
        # delayed: it used to wait out /a's backoff, up to an hour after a 429 Retry-After
        assert deliverer.failures("https://hooks.example.org/b") == 0
        slept = len(clock.slept)
        await deliverer.deliver("https://hooks.example.org/b", "{}", secret=None, msg_id="z")
        assert len(clock.slept) - slept == policy.attempts - 1  # its own retries only
        assert clock.slept[slept] <= 2  # first backoff, not /a's
        # another destination is not delayed by it
        slept = len(clock.slept)
        seen.clear()
        await Deliverer(
            client, policy=RetryPolicy(attempts=1), clock=clock, sleep=clock.sleep
        ).deliver("https://other.example.net/", "{}", secret=None, msg_id="y")
        assert len(clock.slept) == slept


async def test_network_errors_are_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    clock = FakeClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        outcome = await Deliverer(client, clock=clock, sleep=clock.sleep).deliver(
            "https://hooks.example.org/", "{}", secret=None, msg_id="a"
        )
    assert outcome.state == "delivered" and outcome.attempts == 2


# --- SSRF ---------------------------------------------------------------------------------


def resolver(mapping: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        return mapping[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.org/x", "must be http(s)"),
        ("/relative", "must be http(s)"),
        ("https://user:pw@example.org/", "credentials"),
        ("http://127.0.0.1:8080/hook", "NEWSFLOW_ALLOW_PRIVATE_NETWORKS"),
        ("http://10.0.0.5/hook", "blocked address"),
        ("http://[::1]/hook", "blocked address"),
        ("http://internal.example/hook", "blocked address"),
        ("http://169.254.169.254/latest/meta-data", "blocked address"),
    ],
)
async def test_bad_webhook_urls_are_refused_at_add_time(url: str, fragment: str) -> None:
    with pytest.raises(WebhookError) as caught:
        await check_url(
            url, allow_private=False, resolve=resolver({"internal.example": ["192.168.1.4"]})
        )
    assert fragment in str(caught.value)


async def test_private_allowed_but_metadata_always_refused() -> None:
    resolve = resolver({"hooks.local": ["10.1.1.1"], "meta.example": ["169.254.169.254"]})
    assert await check_url("http://hooks.local/x", allow_private=True, resolve=resolve)
    assert await check_url("http://127.0.0.1:9/x", allow_private=True)
    with pytest.raises(WebhookError, match="metadata"):
        await check_url("http://meta.example/", allow_private=True, resolve=resolve)
    with pytest.raises(WebhookError, match="metadata"):
        await check_url("http://169.254.169.254/", allow_private=True)
    assert await check_url(
        "https://hooks.example.org/x",
        allow_private=False,
        resolve=resolver({"hooks.example.org": ["93.184.216.34"]}),
    )


async def test_delivery_client_refuses_private_targets_at_connect_time() -> None:
    hits: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/hook"
    try:
        clock = FakeClock()
        async with guarded_client(allow_private=False) as client:
            refused = await Deliverer(client, clock=clock, sleep=clock.sleep).deliver(
                url, "{}", secret=None, msg_id="a"
            )
        assert refused.state == "failed" and refused.attempts == 1
        assert "blocked address" in (refused.error or "")
        assert hits == []
        async with guarded_client(allow_private=True) as client:
            allowed = await Deliverer(client).deliver(url, "{}", secret=None, msg_id="b")
        assert allowed.state == "delivered" and hits == ["/hook"]
    finally:
        await runner.cleanup()


def test_timestamp_header_is_current_seconds() -> None:
    at = datetime.now(UTC) - timedelta(seconds=3)
    headers = signed_headers(new_secret(), "a", "{}", at=at)
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))


# --- hostile receivers ------------------------------------------------------------------------


async def test_reply_body_is_never_read() -> None:
    # a receiver answering 200 with an endless body used to be read whole into memory
    served = 0

    async def endless():
        nonlocal served
        while True:
            served += 1
            yield b"x" * 65536

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        outcome = await Deliverer(client).deliver(
            "https://hooks.example.org/", "{}", secret=None, msg_id="a"
        )
    assert outcome.state == "delivered"
    assert served <= 1


async def test_trickling_receiver_hits_the_whole_exchange_deadline() -> None:
    # one header byte every 0.1 s never trips httpx's per-read timeout of 0.5 s
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            writer.write(b"HTTP/1.1 200 OK\r\n")
            while True:
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    async with server, guarded_client(allow_private=True, timeout_s=0.5) as client:
        clock = FakeClock()
        outcome = await Deliverer(
            client, policy=RetryPolicy(attempts=1), clock=clock, sleep=clock.sleep
        ).deliver(f"http://127.0.0.1:{port}/", "{}", secret=None, msg_id="a")
    assert outcome.state == "failed"
    assert "no complete response within 0.5s" in (outcome.error or "")
    assert time.monotonic() - started < 3
