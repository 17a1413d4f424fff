"""Storyteller throughput: articles/s assigned through PostgreSQL with many active stories.

``python -m tests.bench.storyteller [--stored 50000] [--stories 5000] [--new 3000] [--batch 100]``

A throwaway PostgreSQL (as ``newsflow stack up``), migrated. ``--stored`` synthetic articles
are stored with the real writer (entities and links included); all but ``--new`` of them are
filed into ``--stories`` active stories (all inside one time window, so every story is a
live candidate); then the ``--new`` articles (60 % reports of existing stories, 40 % new
incidents, in publication order) go through ``assign_articles`` in batches, timed.

Text vectors are synthetic (a story direction plus noise) and served from a table, so the
timing is the stage without the encoder; the encoder's cost per article is measured on the
evaluation set's texts and added (``e5_cpu_ms_per_article``) to give the end-to-end rate.
Entities follow a news-like skew: three country keys in every article, 400 places,
150 actors, a long tail of background names.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
SEED = 20261130
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
SPAN_H = 60.0  # every story inside one 3-day window: all of them are active
COUNTRIES = ("GPE:turkiye", "GPE:iraq", "GPE:syria")


class TableEncoder:
    """Vectors looked up by text: the benchmark's stand-in for the encoder."""

    name = "table"
    floor = 0.0
    dim = DIM

    def __init__(self) -> None:
        self.table: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts]) if texts else np.zeros((0, DIM))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _synthetic(stored: int, stories: int, new: int, rng: random.Random) -> tuple[list, list]:
    """(prefilled: [(story index, article dict)], new: [article dict]) in publication order."""
    nprng = np.random.default_rng(SEED)
    directions = [_unit(nprng.normal(size=DIM)) for _ in range(stories + new)]
    plan: list[dict[str, Any]] = []
    for _ in range(stories + new):
        plan.append(
            {
                "place": f"GPE:place {rng.randrange(400)}",
                "actor": f"ORG:group {rng.randrange(150)}",
                "person": f"PERSON:person {rng.randrange(3000)}",
                "country": rng.choice(COUNTRIES),
                "start": T0 + timedelta(hours=rng.uniform(0, SPAN_H)),
            }
        )

    def article(n: int, s: int) -> dict[str, Any]:
        p = plan[s]
        noise = nprng.normal(size=DIM) * 0.04
        entities = {
            p["place"]: 0.8,
            p["actor"]: 0.7,
            p["country"]: 0.45,
            rng.choice(COUNTRIES): 0.3,
            f"PERSON:background {rng.randrange(5000)}": 0.2,
        }
        if rng.random() < 0.5:
            entities[p["person"]] = 0.6
        return {
            "n": n,
            "story": s,
            "url": f"https://bench{n % 97}.example/{n}",
            "title": f"Synthetic report {n} on incident {s}",
            "published_at": p["start"] + timedelta(hours=rng.uniform(0, 10)),
            "entities": entities,
            "vector": _unit(directions[s] + noise),
        }

    prefilled = [article(n, n % stories) for n in range(stored - new)]
    fresh = []
    for n in range(stored - new, stored):
        s = rng.randrange(stories) if rng.random() < 0.6 else stories + (n - (stored - new))
        fresh.append(article(n, s))
    prefilled.sort(key=lambda a: a["published_at"])
    fresh.sort(key=lambda a: a["published_at"])
    return prefilled, fresh


def _enriched(a: dict[str, Any]) -> Any:
    from shared.messages import Article, EnrichedArticle, Enrichment, EntityRef

    body = a["title"] + ". " + "Synthetic body text for the storyteller benchmark. " * 8
    return EnrichedArticle(
        article=Article(
            url=a["url"],
            final_url=a["url"],
            canonical_url=a["url"],
            host=a["url"].split("/")[2],
            title=a["title"],
            published_at=a["published_at"],
            language="en",
            body_text=body,
            content_hash=hashlib.sha256(a["url"].encode()).hexdigest(),
            word_count=len(body.split()),
            discovered_at=a["published_at"],
            fetched_at=a["published_at"],
            parsed_at=a["published_at"],
        ),
        entities=[
            EntityRef(key=k, kind=k.split(":")[0], name=k.split(":")[1], mentions=1, salience=s)
            for k, s in a["entities"].items()
        ],
        enrichment=Enrichment(model="bench", rules_version="bench", enriched_at=a["published_at"]),
    )


