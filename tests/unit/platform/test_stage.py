"""shared.stage: every record ends as a result or a dead letter that keeps its attempt."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.dlq import ATTEMPT_HEADER, attempt_from_headers
from shared.errors import PermanentError
from shared.messages import Article
from shared.stage import Decoded, StageInput, decode_events, run_batch, run_each
from tests.support.factories import article


@dataclass
class Event:
    value: bytes
    key: bytes | None = None
    headers: dict[str, bytes] = field(default_factory=dict)


def test_attempt_header_is_read_and_bad_values_count_as_first() -> None:
    assert attempt_from_headers({ATTEMPT_HEADER: b"3"}) == 3
    assert attempt_from_headers({}) == 1
    assert attempt_from_headers(None) == 1
    assert attempt_from_headers({ATTEMPT_HEADER: b"three"}) == 1
    assert attempt_from_headers({ATTEMPT_HEADER: b"0"}) == 1


def test_decode_keeps_the_replayed_attempt_for_good_and_bad_records() -> None:
    good = article().to_bytes()
    events = [
        Event(good, b"k1"),
        Event(good, b"k2", {ATTEMPT_HEADER: b"2"}),
        Event(b"{not json", b"k3", {ATTEMPT_HEADER: b"4"}),
    ]
    decoded, letters = decode_events(
        events, Article, StageInput("enrich", "news.articles.v1", "test")
    )
    assert [(record.item.url, record.attempt) for record in decoded] == [
        (article().url, 1),
        (article().url, 2),
    ]
    assert decoded[0].raw == good
    [letter] = letters
    assert (letter.error_kind, letter.attempt, letter.key) == ("invalid_message", 4, "k3")
    assert letter.payload == "{not json"


def _fail_on_poison(item: Article) -> str:
    if "poison" in item.url:
        raise PermanentError("cannot parse", kind="empty")
    return item.url


def test_a_record_that_fails_again_is_dead_lettered_with_its_attempt() -> None:
    ok = article("https://news.example.com/ok")
    poison = article("https://news.example.com/poison")
    records = [Decoded(ok.to_bytes(), ok, 1), Decoded(poison.to_bytes(), poison, 3)]
    results, letters = run_each(
        records,
        _fail_on_poison,
        StageInput(
            "parse", "news.pages.v1", "test", url_of=lambda a: a.url, key_of=lambda a: a.host
        ),
    )
    assert results == ["https://news.example.com/ok"]
    [letter] = letters
    assert (letter.url, letter.error_kind, letter.attempt) == (poison.url, "empty", 3)


def test_a_failed_batch_falls_back_to_single_records_keeping_attempts() -> None:
    ok = article("https://news.example.com/ok")
    poison = article("https://news.example.com/poison")
    records = [Decoded(ok.to_bytes(), ok, 2), Decoded(poison.to_bytes(), poison, 2)]
    results, letters = run_batch(
        records,
        lambda items: [_fail_on_poison(item) for item in items],
        _fail_on_poison,
        StageInput(
            "enrich",
            "news.articles.v1",
            "test",
            url_of=lambda a: a.url,
            key_of=lambda a: a.canonical_url,
        ),
    )
    assert results == ["https://news.example.com/ok"]
    assert [(letter.url, letter.attempt) for letter in letters] == [(poison.url, 2)]
