"""Quality of the streaming assignment on a labelled set: B-cubed P/R/F1 and the traps.

``python -m services.storyteller.evaluate [--text e5|ngram] [--entities enricher|modelled]
[--ngram-idf none|set] [--eager] [--json] [FILE]``

``--text`` builds the encoder as the stage does (:func:`~services.storyteller.text.make_encoder`,
the ``NEWSFLOW_STORY_TEXT_ENCODER`` names): n-grams with uniform weights. ``--ngram-idf set``
fits the n-gram idf on the evaluation set itself first: a best case no deployment has (the
stage cannot know the texts it will cluster), kept only to compare with.

Entities are the real enricher's (``entities.json`` beside the set, written by
``python -m tests.fixtures.storyteller.enrich`` and checked against a fresh enricher run by a
test), so quality is measured on what the pipeline produces; ``--entities modelled`` uses the
set builder's own (none for Arabic). Articles are fed in publication order (as the stream would deliver them) to a fresh
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
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from services.storyteller.assign import Item, Storyboard
from services.storyteller.text import (
    ENCODERS,
    CharNgramEncoder,
    TextEncoder,
    article_text,
    make_encoder,
)

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "storyteller"
DEFAULT_SET = FIXTURES / "eval.json"
#: the enricher's entities for the set's articles (``tests/fixtures/storyteller/enrich.py``)
ENRICHER_ENTITIES = "entities.json"


def load_set(path: Path | str = DEFAULT_SET, *, entities: str = "enricher") -> dict[str, Any]:
    """The evaluation set as written by ``tests/fixtures/storyteller/build.py``.

    ``entities="enricher"``: each article's ``entities`` replaced by the real enricher's
    (``entities.json`` beside *path*; FileNotFoundError when absent); ``"modelled"``: the
    builder's own, as in the file."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if entities == "enricher":
        found = json.loads((path.parent / ENRICHER_ENTITIES).read_text(encoding="utf-8"))
        for article in data["articles"]:
            keys = found["articles"][str(article["id"])]
            # kind from the key; mentions are not used by the storyteller (1 when stored)
            article["entities"] = [
                {"key": k, "kind": k.split(":", 1)[0], "salience": s, "mentions": 1}
                for k, s in keys.items()
            ]
        data["entities_from"] = f"enricher rules {found['rules_version']}"
    elif entities != "modelled":
        raise ValueError(f"unknown entity source {entities!r} (enricher | modelled)")
    return data


def items_of(
    data: dict[str, Any], encoder: TextEncoder, *, eager: bool = False, idf_from_set: bool = False
) -> list[Item]:
    """Evaluation articles as :class:`Item` in publication order. Vectors are left to the
    board (encoded when a decision needs them, as in the stage) unless *eager* (all
    encoded in one call, as before lazy encoding). *idf_from_set*: an n-gram encoder's idf
    is fitted on these texts first (not what the stage does; see the module docstring)."""
    articles = sorted(data["articles"], key=lambda a: (a["published_at"], a["id"]))
    texts = [article_text(a["title"], a["lead"]) for a in articles]
    inner = encoder.inner if isinstance(encoder, _Timed) else encoder
    if idf_from_set:
        if not isinstance(inner, CharNgramEncoder):
            raise ValueError("an idf fitted on the set applies to the n-gram encoder only")
        inner.fit(texts)
    vectors = (
        encoder.encode(texts).astype(np.float16).astype(np.float32)
        if eager
        else [None] * len(articles)
    )
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
            text=texts[i],
        )
        for i, a in enumerate(articles)
    ]


