"""Writer throughput: articles/s and entity links/s through :func:`store.write_parallel`.

Run ``.venv/bin/python -m tests.bench.writer`` (``--help`` for options). It starts its own
throwaway PostgreSQL with the same code as ``newsflow stack up`` (no broker), migrates it,
and writes synthetic articles shaped like real ones (~2 KB body, ~30 entity links, mention
spans, aliases) in writer-sized batches. Three passes:

* ``insert``: new articles, new and shared entities;
* ``reenrich``: the same articles with a newer ``enriched_at`` (full update + link replace);
* ``redeliver``: the same records again (the stale guard skips them).

``--parallel 2`` splits each batch into two concurrent transactions like the writer does by
default (``NEWSFLOW_WRITER_PARALLEL_TRANSACTIONS``); ``--workers 2`` adds a second writer.

``--service`` measures the writer service itself instead: the records are produced to
``news.enriched.v1`` on the embedded broker first, then ``newsflow worker writer`` drains the
backlog (decoding, batching, faust and offset commits included). The rate is taken from the
first stored row to the last, so the consumer-group join is not counted.

The machine is shared: note the load average next to any number you quote.

Set ``NEWSFLOW_DATABASE_URL`` to measure an existing, migrated database instead (its tables
get the synthetic rows; use a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.writer.articles import AliasMemory, write_parallel
from shared.messages import Article, EnrichedArticle, Enrichment, EntityRef, Mention

DEFAULT_ARTICLES = 20_000
DEFAULT_BATCH = 200
DEFAULT_LINKS = 30
#: Entity vocabulary size: a few thousand distinct entities, popular ones shared by many.
ENTITY_POOL = 5_000
BODY_WORDS = 350  # ~2 KB of English text
KINDS = ("GPE", "ORG", "PERSON", "LOC", "NORP", "FAC", "EVENT")
NAME_WORDS = [
    "security",
    "forces",
    "border",
    "operation",
    "militants",
    "province",
    "officials",
    "ministry",
    "defence",
    "village",
    "region",
    "northern",
    "southern",
    "police",
    "cell",
    "checkpoint",
    "convoy",
    "patrol",
    "council",
    "front",
    "brigade",
]
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _english_words() -> list[str]:
    # Real English prose (the stdlib's own help texts): full-text indexing cost depends on
    # the vocabulary, and a made-up word list under-states the tsvector and GIN work.
    from pydoc_data.topics import topics

    return re.findall(r"[A-Za-z][a-z]+", " ".join(topics.values()))


def _entity_pool(rng: random.Random) -> list[tuple[str, str, str]]:
    pool = []
    for i in range(ENTITY_POOL):
        kind = KINDS[i % len(KINDS)]
        name = f"{rng.choice(NAME_WORDS).title()} {rng.choice(NAME_WORDS).title()} {i}"
        pool.append((f"{kind}:{name.lower()}", kind, name))
    return pool


def synthetic(count: int, *, links: int, seed: int = 7) -> list[EnrichedArticle]:
    """*count* enriched articles with *links* distinct entities each (Zipf-like popularity)."""
    rng = random.Random(seed)
    pool = _entity_pool(rng)
    words = _english_words()
    weights = [1.0 / (rank + 1) for rank in range(len(pool))]
    items = []
    for n in range(count):
        start = rng.randrange(0, len(words) - BODY_WORDS)
        body = " ".join(words[start : start + BODY_WORDS])
        url = f"https://bench{n % 50}.example.com/2026/11/{n}"
        chosen: dict[str, tuple[str, str, str]] = {}
        while len(chosen) < links:
            key, kind, name = rng.choices(pool, weights)[0]
            chosen[key] = (key, kind, name)
        refs = []
        mentions = []
        for key, kind, name in chosen.values():
            count_m = rng.randint(1, 3)
            refs.append(
                EntityRef.model_validate(
                    {
                        "key": key,
                        "kind": kind,
                        "name": name,
                        "aliases": [name, name.split()[0]],
                        "mentions": count_m,
                        "salience": round(rng.random(), 3),
                    }
                )
            )
            for _ in range(count_m):
                start = rng.randrange(0, len(body) - 20)
                mentions.append(
                    Mention.model_validate(
                        {
                            "text": name,
                            "start": start,
                            "end": start + len(name),
                            "kind": kind,
                            "entity_key": key,
                        }
                    )
                )
        article = Article(
            url=url,
            final_url=url,
            canonical_url=url,
            host=f"bench{n % 50}.example.com",
            title=f"Bench article {n}",
            authors=["Bench Writer"],
            published_at=T0,
            published_source="jsonld",
            language="en",
            body_text=body,
            content_hash=hashlib.sha256(body.encode()).hexdigest(),
            word_count=BODY_WORDS,
            discovered_at=T0,
            fetched_at=T0,
            parsed_at=T0,
        )
        items.append(
            EnrichedArticle(
                article=article,
                entities=refs,
                mentions=mentions,
                enrichment=Enrichment(model="bench", rules_version="1", enriched_at=T0),
            )
        )
    return items


def _reenriched(items: list[EnrichedArticle]) -> list[EnrichedArticle]:
    later = T0 + timedelta(hours=1)
    return [
        item.model_copy(
            update={"enrichment": item.enrichment.model_copy(update={"enriched_at": later})}
        )
        for item in items
    ]


async def _pass(
    url: str, items: list[EnrichedArticle], batch: int, workers: int, parts: int
) -> dict[str, Any]:
    """Write *items* in batches; *workers* share the batches like writer workers, each batch
    split into *parts* concurrent transactions (NEWSFLOW_WRITER_PARALLEL_TRANSACTIONS)."""
    from shared.db.session import create_engine, session_factory

    batches = [items[i : i + batch] for i in range(0, len(items), batch)]
    totals = {"articles": 0, "links": 0, "stale": 0}

    async def worker(index: int) -> None:
        engine = create_engine(url, pool_size=parts)
        sessions = session_factory(engine)
        known_aliases = AliasMemory()  # one per writer process, as in the service
        try:
            for chunk in batches[index::workers]:
                report = await write_parallel(
                    sessions, chunk, parts=parts, known_aliases=known_aliases
                )
                totals["articles"] += report.articles
                totals["links"] += report.links
                totals["stale"] += report.skipped_stale
        finally:
            await engine.dispose()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    seconds = time.perf_counter() - started
    return {
        "records": len(items),
        "articles_written": totals["articles"],
        "links_written": totals["links"],
        "skipped_stale": totals["stale"],
        "seconds": round(seconds, 3),
        "records_per_s": round(len(items) / seconds, 1),
        "articles_per_s": round(totals["articles"] / seconds, 1),
        "links_per_s": round(totals["links"] / seconds, 1),
    }


def _decode_rate(items: list[EnrichedArticle]) -> float:
    """Records/s decoded from JSON into the contract (the writer's own CPU cost per record)."""
    raw = [item.to_bytes() for item in items]
    started = time.perf_counter()
    for data in raw:
        EnrichedArticle.from_bytes(data)
    return round(len(raw) / (time.perf_counter() - started), 1)


async def run(
    url: str, *, articles: int, batch: int, links: int, workers: int = 1, parts: int = 1
) -> dict[str, Any]:
    items = synthetic(articles, links=links)
    return {
        "articles": articles,
        "batch": batch,
        "links_per_article": links,
        "workers": workers,
        "parallel_transactions": parts,
        "decode_records_per_s": _decode_rate(items[:2000]),
        "insert": await _pass(url, items, batch, workers, parts),
        "reenrich": await _pass(url, _reenriched(items), batch, workers, parts),
        "redeliver": await _pass(url, _reenriched(items), batch, workers, parts),
    }


async def _produce(bootstrap: str, topic: str, items: list[EnrichedArticle]) -> None:
    from shared.kafka import make_producer

    producer = make_producer(bootstrap)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, item.to_bytes(), key=item.article.canonical_url.encode())
            for item in items
        ]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _wait_stored(
    url: str, procs: list[Any], *, articles: int, log_path: Path
) -> tuple[int, float, int]:
    """Poll (one connection) until *articles* rows are stored; returns the count at the first
    stored row, the seconds from then to the last, and the links stored."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        first: tuple[int, float] | None = None
        stored = 0
        deadline = time.monotonic() + 120 + articles / 100
        while stored < articles:
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError(
                    f"writer stopped or stalled at {stored}/{articles}; see {log_path}"
                )
            await asyncio.sleep(0.1)
            stored = int(await conn.fetchval("SELECT count(*) FROM articles"))
            if stored and first is None:
                first = (stored, time.perf_counter())
        assert first is not None
        seconds = time.perf_counter() - first[1]
        links = int(await conn.fetchval("SELECT count(*) FROM article_entities"))
        return first[0], seconds, links
    finally:
        await conn.close()


def run_service(
    url: str,
    bootstrap: str,
    *,
    home: Path,
    articles: int,
    links: int,
    parts: int,
    batch: int = DEFAULT_BATCH,
    workers: int = 1,
) -> dict[str, Any]:
    """Produce *articles* records, then time *workers* writer workers (one consumer group)
    draining them."""
    import subprocess
    import uuid

    from shared.kafka import create_topics
    from shared.topology import ENRICHED

    prefix = f"bench{uuid.uuid4().hex[:6]}."
    asyncio.run(create_topics(bootstrap, partitions=8, prefix=prefix))
    items = synthetic(articles, links=links)
    asyncio.run(_produce(bootstrap, prefix + ENRICHED.name, items))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(
        {
            "NEWSFLOW_KAFKA_BOOTSTRAP": bootstrap,
            "NEWSFLOW_DATABASE_URL": url,
            "NEWSFLOW_TOPIC_PREFIX": prefix,
            "NEWSFLOW_HOME": str(home),
            "NEWSFLOW_METRICS_PORT_BASE": "0",
            "NEWSFLOW_LOG_FORMAT": "text",
            "NEWSFLOW_WRITER_PARALLEL_TRANSACTIONS": str(parts),
            "NEWSFLOW_WRITER_BATCH_SIZE": str(batch),
            "NEWSFLOW_WRITER_ARCHIVE_PAGES": "false",
        }
    )
    log_path = home / "writer-bench.log"
    with open(log_path, "wb") as log:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "services.cli", "worker", "writer"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            first_count, seconds, links_stored = asyncio.run(
                _wait_stored(url, procs, articles=articles, log_path=log_path)
            )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
    measured = articles - first_count
    return {
        "mode": "service",
        "workers": workers,
        "articles": articles,
        "links_per_article": links,
        "parallel_transactions": parts,
        "batch": batch,
        "links_stored": links_stored,
        "seconds": round(seconds, 3),
        "articles_per_s": round(measured / seconds, 1),
        "links_per_s": round(measured * links_stored / articles / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--articles", type=int, default=DEFAULT_ARTICLES)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--links", type=int, default=DEFAULT_LINKS, help="entity links per article")
    parser.add_argument("--workers", type=int, default=1, help="concurrent writers (like workers)")
    parser.add_argument(
        "--parallel", type=int, default=1, help="concurrent transactions per batch (per writer)"
    )
    parser.add_argument(
        "--service",
        action="store_true",
        help="time the writer service draining a backlog on the embedded broker",
    )
    args = parser.parse_args(argv)

    from shared import stack
    from shared.db.migrate import upgrade

    external = os.environ.get("NEWSFLOW_DATABASE_URL")
    # mode 0755: the postgres user must be able to read the data dir (see the test fixtures)
    home = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
    os.chmod(home, 0o755)
    state = stack.up(home, want_kafka=args.service, want_postgres=not external).state
    if external:
        url = external
    else:
        assert state.postgres is not None and state.postgres.endpoint, "no PostgreSQL started"
        url = state.postgres.endpoint
    try:
        upgrade(url)
        if args.service:
            assert state.kafka is not None and state.kafka.endpoint, "no broker started"
            result = run_service(
                url,
                state.kafka.endpoint,
                home=home,
                articles=args.articles,
                links=args.links,
                parts=max(1, args.parallel),
                batch=args.batch,
                workers=args.workers,
            )
        else:
            result = asyncio.run(
                run(
                    url,
                    articles=args.articles,
                    batch=args.batch,
                    links=args.links,
                    workers=args.workers,
                    parts=args.parallel,
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
