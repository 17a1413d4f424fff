"""``tell`` dead-letters a confirmation whose article id no stored row can have, up front."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.storyteller import service
from services.storyteller.store import BatchResult
from shared.messages import StoredArticle
from shared.stage import Decoded, StageInput

T0 = datetime(2026, 11, 30, tzinfo=UTC)
BIGINT_MAX = 2**63 - 1


def _confirmation(article_id: int) -> Decoded[StoredArticle]:
    item = StoredArticle(
        article_id=article_id,
        canonical_url=f"https://x.example/{article_id}",
        action="inserted",
        enriched_at=T0,
        stored_at=T0,
    )
    # json, not to_bytes(): orjson refuses integers beyond 64 bits, the wire may carry them
    return Decoded(raw=json.dumps(item.model_dump(mode="json")).encode(), item=item)


@pytest.mark.parametrize("bad", [BIGINT_MAX + 1, 2**64, 0, -1])
async def test_an_id_outside_bigint_costs_only_itself(
    bad: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2**63 in news.stored.v1 failed the whole batch in asyncpg ("value out of int64
    range"), re-ran its neighbours one by one, and was dead-lettered as a bug with a
    traceback in the log."""
    calls: list[list[int]] = []

    async def assign(_sessions: Any, ids: list[int], _encoder: Any) -> BatchResult:
        calls.append(list(ids))
        if any(not -(2**63) <= i <= BIGINT_MAX for i in ids):
            raise OverflowError("value out of int64 range")  # as asyncpg refuses it
        return BatchResult(records=[])

    monkeypatch.setattr(service, "assign_articles", assign)
    source = StageInput.of("storyteller", "", url_of=lambda s: s.canonical_url)
    records, letters = await service.tell(
        None, [_confirmation(5), _confirmation(bad), _confirmation(7)], None, source
    )  # type: ignore[arg-type]
    assert calls == [[5, 7]]
    assert records == []
    assert len(letters) == 1
    assert letters[0].error_kind == "invalid_message"
    assert str(bad) in letters[0].detail