async def run(url: str, *, stored: int, stories: int, new: int, batch: int) -> dict[str, Any]:
    from sqlalchemy import text

    from services.storyteller.assign import Item, Story, Storyboard, assign_roles
    from services.storyteller.store import _write, assign_articles
    from services.storyteller.text import article_text
    from services.writer.articles import write_batch
    from shared.db.session import create_engine, session_factory

    rng = random.Random(SEED)
    prefilled, fresh = _synthetic(stored, stories, new, rng)
    encoder = TableEncoder()
    for a in prefilled + fresh:
        encoder.table[article_text(a["title"], None)] = a["vector"]
    engine = create_engine(url, pool_size=4)
    sessions = session_factory(engine)
    started = time.perf_counter()
    everything = prefilled + fresh
    for i in range(0, len(everything), 500):
        await write_batch(sessions, [_enriched(a) for a in everything[i : i + 500]])
    async with sessions() as session:
        ids = {
            r.canonical_url: r.id
            for r in await session.execute(text("SELECT id, canonical_url FROM articles"))
        }
    stored_s = time.perf_counter() - started
    # file the prefilled articles into their stories directly (their assignment is not timed)
    board = Storyboard(new_id=lambda: 0, text_floor=0.0)
    built: dict[int, Story] = {}
    for a in prefilled:
        story = built.setdefault(a["story"], Story(a["story"] + 1))
        item = Item(
            ids[a["url"]], a["url"], a["url"], a["url"].split("/")[2], "en", a["title"],
            a["published_at"], a["entities"], a["vector"],
        )  # fmt: skip
        story.absorb(item, copy_of=None)
    for story in built.values():
        assign_roles(story)
        board.stories[story.id] = story
    chunk = sorted(built)
    for i in range(0, len(chunk), 500):
        async with sessions() as session, session.begin():
            await _write(session, board, set(s + 1 for s in chunk[i : i + 500]))
    async with sessions() as session, session.begin():
        await session.execute(
            text("SELECT setval('stories_id_seq', (SELECT max(id) FROM stories))")
        )
        await session.execute(text("ANALYZE"))
    prefill_s = time.perf_counter() - started - stored_s
    # the timed part: the new articles, in publication order, in batches
    order = [ids[a["url"]] for a in fresh]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    opened = joined = 0
    for i in range(0, len(order), batch):
        result = await assign_articles(sessions, order[i : i + batch], encoder)
        opened += sum(d.action == "open" for d in result.decisions)
        joined += sum(d.action == "join" for d in result.decisions)
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    async with sessions() as session:
        live = await session.scalar(text("SELECT count(*) FROM stories WHERE merged_into IS NULL"))
        truth_right = 0
        rows = await session.execute(text("SELECT article_id, story_id FROM story_articles"))
        story_of = {r.article_id: r.story_id for r in rows}
    by_story: dict[int, set[int]] = {}
    for a in fresh:
        by_story.setdefault(a["story"], set()).add(story_of[ids[a["url"]]])
    truth_right = sum(len(v) == 1 for v in by_story.values())
    await engine.dispose()
    return {
        "stored_articles": stored,
        "active_stories_before": stories,
        "new_articles": new,
        "batch": batch,
        "store_seconds": round(stored_s, 1),
        "prefill_seconds": round(prefill_s, 1),
        "assign_articles_per_s_wall": round(new / wall, 1),
        "storyteller_cpu_ms_per_article": round(1000 * cpu / new, 3),
        "opened": opened,
        "joined": joined,
        "live_stories_after": live,
        "incidents_in_one_story": f"{truth_right}/{len(by_story)}",
    }


def e5_cost(samples: int = 120) -> float:
    """CPU ms per article to encode title + lead with the E5 encoder (evaluation set texts)."""
    from services.storyteller.evaluate import load_set
    from services.storyteller.text import E5Encoder, article_text

    data = load_set()
    texts = [article_text(a["title"], a["lead"]) for a in data["articles"]][:samples]
    encoder = E5Encoder()
    encoder.encode(texts[:4])  # warm
    t0 = time.process_time()
    encoder.encode(texts)
    return 1000 * (time.process_time() - t0) / len(texts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=50_000)
    parser.add_argument("--stories", type=int, default=5_000)
    parser.add_argument("--new", type=int, default=3_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-e5", action="store_true", help="skip measuring the encoder")
    args = parser.parse_args(argv)

    from shared import stack
    from shared.db.migrate import upgrade

    external = os.environ.get("NEWSFLOW_DATABASE_URL")
    home = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
    os.chmod(home, 0o755)  # the postgres user must read the data dir
    state = stack.up(home, want_kafka=False, want_postgres=not external).state
    url = external or (state.postgres.endpoint if state.postgres else None)
    assert url, "no PostgreSQL"
    try:
        upgrade(url)
        result = asyncio.run(
            run(url, stored=args.stored, stories=args.stories, new=args.new, batch=args.batch)
        )
    finally:
        stack.down(home)
        shutil.rmtree(home, ignore_errors=True)
    if not args.no_e5:
        e5 = e5_cost()
        stage = result["storyteller_cpu_ms_per_article"]
        result["e5_cpu_ms_per_article"] = round(e5, 2)
        result["with_e5_articles_per_s_one_core"] = round(1000 / (stage + e5), 1)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
