"""Entity-level quality of the enricher against hand-annotated gold files
(``tests/fixtures/enricher/eval*.json``): the gate in ``tests/unit/enricher/test_eval.py`` and
the ``--eval`` mode of ``python -m tests.bench.enricher`` both use it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from services.enricher.pipeline import Enricher
from shared.messages import Article

#: Every gold article's timestamps (the enricher does not read them; fixed for determinism).
FIXED_TIME = datetime(2026, 11, 20, tzinfo=UTC)


def gold_articles(paths: Sequence[str], *, copies: int = 1) -> list[Article]:
    """The articles of gold files (``tests/fixtures/enricher``) as Article records."""
    articles = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        for item in data["articles"]:
            url = f"https://eval.example/{item['id']}"
            articles.append(
                Article(
                    url=url,
                    final_url=url,
                    canonical_url=url,
                    host="eval.example",
                    title=item.get("title"),
                    body_text=item["body"],
                    content_hash=item["id"],
                    language="en",
                    discovered_at=FIXED_TIME,
                    fetched_at=FIXED_TIME,
                    parsed_at=FIXED_TIME,
                )
            )
    return articles * copies


def evaluate(enricher: Enricher, path: str) -> dict[str, float]:
    """Entity-level precision/recall against a gold file (``tests/fixtures/enricher``):
    an entity counts when its exact key (kind included) is predicted for the article."""
    with open(path, encoding="utf-8") as handle:
        gold = [set(item["gold"]) for item in json.load(handle)["articles"]]
    tp = predicted = expected = 0
    for article, keys_gold in zip(gold_articles([path]), gold, strict=True):
        keys = {entity.key for entity in enricher.enrich(article).entities}
        tp += len(keys & keys_gold)
        predicted += len(keys)
        expected += len(keys_gold)
    return {
        "precision": round(tp / predicted, 4) if predicted else 0.0,
        "recall": round(tp / expected, 4) if expected else 0.0,
        "gold_entities": expected,
    }
