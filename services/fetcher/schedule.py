"""When to poll a feed next: pure functions, so the policy is testable without a clock.

Success: the interval is learned from the feed's own publish cadence (median gap between
recent items, stretched when the feed has gone quiet), clamped to [min, max], then raised to
honour the publisher's hints (TTL, sy:updatePeriod, Cache-Control/Expires) and Retry-After.
A new feed is kept near the minimum interval (at most NEW_FEED_INTERVAL_FACTOR x min) for
its first NEW_FEED_LEARNING_S: its backlog says little about when the next item comes (a
quiet sample feed was scheduled ten hours out after one poll), and a feed someone just
added should show its next item soon. Publisher hints still apply.
Failure: capped exponential backoff. A feed is never disabled: at the cap it keeps being
retried, and its status columns say why.
"""

from __future__ import annotations

import email.utils
import itertools
import random
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

#: Poll about twice per expected new item: halves the mean discovery delay for the cost of
#: one extra request per item.
CADENCE_FACTOR = 0.5
#: Without usable dates, shrink/grow the interval multiplicatively (AIMD-like).
SPEEDUP_ON_NEW = 0.7
SLOWDOWN_ON_QUIET = 1.4
#: Publish times remembered per feed for the cadence estimate.
MAX_PUBLISH_TIMES = 20
MIN_SAMPLES = 3
#: A feed added less than this long ago is still learning its publishing rate...
NEW_FEED_LEARNING_S = 6 * 3600.0
#: ...and is polled at most this many minimum intervals apart meanwhile.
NEW_FEED_INTERVAL_FACTOR = 2.0
JITTER = 0.1  # ±10 %: spreads feeds added together so they don't poll in lock-step

_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)


def cache_lifetime(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """Seconds the response says it stays fresh (Cache-Control max-age, else Expires)."""
    cc = headers.get("cache-control") or ""
    low = cc.lower()
    if "no-store" in low or "no-cache" in low:
        return None
    ages = {m.group(1).lower(): int(m.group(2)) for m in _MAX_AGE.finditer(cc)}
    if ages:
        return float(ages.get("s-maxage", ages.get("max-age", 0)))
    expires = headers.get("expires")
    if expires:
        try:
            when = email.utils.parsedate_to_datetime(expires)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    return None


def merge_publish_times(
    existing: Iterable[datetime] | None, new: Iterable[datetime], *, keep: int = MAX_PUBLISH_TIMES
) -> list[datetime]:
    """The ``keep`` most recent distinct publish times, oldest first."""
    merged = sorted(set(existing or ()) | set(new))
    return merged[-keep:]


def learned_interval(
    publish_times: Sequence[datetime],
    *,
    current_s: float,
    new_items: int,
    now: datetime,
) -> float:
    """Interval suggested by the feed's cadence (unclamped)."""
    times = sorted(publish_times)
    if len(times) >= MIN_SAMPLES:
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        gaps = [g for g in gaps if g > 0]
        if gaps:
            typical = statistics.median(gaps)
            quiet = (now - times[-1]).total_seconds()
            if quiet > typical:
                # The feed has gone quieter than its history says: move towards the silence
                # so a dead feed drifts to the max instead of being polled at its old pace.
                typical = (typical + quiet) / 2
            return typical * CADENCE_FACTOR
    return current_s * (SPEEDUP_ON_NEW if new_items else SLOWDOWN_ON_QUIET)


def plan_success(
    *,
    now: datetime,
    current_s: float,
    publish_times: Sequence[datetime],
    new_items: int,
    min_s: float,
    max_s: float,
    hint_s: float | None = None,
    cache_s: float | None = None,
    retry_after_s: float | None = None,
    learning: bool = False,
    rng: random.Random | None = None,
) -> tuple[datetime, float]:
    """``(next_poll_at, interval_s)`` after a successful poll (incl. 304 / unchanged).

    ``learning``: the feed is new (see :func:`is_learning`), so the interval stays near
    ``min_s`` whatever its backlog suggests."""
    interval = learned_interval(publish_times, current_s=current_s, new_items=new_items, now=now)
    interval = min(max(interval, min_s), max_s)
    if learning:
        interval = min(interval, max(min_s, min(NEW_FEED_INTERVAL_FACTOR * min_s, max_s)))
    # Publisher hints are floors ("not more often than"), but never beyond our max.
    for floor in (hint_s, cache_s, retry_after_s):
        if floor:
            interval = max(interval, min(floor, max_s))
    delay = interval * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    delay = max(delay, min_s, min(retry_after_s or 0.0, max_s))
    return now + timedelta(seconds=delay), interval


def is_learning(added_at: datetime | None, *, now: datetime) -> bool:
    """True while a feed is too new for its publishing rate to be trusted."""
    return added_at is not None and (now - added_at).total_seconds() < NEW_FEED_LEARNING_S


def plan_failure(
    *,
    now: datetime,
    failures: int,
    min_s: float,
    backoff_max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Next attempt after ``failures`` consecutive failures: min * 2**(n-1), capped, jittered."""
    delay = min(backoff_max_s, min_s * 2 ** max(failures - 1, 0))
    if retry_after_s:
        delay = max(delay, min(retry_after_s, backoff_max_s))
    delay *= (rng or random).uniform(1 - JITTER, 1)
    return now + timedelta(seconds=max(delay, 1.0))
