"""Scheduling policy and URL normalisation (pure functions)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.fetcher import schedule
from services.fetcher.urls import host_of, normalize_url

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MIN_S, MAX_S = 300.0, 86400.0


def _times(gap_s: float, n: int, *, last_ago_s: float = 0.0) -> list[datetime]:
    end = NOW - timedelta(seconds=last_ago_s)
    return [end - timedelta(seconds=gap_s * i) for i in reversed(range(n))]


def _plan(**kw: object) -> tuple[datetime, float]:
    args: dict[str, object] = {
        "now": NOW,
        "current_s": 900.0,
        "publish_times": [],
        "new_items": 0,
        "min_s": MIN_S,
        "max_s": MAX_S,
        "rng": random.Random(1),
    }
    args.update(kw)
    return schedule.plan_success(**args)  # type: ignore[arg-type]


def test_busy_feed_polled_often_quiet_feed_rarely() -> None:
    _, busy = _plan(publish_times=_times(1200, 10), new_items=2)
    _, quiet = _plan(publish_times=_times(6 * 3600, 10), new_items=1)
    assert busy == 600.0  # half the 20-minute cadence
    assert quiet == 3 * 3600.0
    _, hyper = _plan(publish_times=_times(30, 10), new_items=5)
    assert hyper == MIN_S  # clamped to the minimum


def test_feed_that_went_silent_drifts_towards_max() -> None:
    _, silent = _plan(publish_times=_times(600, 10, last_ago_s=10 * 86400))
    assert silent == MAX_S


def test_new_feed_stays_near_the_minimum_until_its_rate_is_known() -> None:
    # The demo site's backlog: three items days apart, the last one ten days ago. Learned
    # from that alone, the next poll was hours away and a new item waited unseen.
    backlog = _times(86400, 3, last_ago_s=10 * 86400)
    _, settled = _plan(publish_times=backlog, new_items=3)
    assert settled >= 6 * 3600
    at, learning = _plan(publish_times=backlog, new_items=3, learning=True)
    assert learning == schedule.NEW_FEED_INTERVAL_FACTOR * MIN_S
    assert at - NOW <= timedelta(seconds=learning * (1 + schedule.JITTER))
    # a publisher hint is still honoured while learning
    _, hinted = _plan(publish_times=backlog, learning=True, hint_s=3600.0)
    assert hinted == 3600.0
    assert schedule.is_learning(NOW - timedelta(hours=1), now=NOW)
    assert not schedule.is_learning(NOW - timedelta(days=2), now=NOW)
    assert not schedule.is_learning(None, now=NOW)


def test_without_dates_interval_adapts_multiplicatively() -> None:
    _, faster = _plan(current_s=1000.0, new_items=3)
    _, slower = _plan(current_s=1000.0, new_items=0)
    assert faster < 1000.0 < slower


def test_publisher_hints_are_floors_but_capped() -> None:
    _, with_ttl = _plan(publish_times=_times(600, 10), hint_s=3600.0)
    assert with_ttl == 3600.0
    _, cached = _plan(publish_times=_times(600, 10), cache_s=1800.0)
    assert cached == 1800.0
    _, absurd = _plan(hint_s=365 * 86400.0)
    assert absurd == MAX_S
    at, _ = _plan(publish_times=_times(600, 10), retry_after_s=7200.0)
    assert at - NOW >= timedelta(seconds=7200)


def test_jitter_spreads_feeds() -> None:
    rng = random.Random(7)
    delays = {
        (
            schedule.plan_success(
                now=NOW,
                current_s=3600,
                publish_times=[],
                new_items=0,
                min_s=MIN_S,
                max_s=MAX_S,
                rng=rng,
            )[0]
            - NOW
        ).total_seconds()
        for _ in range(20)
    }
    assert len(delays) == 20
    assert all(3600 * 1.4 * 0.9 <= d <= 3600 * 1.4 * 1.1 for d in delays)


def test_failure_backoff_is_exponential_capped_and_never_stops() -> None:
    delays = [
        (
            schedule.plan_failure(
                now=NOW, failures=n, min_s=MIN_S, backoff_max_s=6 * 3600, rng=random.Random(0)
            )
            - NOW
        ).total_seconds()
        for n in range(1, 12)
    ]
    assert delays[1] > delays[0] * 1.7
    assert max(delays) <= 6 * 3600
    assert delays[-1] >= 6 * 3600 * 0.9  # still scheduled at the cap, not disabled
    honoured = schedule.plan_failure(
        now=NOW,
        failures=1,
        min_s=MIN_S,
        backoff_max_s=6 * 3600,
        retry_after_s=3600,
        rng=random.Random(0),
    )
    assert honoured - NOW >= timedelta(seconds=3600 * 0.9)


def test_cache_lifetime() -> None:
    assert schedule.cache_lifetime({"cache-control": "public, max-age=600"}, now=NOW) == 600
    assert schedule.cache_lifetime({"cache-control": "max-age=60, s-maxage=900"}, now=NOW) == 900
    assert schedule.cache_lifetime({"cache-control": "no-cache"}, now=NOW) is None
    expires = {"expires": "Sun, 22 Nov 2026 13:00:00 GMT"}
    assert schedule.cache_lifetime(expires, now=NOW) == 3600


def test_merge_publish_times_keeps_recent_distinct() -> None:
    old = _times(60, 25)
    merged = schedule.merge_publish_times(old, [NOW, NOW])
    assert len(merged) == schedule.MAX_PUBLISH_TIMES and merged[-1] == NOW
    assert merged == sorted(merged)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://News.Example:80/a?b=1#frag", "http://news.example/a?b=1"),
        ("https://news.example:443", "https://news.example/"),
        ("https://news.example:8443/x", "https://news.example:8443/x"),
        (
            "https://news.example/a?utm_source=x&id=5&fbclid=abc&gclid=1&UTM_Campaign=y",
            "https://news.example/a?id=5",
        ),
        ("https://news.example/a?mc_cid=1&mc_eid=2", "https://news.example/a"),
        ("https://haberler.com.tr./a", "https://haberler.com.tr/a"),
        ("https://bölge.example/a", "https://xn--blge-5qa.example/a"),
    ],
)
def test_normalize_url(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


def test_normalize_rejects_non_http_and_credentials() -> None:
    for bad in (
        "javascript:alert(1)",
        "mailto:a@b",
        "file:///etc/passwd",
        "https://u:p@h.example/",
    ):
        with pytest.raises(ValueError):
            normalize_url(bad)


def test_relative_and_host_of() -> None:
    assert (
        normalize_url("../b?x=1", base="https://a.example/news/c/")
        == "https://a.example/news/b?x=1"
    )
    assert host_of("https://News.Example/a") == "news.example"
    assert host_of("http://127.0.0.1:8080/a") == "127.0.0.1:8080"
    assert host_of("https://a.example:443/") == "a.example"
