"""Quality of the streaming assignment on a labelled set: B-cubed P/R/F1 and the traps.

``python -m services.storyteller.evaluate [--text e5|ngram] [--json] [FILE]``

Articles are fed in publication order (as the stream would deliver them) to a fresh
:class:`~services.storyteller.assign.Storyboard`. B-cubed (Bagga & Baldwin 1998): for each
article, precision is the share of its predicted story that shares its gold story, recall the
share of its gold story that shares its predicted story; both averaged over articles. A trap
(two incidents that must stay apart) counts as merged when any predicted story holds articles
of two of its incidents.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from services.storyteller.assign import Item, Storyboard
from services.storyteller.text import CharNgramEncoder, TextEncoder, article_text, make_encoder

DEFAULT_SET = (
    Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "storyteller" / "eval.json"
)


def load_set(path: Path | str = DEFAULT_SET) -> dict[str, Any]:
    """The evaluation set as written by ``tests/fixtures/storyteller/build.py``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def items_of(data: dict[str, Any], encoder: TextEncoder) -> list[Item]:
    """Evaluation articles as :class:`Item` in publication order (text encoded in one call)."""
    articles = sorted(data["articles"], key=lambda a: (a["published_at"], a["id"]))
    texts = [article_text(a["title"], a["lead"]) for a in articles]
    if isinstance(encoder, CharNgramEncoder):
        encoder.fit(texts)  # idf from the set itself: the baseline's best case
    vectors = encoder.encode(texts)
    return [
        Item(
            article_id=a["id"],
            canonical_url=a["canonical_url"],
            url=a["canonical_url"],
            source=a["source"],
            language=a["language"],
            title=a["title"],
            published_at=datetime.fromisoformat(a["published_at"]),
            entities={e["key"]: e["salience"] for e in a["entities"]},
            vector=vectors[i],
            duplicate_of=a["duplicate_of"],
        )
        for i, a in enumerate(articles)
    ]


def bcubed(predicted: dict[int, int], gold: dict[int, str]) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1 of a clustering (article -> cluster) against gold."""
    by_pred: dict[int, set[int]] = defaultdict(set)
    by_gold: dict[str, set[int]] = defaultdict(set)
    for article, cluster in predicted.items():
        by_pred[cluster].add(article)
        by_gold[gold[article]].add(article)
    precision = recall = 0.0
    for article in predicted:
        mine = by_pred[predicted[article]]
        truth = by_gold[gold[article]]
        both = len(mine & truth)
        precision += both / len(mine)
        recall += both / len(truth)
    n = len(predicted) or 1
    p, r = precision / n, recall / n
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def run(data: dict[str, Any], encoder: TextEncoder) -> dict[str, Any]:
    """Feed the set in order; return the scores, traps merged, and the cost per article."""
    started = time.process_time()
    items = items_of(data, encoder)
    encoded = time.process_time()
    counter = itertools.count(1)
    board = Storyboard(new_id=lambda: next(counter), text_floor=encoder.floor)
    for item in items:
        board.assign(item)
    assigned = time.process_time()
    predicted = {
        item.article_id: board.resolve(board.story_of_article[item.article_id]) for item in items
    }
    gold = {a["id"]: a["story"] for a in data["articles"]}
    p, r, f1 = bcubed(predicted, gold)
    incidents_of: dict[int, set[str]] = defaultdict(set)
    for article, story in predicted.items():
        incidents_of[story].add(gold[article])
    merged = [
        trap["name"]
        for trap in data["traps"]
        if any(len(set(trap["incidents"]) & found) > 1 for found in incidents_of.values())
    ]
    developing = data.get("developing")
    dev_stories = Counter(predicted[a] for a, g in gold.items() if g == developing)
    n = len(items)
    return {
        "encoder": encoder.name,
        "articles": n,
        "incidents": len(set(gold.values())),
        "stories": len(set(predicted.values())),
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "traps": len(data["traps"]),
        "traps_merged": merged,
        "developing_stories": len(dev_stories),
        # share of the developing incident's articles in its largest predicted story
        "developing_share": round(max(dev_stories.values()) / sum(dev_stories.values()), 4)
        if dev_stories
        else None,
        "encode_cpu_ms_per_article": round(1000 * (encoded - started) / n, 3),
        "assign_cpu_ms_per_article": round(1000 * (assigned - encoded) / n, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT_SET))
    parser.add_argument("--text", default="e5", choices=("e5", "ngram"))
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    result = run(load_set(args.file), make_encoder(args.text))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    return 0 if result["f1"] >= 0.9 and not result["traps_merged"] else 1


if __name__ == "__main__":
    sys.exit(main())