def bcubed(predicted: dict[int, int], gold: dict[int, str]) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1 of a clustering (article -> cluster) against gold."""
    return bcubed_of(list(predicted), predicted, gold)


def bcubed_of(
    articles: list[int], predicted: dict[int, int], gold: dict[int, str]
) -> tuple[float, float, float]:
    """B-cubed P/R/F1 averaged over *articles* only (a subset, e.g. one language), each
    article's predicted and gold clusters taken from the whole clustering."""
    by_pred: dict[int, set[int]] = defaultdict(set)
    by_gold: dict[str, set[int]] = defaultdict(set)
    for article, cluster in predicted.items():
        by_pred[cluster].add(article)
        by_gold[gold[article]].add(article)
    precision = recall = 0.0
    for article in articles:
        mine = by_pred[predicted[article]]
        truth = by_gold[gold[article]]
        both = len(mine & truth)
        precision += both / len(mine)
        recall += both / len(truth)
    n = len(articles) or 1
    p, r = precision / n, recall / n
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def run(
    data: dict[str, Any], encoder: TextEncoder, *, eager: bool = False, idf_from_set: bool = False
) -> dict[str, Any]:
    """Feed the set in order; return the scores, traps merged, how many articles were
    encoded and the CPU cost per article (encoding included in ``assign``)."""
    timed = _Timed(encoder)
    started = time.process_time()
    items = items_of(data, timed, eager=eager, idf_from_set=idf_from_set)
    prepared = time.process_time()
    counter = itertools.count(1)
    board = Storyboard(new_id=lambda: next(counter), text_floor=encoder.floor, encode=timed.encode)
    for item in items:
        board.assign(item)
    assigned = time.process_time()
    predicted = {
        item.article_id: board.resolve(board.story_of_article[item.article_id]) for item in items
    }
    gold = {a["id"]: a["story"] for a in data["articles"]}
    p, r, f1 = bcubed(predicted, gold)
    language = {a["id"]: a["language"] for a in data["articles"]}
    by_language = {}
    for lang in sorted(set(language.values())):
        # B-cubed over one language's articles, against the whole clustering: each article's
        # precision and recall count its predicted and gold story in every language
        ids = [a for a in predicted if language[a] == lang]
        lp, lr, lf = bcubed_of(ids, predicted, gold)
        by_language[lang] = {
            "articles": len(ids),
            "precision": round(lp, 4),
            "recall": round(lr, 4),
            "f1": round(lf, 4),
        }
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
        "encoder": encoder.name + (" (idf fitted on the set)" if idf_from_set else ""),
        "articles": n,
        "incidents": len(set(gold.values())),
        "stories": len(set(predicted.values())),
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "by_language": by_language,
        "entities_from": data.get("entities_from", "modelled"),
        "traps": len(data["traps"]),
        "traps_merged": merged,
        "developing_stories": len(dev_stories),
        # share of the developing incident's articles in its largest predicted story
        "developing_share": round(max(dev_stories.values()) / sum(dev_stories.values()), 4)
        if dev_stories
        else None,
        "encoded_articles": len(items) if eager else board.encoded,
        "reasons": dict(sorted(board.reasons.items())),
        "encode_cpu_ms_per_article": round(1000 * timed.seconds / n, 3),
        "assign_cpu_ms_per_article": round(1000 * ((assigned - started) - timed.seconds) / n, 3),
        "prepare_cpu_ms_per_article": round(1000 * (prepared - started) / n, 3),
    }


class _Timed:
    """An encoder wrapper that adds up the CPU seconds spent encoding."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.name, self.floor, self.dim = encoder.name, encoder.floor, encoder.dim
        self.inner = encoder
        self.seconds = 0.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        started = time.process_time()
        try:
            return self.inner.encode(texts)
        finally:
            self.seconds += time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT_SET))
    parser.add_argument(
        "--text",
        default="e5",
        choices=tuple(ENCODERS),
        help="the encoder, as NEWSFLOW_STORY_TEXT_ENCODER names it in the stage",
    )
    parser.add_argument(
        "--ngram-idf",
        default="none",
        choices=("none", "set"),
        help="n-grams: uniform weights as in the stage (default), or an idf fitted on the "
        "set itself (a best case, to compare with)",
    )
    parser.add_argument(
        "--entities",
        default="enricher",
        choices=("enricher", "modelled"),
        help="the real enricher's entities (default) or the set builder's",
    )
    parser.add_argument(
        "--eager", action="store_true", help="encode every article up front (no skipping)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    if args.ngram_idf == "set" and args.text != "ngram":
        parser.error("--ngram-idf set needs --text ngram")
    result = run(
        load_set(args.file, entities=args.entities),
        make_encoder(args.text),
        eager=args.eager,
        idf_from_set=args.ngram_idf == "set",
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    return 0 if result["f1"] >= 0.9 and not result["traps_merged"] else 1


if __name__ == "__main__":
    sys.exit(main())
