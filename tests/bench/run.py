"""``make bench``: ``make run`` on a synthetic loopback news network, against its bounds.

Steps (one process orchestrates; the pipeline is the real ``newsflow run``):

1. serve the corpus (``tests.bench.server`` in its own process, pages pre-rendered);
2. ``newsflow run`` (continuous) in a temporary home: its embedded stack (Tansu +
   PostgreSQL), migrations, topics (8 partitions) and every service of the topology, as many
   enricher workers as ``make run`` starts (``NEWSFLOW_ENRICHER_WORKERS``, default one per
   core), with politeness relaxed (``RELAXED_POLITENESS``: loopback allowed, no per-host gap,
   4 requests in flight per host);
3. warm-up (a 4-article corpus) so model loading and group joins are not measured;
4. **full load**: all feeds due at once; articles/s from the moment the feeds became due
   until the last article is stored, in its story and matched by the alerter; the **CPU
   budget** (CPU seconds of every process of the run per article: the most articles/s the
   cores could give) and the **ratio** to it (= the share of the cores' time the run used);
   the CPU utilisation profile (psutil, every 0.5 s: ramp-up, steady state, tail);
   discovery->stored latency; per-stage throughput (Prometheus counters); CPU seconds and
   peak RSS per process;
5. **half load**: one new single-article feed every ``1 / (rate / 2)`` seconds; latency;
6. **bounds** on the same pages, one process each: extraction alone (``parse_page``), NER
   alone (``Enricher.enrich``); and the **peer**, newspaper4k's extraction;
7. ``bench-results/<UTC timestamp>.json`` and ``.png``, a terminal table, and a copy to
   ``docs/bench/latest.*``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from services.cli.supervisor import worker_plan
from shared.settings import Settings
from shared.topology import STAGES
from tests.bench import harness
from tests.bench.corpus import DEFAULT_ARTICLES, DEFAULT_HOSTS, DEFAULT_SEED, Corpus
from tests.bench.server import serving

logger = logging.getLogger(__name__)

RESULTS_DIR = harness.ROOT / "bench-results"
DOCS_DIR = harness.ROOT / "docs" / "bench"
QUICK_ARTICLES, QUICK_HOSTS = 200, 20
#: pages timed for the standalone bounds and the peer (the same pages for all three)
BOUND_SAMPLE = 300
HALF_LOAD_SECONDS = 60.0
QUICK_HALF_LOAD_SECONDS = 25.0
TARGET_RATE = 12.0
TARGET_P95_HALF_S = 5.0
#: the share of the CPU budget end to end should reach (issue 13)
TARGET_CPU_RATIO = 0.9
PROGRESS_EVERY_S = 10.0
#: the CPU/RSS sampler's interval (each tick costs the bench process a few ms)
SAMPLE_S = 1.0
#: seconds per bucket of the printed CPU utilisation profile
PROFILE_BUCKET_S = 5.0
WARMUP_ARTICLES = 4
RUN_TIMEOUT_S = 1800.0
#: where the supervisor starts looking for free metrics ports (one per worker)
METRICS_PORT_BASE = 9400


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class MetricsRecorder:
    """Scrape each worker's counters every second: per-stage throughput over its active span,
    and each worker's own count (when each enricher ran dry)."""

    def __init__(self, workers: list[harness.RunWorker]) -> None:
        self.workers = workers
        self.series: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _snapshot(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for spec in STAGES:
            out[spec.stage] = out[f"{spec.stage}_dlq"] = 0.0
        for w in self.workers:
            counts = harness.scrape_counts(w.metrics_port)
            ok = counts.get((w.stage, "ok"), 0.0)
            out[w.stage] += ok
            out[f"{w.stage}_dlq"] += counts.get((w.stage, "dlq"), 0.0)
            out[f"worker:{w.label}"] = ok
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.series.append((time.time(), self._snapshot()))
            self._stop.wait(1.0)

    def __enter__(self) -> MetricsRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.series.append((time.time(), self._snapshot()))

    def span(self, key: str) -> tuple[float, float, float] | None:
        """(first time *key*'s count had moved, time it reached its final count, messages)."""
        if len(self.series) < 2:
            return None
        base = self.series[0][1].get(key, 0.0)
        total = self.series[-1][1].get(key, 0.0) - base
        if total <= 0:
            return None
        start = max(t for t, s in self.series if s.get(key, 0.0) <= base)
        end = min(t for t, s in self.series if s.get(key, 0.0) >= base + total)
        return start, end, total

    def stage_rates(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        if len(self.series) < 2:
            return out
        for spec in STAGES:
            span = self.span(spec.stage)
            if span is None:
                total = self.series[-1][1].get(spec.stage, 0.0) - self.series[0][1].get(
                    spec.stage, 0.0
                )
                out[spec.stage] = {"messages": total, "active_s": 0.0, "per_s": 0.0}
                continue
            start, end, total = span
            out[spec.stage] = {
                "messages": total,
                "active_s": round(end - start, 1),
                "per_s": round(total / max(end - start, 1e-6), 2),
            }
        return out

    def worker_spans(self, t0: float) -> dict[str, dict[str, float]]:
        """Per worker: records it produced, and when (seconds after *t0*) it first and last
        produced: two enrichers ending far apart leave a core idle at the end."""
        out = {}
        for w in self.workers:
            span = self.span(f"worker:{w.label}")
            if span is not None:
                out[w.label] = {
                    "messages": span[2],
                    "first_s": round(span[0] - t0, 1),
                    "last_s": round(span[1] - t0, 1),
                }
        return out


def _start_server(
    args: argparse.Namespace, log_dir: Path
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.bench.server",
            "--articles",
            str(args.articles),
            "--hosts",
            str(args.hosts),
            "--seed",
            str(args.seed),
        ],
        cwd=harness.ROOT,
        env=dict(os.environ, PYTHONPATH=str(harness.ROOT)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=open(log_dir / "server.log", "w"),  # noqa: SIM115 - lives as long as the server
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"corpus server failed; see {log_dir / 'server.log'}")
    return proc, json.loads(line)


def _latencies(database_url: str, since: float, until: float | None = None) -> list[float]:
    rows = asyncio.run(
        harness.fetch(
            database_url,
            "SELECT extract(epoch FROM stored_at - discovered_at) AS s FROM articles "
            "WHERE discovered_at >= to_timestamp($1) AND discovered_at < to_timestamp($2)",
            since,
            until or 4e9,
        )
    )
    return [float(r["s"]) for r in rows]


HOPS = (
    ("discovered->fetched", "fetched_at - discovered_at"),
    ("fetched->parsed", "parsed_at - fetched_at"),
    ("parsed->enriched", "enriched_at - parsed_at"),
    ("enriched->stored", "stored_at - enriched_at"),
)


def _hops(database_url: str, since: float) -> dict[str, dict[str, float]]:
    """p50/p95 of each hop from the per-stage timestamps every article row carries."""
    cols = ", ".join(
        f"percentile_cont({q}) WITHIN GROUP (ORDER BY extract(epoch FROM {expr})) AS h{i}_{int(q * 100)}"
        for i, (_name, expr) in enumerate(HOPS)
        for q in (0.5, 0.95)
    )
    row = asyncio.run(
        harness.fetch(
            database_url,
            f"SELECT {cols} FROM articles WHERE discovered_at >= to_timestamp($1)",
            since,
        )
    )[0]
    return {
        name: {
            "p50": round(float(row[f"h{i}_50"] or 0), 3),
            "p95": round(float(row[f"h{i}_95"] or 0), 3),
        }
        for i, (name, _expr) in enumerate(HOPS)
    }


#: the supervisor's own process (its children are measured under their own names)
SUPERVISOR = "newsflow run"
#: the bench's own processes (not part of make run)
CORPUS_SERVER, BENCH = "corpus server", "bench"
HARNESS = (CORPUS_SERVER, BENCH)


def _stack_pids(ep: harness.Endpoints) -> dict[str, int]:
    from shared import stack

    state = stack.read_state(ep.home)
    pids = {}
    if state.kafka and state.kafka.pid:
        pids["tansu"] = state.kafka.pid
    if state.postgres and state.postgres.pid:
        pids["postgres"] = state.postgres.pid
    return pids


def cpu_profile(
    sampler: harness.Sampler,
    t0: float,
    t_end: float,
    cores: int,
    events: dict[str, float],
    harness_names: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Where the cores' time went between *t0* and *t_end* (wall clock).

    ``ours``: CPU of the run's processes / (cores x seconds); ``machine``: every process's
    (other users of a shared machine included). ``demand``: the run's runnable threads
    (on a CPU or queued for one, from schedstat), capped at the cores, / cores: what the run
    could have used had it had the machine to itself; below 1 the run itself left cores idle
    (nothing to do, or waiting on the broker or the database), whatever else ran.
    ``idle_core_s``: core-seconds the run did not use; ``unoffered_core_s``: those it did
    not even ask for. Buckets of ``PROFILE_BUCKET_S``; phases cut at *events* (seconds after
    t0, in order): ramp-up until the first article is enriched, steady state until the first
    enricher runs dry, tail until every stage is done. ``harness``: what the bench itself
    (corpus server, this process) took of the cores; ``ours_of_left``: the run's share of
    the core time the harness left it."""
    names = [n for n in sampler.stats if n not in harness_names]
    # per sampling interval: (start, end, cores the run's threads were runnable on, capped)
    ticks = [
        # a PostgreSQL backend that exits takes its runnable time with it: never below 0
        (
            ta,
            tb,
            min(cores, sum(max(0.0, rb.get(n, 0.0) - ra.get(n, 0.0)) for n in names) / (tb - ta)),
        )
        for (ta, ra), (tb, rb) in itertools.pairwise(sampler.runnable_series)
        if tb > ta
    ]

    def unoffered(a: float, b: float) -> float:
        return sum((cores - d) * max(0.0, min(b, tb) - max(a, ta)) for ta, tb, d in ticks)

    def window(a: float, b: float) -> dict[str, float]:
        pa, ma = sampler.cpu_at(a)
        pb, mb = sampler.cpu_at(b)
        used = sum(pb.get(n, 0.0) - pa.get(n, 0.0) for n in names)
        bench = sum(pb.get(n, 0.0) - pa.get(n, 0.0) for n in harness_names)
        seconds = max(b - a, 1e-9)
        gap = unoffered(a, b)
        return {
            "seconds": round(b - a, 1),
            "ours": round(used / (cores * seconds), 3),
            "harness": round(bench / (cores * seconds), 3),
            "ours_of_left": round(used / max(cores * seconds - bench, 1e-9), 3),
            "machine": round((mb - ma) / (cores * seconds), 3),
            "demand": round(1 - gap / (cores * seconds), 3),
            "idle_core_s": round(cores * (b - a) - used, 1),
            "unoffered_core_s": round(gap, 1),
        }

    buckets = []
    t = t0
    while t < t_end - 1e-6:
        b = min(t + PROFILE_BUCKET_S, t_end)
        pa, _ = sampler.cpu_at(t)
        pb, _ = sampler.cpu_at(b)
        ra, rb = sampler.runnable_at(t), sampler.runnable_at(b)
        row: dict[str, Any] = window(t, b)
        row["t_s"] = round(t - t0, 1)
        # cores each process used, and was runnable on, in the bucket
        row["cpu_by_process"] = {
            n: round((pb.get(n, 0.0) - pa.get(n, 0.0)) / max(b - t, 1e-9), 2) for n in sampler.stats
        }
        row["runnable_by_process"] = {
            n: round(max(0.0, rb.get(n, 0.0) - ra.get(n, 0.0)) / max(b - t, 1e-9), 2) for n in names
        }
        buckets.append(row)
        t = b
    cuts = [0.0, *[min(v, t_end - t0) for v in events.values()], t_end - t0]
    phases = {}
    for name, a, b in zip(["ramp-up", "steady", "tail"], cuts, cuts[1:], strict=False):
        if b > a:
            phases[name] = window(t0 + a, t0 + b)
    return {
        "bucket_s": PROFILE_BUCKET_S,
        "events_s": {k: round(v, 1) for k, v in events.items()},
        "total": window(t0, t_end),
        "phases": phases,
        "buckets": buckets,
    }


def run_full(
    ep: harness.Endpoints, run: harness.Run, feeds: list[str], expect: int, server_pid: int
) -> dict[str, Any]:
    workers = run.workers()
    pids = {SUPERVISOR: run.pid} | {w.label: w.pid for w in workers} | _stack_pids(ep)
    # the bench's own processes share the cores too: measured, not counted as the run's
    pids |= {CORPUS_SERVER: server_pid, BENCH: os.getpid()}
    with (
        # only PostgreSQL has child processes (its backends); listing every process's
        # children scans /proc, which is the sampler's main cost
        harness.Sampler(
            pids, interval=SAMPLE_S, flat=[n for n in pids if n not in ("postgres", CORPUS_SERVER)]
        ) as sampler,
        MetricsRecorder(workers) as metrics,
    ):
        t0 = time.time()
        asyncio.run(harness.add_feeds(ep.database_url, feeds))

        printed = [t0]

        def tick(p: harness.Progress | None) -> None:
            # every 10 s (the progress is polled twice a second: print each step once)
            if p is not None and time.time() - printed[0] >= PROGRESS_EVERY_S:
                printed[0] += PROGRESS_EVERY_S
                print(
                    f"  full load +{printed[0] - t0:.0f}s: links {p.links} done {p.done} "
                    f"stored {p.stored}",
                    flush=True,
                )

        # count_records: a link that fails fast can miss its seen_links done mark (a fetcher/
        # writer race, reported); the measured run must not hang on it
        harness.wait_done(
            ep.database_url,
            run,
            expect_links=expect,
            timeout=RUN_TIMEOUT_S,
            on_tick=tick,
            count_records=True,
            settle_s=0.0,
        )
        harness.wait_downstream(ep.database_url, t0, run)
        time.sleep(1.0)  # a last sample after the end
    row = asyncio.run(
        harness.fetch(
            ep.database_url,
            "SELECT count(*) AS n, extract(epoch FROM min(discovered_at)) AS first_discovered,"
            " extract(epoch FROM min(enriched_at)) AS first_enriched,"
            " extract(epoch FROM max(stored_at)) AS last_stored,"
            " extract(epoch FROM (SELECT max(assigned_at) FROM story_articles"
            "   WHERE assigned_at >= to_timestamp($1))) AS last_story,"
            " extract(epoch FROM (SELECT max(scanned_at) FROM alert_scans"
            "   WHERE scanned_at >= to_timestamp($1))) AS last_scan,"
            " count(*) FILTER (WHERE status <> 'ok') AS flagged,"
            " (SELECT count(*) FROM article_entities) AS entity_links,"
            " (SELECT count(*) FROM feeds WHERE last_polled_at IS NOT NULL"
            "   AND consecutive_failures = 0) AS feeds_ok"
            " FROM articles WHERE discovered_at >= to_timestamp($1)",
            t0,
        )
    )[0]
    dlq = asyncio.run(
        harness.fetch(
            ep.database_url,
            "SELECT stage, error_kind, count(*) AS n FROM dead_letters"
            " WHERE failed_at >= to_timestamp($1) GROUP BY 1, 2",
            t0,
        )
    )
    stored = int(row["n"])
    last_stored = float(row["last_stored"] or t0)
    # the end: every stage of make run done (stored, in its story, matched by the alerter)
    t_end = max(last_stored, float(row["last_story"] or t0), float(row["last_scan"] or t0))
    wall = max(t_end - t0, 1e-6)
    cores = psutil.cpu_count() or 1
    # CPU over exactly [t0, t_end], so that rate / CPU bound = the share of the cores used
    start_cpu, _ = sampler.cpu_at(t0)
    end_cpu, _ = sampler.cpu_at(t_end)
    processes = sampler.report()
    for name, p in processes.items():
        p["cpu_s"] = round(end_cpu.get(name, 0.0) - start_cpu.get(name, 0.0), 2)
        p["cpu_ms_per_article"] = round(1000 * p["cpu_s"] / max(stored, 1), 1)
    bench_processes = {n: processes.pop(n) for n in HARNESS if n in processes}
    cpu_total = sum(p["cpu_s"] for p in processes.values())
    bench_cpu = sum(p["cpu_s"] for p in bench_processes.values())
    spans = metrics.worker_spans(t0)
    for label, span in spans.items():
        # the share of its active span the worker was runnable: below 1 it waited
        a, b = t0 + span["first_s"], t0 + span["last_s"]
        ra, rb = sampler.runnable_at(a), sampler.runnable_at(b)
        span["runnable"] = round((rb.get(label, 0.0) - ra.get(label, 0.0)) / max(b - a, 1e-6), 3)
        main = f"{label}:main"
        span["main_runnable"] = round((rb.get(main, 0.0) - ra.get(main, 0.0)) / max(b - a, 1e-6), 3)
    enricher_ends = sorted(v["last_s"] for k, v in spans.items() if k.startswith("enricher"))
    events = {"first_enriched": float(row["first_enriched"] or t0) - t0}
    if enricher_ends:
        events["first_enricher_dry"] = enricher_ends[0]
    lat = _latencies(ep.database_url, t0)
    rate = stored / wall
    bound = cores * stored / max(cpu_total, 1e-6)
    return {
        "articles_expected": expect,
        "articles_stored": stored,
        "flagged_not_ok": int(row["flagged"]),
        "entity_links": int(row["entity_links"]),
        "dead_letters": {f"{r['stage']}:{r['error_kind']}": int(r["n"]) for r in dlq},
        "wall_s": round(wall, 2),
        "stored_wall_s": round(last_stored - t0, 2),
        "first_poll_to_first_discovery_s": round(float(row["first_discovered"] or t0) - t0, 2),
        "articles_per_s": round(rate, 2),
        "articles_per_s_to_last_stored": round(stored / max(last_stored - t0, 1e-6), 2),
        "latency_s": {
            "p50": round(_percentile(lat, 0.5), 2),
            "p95": round(_percentile(lat, 0.95), 2),
            "max": round(max(lat, default=float("nan")), 2),
        },
        "latencies": [round(x, 3) for x in sorted(lat)],
        "stages": metrics.stage_rates(),
        "workers": spans,
        "processes": processes,
        # the machine's CPU budget: if every core were busy, this many articles/s would fit
        "cpu_ms_per_article": round(1000 * cpu_total / max(stored, 1), 1),
        "cpu_bound_per_s": round(bound, 2),
        "ratio_to_cpu_budget": round(rate / bound, 3),
        "harness_processes": bench_processes,
        # the same ratio against the core time the bench's own processes left the run
        "ratio_to_cpu_left_by_harness": round(cpu_total / max(cores * wall - bench_cpu, 1e-6), 3),
        "cpu_profile": cpu_profile(sampler, t0, t_end, cores, events, frozenset(HARNESS)),
    }


def run_half(
    ep: harness.Endpoints,
    run: harness.Run,
    *,
    rate: float,
    seconds: float,
    seed: int,
    first_ip: int,
) -> dict[str, Any]:
    n = max(10, int(rate * seconds))
    corpus = Corpus(articles=n, hosts=n, seed=seed + 7, first_ip=first_ip)
    with serving(corpus) as network:
        t0 = time.time()
        interval = 1.0 / rate
        for i, url in enumerate(network.feed_urls):
            # one single-article feed at a time, on a fixed schedule (no drift)
            delay = t0 + i * interval - time.time()
            if delay > 0:
                time.sleep(delay)
            asyncio.run(harness.add_feeds(ep.database_url, [url]))
            run.check_alive()
        harness.wait_done(
            ep.database_url, run, expect_links=n, timeout=RUN_TIMEOUT_S, count_records=True
        )
    lat = _latencies(ep.database_url, t0)
    return {
        "offered_per_s": round(rate, 2),
        "articles": n,
        "articles_stored": len(lat),
        "latency_s": {
            "p50": round(_percentile(lat, 0.5), 2),
            "p95": round(_percentile(lat, 0.95), 2),
            "max": round(max(lat, default=float("nan")), 2),
        },
        "latencies": [round(x, 3) for x in sorted(lat)],
        "hops_s": _hops(ep.database_url, t0),
    }


def bounds(corpus: Corpus, network_port: int, sample: int) -> dict[str, Any]:
    """Extraction alone, NER alone and newspaper4k on the same pages, one process each."""
    from services.enricher.app import BATCH_SIZE as ENRICH_BATCH
    from services.enricher.pipeline import Enricher
    from services.parser.pipeline import parse_page
    from shared.messages import Page
    from shared.settings import Settings
    from tests.bench.corpus import render_article

    settings = Settings()
    step = max(1, len(corpus.articles) // sample)
    picked = corpus.articles[::step][:sample]
    now = datetime.now(UTC)
    pages = []
    for a in picked:
        base = f"http://{a.host.ip}:{network_port}"
        url = base + a.path
        pages.append(
            Page(
                url=url,
                final_url=url,
                host=f"{a.host.ip}:{network_port}",
                status_code=200,
                charset="utf-8",
                html=render_article(corpus, a, base),
                discovered_at=now,
                fetched_at=now,
            )
        )
    words = 0
    t = time.perf_counter()
    articles = [parse_page(p, settings=settings) for p in pages]
    extract_s = time.perf_counter() - t
    words = sum(a.word_count for a in articles)

    enricher = Enricher(model=settings.spacy_model, max_chars=settings.max_enrich_chars)
    enricher.load()
    enricher.enrich(articles[0])  # first call warms caches
    t = time.perf_counter()
    for i in range(0, len(articles), ENRICH_BATCH):  # batches as the service takes them
        enricher.enrich_many(articles[i : i + ENRICH_BATCH])
    ner_s = time.perf_counter() - t

    out: dict[str, Any] = {
        "pages": len(pages),
        "mean_page_kb": round(sum(len(p.html) for p in pages) / len(pages) / 1024, 1),
        "mean_words": round(words / len(articles)),
        "extract_per_s": round(len(pages) / extract_s, 2),
        "ner_per_s": round(len(articles) / ner_s, 2),
    }
    try:
        with warnings.catch_warnings():
            # newspaper4k warns that its optional NLP extra (nltk) is missing; we use no NLP
            warnings.simplefilter("ignore", UserWarning)
            import newspaper

        t = time.perf_counter()
        peer_words = 0
        for p in pages:
            art = newspaper.Article(p.url, language="en", fetch_images=False)
            art.download(input_html=p.html)
            art.parse()
            peer_words += len(art.text.split())
        peer_s = time.perf_counter() - t
        out["peer"] = {
            "name": "newspaper4k " + getattr(newspaper, "__version__", "?"),
            "extract_per_s": round(len(pages) / peer_s, 2),
            "mean_words": round(peer_words / len(pages)),
        }
    except ImportError:
        out["peer"] = {"name": "newspaper4k", "error": "not installed: pip install -e '.[bench]'"}
    return out


def chart(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    full = result["full_load"]
    b = result["bounds"]
    labels = [f"{s}\n(stage)" for s in full["stages"]] + [
        "pipeline\nend to end",
        "extract\nalone",
        "NER\nalone",
    ]
    values = [full["stages"][s]["per_s"] for s in full["stages"]] + [
        full["articles_per_s"],
        b["extract_per_s"],
        b["ner_per_s"],
    ]
    colors = ["#6c8ebf"] * len(full["stages"]) + ["#d6b656", "#82b366", "#82b366"]
    if "extract_per_s" in b.get("peer", {}):
        labels.append("newspaper4k\nextract")
        values.append(b["peer"]["extract_per_s"])
        colors.append("#b85450")
    left.bar(labels, values, color=colors)
    left.axhline(TARGET_RATE, color="grey", linestyle="--", linewidth=1)
    left.text(len(values) - 0.5, TARGET_RATE, f"target {TARGET_RATE:g}/s", va="bottom", ha="right")
    left.set_ylabel("articles / s")
    left.set_title("Throughput (full load)")
    left.tick_params(axis="x", labelsize=8)
    for name, run in (("full load", full), ("half load", result.get("half_load") or {})):
        lat = run.get("latencies") or []
        if lat:
            ys = [(i + 1) / len(lat) for i in range(len(lat))]
            right.plot(lat, ys, label=f"{name} (p95 {run['latency_s']['p95']:.1f}s)")
    right.axvline(TARGET_P95_HALF_S, color="grey", linestyle="--", linewidth=1)
    right.set_xscale("log")
    right.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_xlabel("discovery -> stored (s)")
    right.set_ylabel("fraction of articles")
    right.set_title("Latency CDF")
    right.legend()
    fig.suptitle(f"newsflow bench {result['started_at'][:16]}Z · {result['machine']['summary']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def table(result: dict[str, Any]) -> str:
    full = result["full_load"]
    b = result.get("bounds") or {}
    half = result.get("half_load") or {}
    peer = b.get("peer", {})
    cores = result["machine"]["cores"]
    prof = full["cpu_profile"]
    rows = [
        ("articles stored / expected", f"{full['articles_stored']} / {full['articles_expected']}"),
        ("processes (newsflow run)", ", ".join(result.get("processes", []))),
        (
            "end to end (with NER)",
            f"{full['articles_per_s']:.2f} articles/s, first poll to every stage done in "
            f"{full['wall_s']:.1f}s (to the last stored: "
            f"{full['articles_per_s_to_last_stored']:.2f}/s)",
        ),
        (
            "CPU budget (all processes)",
            f"{full['cpu_ms_per_article']:.0f} ms/article -> at most "
            f"{full['cpu_bound_per_s']:.1f} articles/s on {cores} cores",
        ),
        (
            "ratio to CPU budget",
            f"{full['ratio_to_cpu_budget']:.3f} (goal >= {TARGET_CPU_RATIO})",
        ),
        (
            "  of the CPU the bench left",
            f"{full['ratio_to_cpu_left_by_harness']:.3f} (corpus server and bench process "
            f"used {sum(p['cpu_s'] for p in full['harness_processes'].values()):.1f} CPU s)",
        ),
    ]
    total = prof["total"]
    rows.append(
        (
            "CPU use: run / machine / demand",
            f"{100 * total['ours']:.0f}% / {100 * total['machine']:.0f}% / "
            f"{100 * total['demand']:.0f}% of {cores} cores; {total['idle_core_s']:.0f} "
            f"core-s unused by the run, {total['unoffered_core_s']:.0f} not even asked for "
            f"(load avg {result['machine']['load_avg_at_start'][0]:.1f} at start)",
        )
    )
    for name, ph in prof["phases"].items():
        rows.append(
            (
                f"  {name}",
                f"{ph['seconds']:.1f}s: run {100 * ph['ours']:.0f}%, bench "
                f"{100 * ph['harness']:.0f}%, machine {100 * ph['machine']:.0f}%, demand "
                f"{100 * ph['demand']:.0f}%; "
                f"{ph['idle_core_s']:.0f} core-s unused, {ph['unoffered_core_s']:.0f} not asked",
            )
        )
    rows.append(
        (
            f"  run's CPU per {prof['bucket_s']:g}s",
            " ".join(f"{100 * r['ours']:.0f}" for r in prof["buckets"]) + " (%)",
        )
    )
    rows.append(
        (
            f"  demand per {prof['bucket_s']:g}s",
            " ".join(f"{100 * r['demand']:.0f}" for r in prof["buckets"]) + " (%)",
        )
    )
    for label, w in full.get("workers", {}).items():
        if label.startswith("enricher"):
            rows.append(
                (
                    f"  {label}",
                    f"{w['messages']:.0f} articles, first at {w['first_s']:.0f}s, last at "
                    f"{w['last_s']:.0f}s; in between runnable {100 * w['runnable']:.0f}% "
                    f"(its main thread {100 * w['main_runnable']:.0f}%)",
                )
            )
    if b:
        rows.append(
            (
                "NER bound",
                f"{b['ner_per_s']:.2f} docs/s (1 core) x {result['enricher_workers']} "
                f"enrichers = {result['bound_per_s']:.2f}/s; ratio {result['ratio_to_bound']:.2f}",
            )
        )
    rows.append(
        (
            "latency full load p50/p95",
            f"{full['latency_s']['p50']:.2f} / {full['latency_s']['p95']:.2f} s",
        )
    )
    if half:
        rows.append(
            (
                f"latency half load ({half['offered_per_s']:.1f}/s) p50/p95",
                f"{half['latency_s']['p50']:.2f} / {half['latency_s']['p95']:.2f} s (p95 target < {TARGET_P95_HALF_S:g})",
            )
        )
    for hop, h in (half.get("hops_s") or {}).items():
        rows.append((f"  half load {hop} p50/p95", f"{h['p50']:.2f} / {h['p95']:.2f} s"))
    for stage, st in full["stages"].items():
        rows.append((f"stage {stage}", f"{st['per_s']:.2f} msg/s over {st['active_s']}s"))
    for name, p in full["processes"].items():
        rows.append(
            (
                f"{name}",
                f"CPU {p['cpu_s']:.1f} s ({p['cpu_ms_per_article']:.0f} ms/article), "
                f"peak RSS {p['peak_rss_mb']:.0f} MB",
            )
        )
    if b:
        rows.append(("extraction alone (1 core)", f"{b['extract_per_s']:.2f} docs/s"))
        rows.append(("NER alone (1 core)", f"{b['ner_per_s']:.2f} docs/s"))
    if "extract_per_s" in peer:
        rows.append(
            (
                f"peer: {peer['name']} extraction",
                f"{peer['extract_per_s']:.2f} docs/s; ours end to end = {result['vs_peer']:.2f}x",
            )
        )
    if full["dead_letters"]:
        rows.append(("dead letters", json.dumps(full["dead_letters"])))
    if result.get("crash_lines"):
        rows.append(("crash lines in the run's log", str(len(result["crash_lines"]))))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = psutil.cpu_count() or 0
    mem = psutil.virtual_memory().total / 2**30
    return {
        "cpu": cpu,
        "cores": cores,
        "memory_gb": round(mem, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "summary": f"{cores} cores, {mem:.0f} GB, {cpu[:40]}",
    }


def run_env(home: Path, enrichers: int | None) -> dict[str, str]:
    """The environment of the measured ``newsflow run``: the caller's, minus its NEWSFLOW_
    settings, plus the relaxed politeness (and the enricher count when one is asked for)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(harness.RELAXED_POLITENESS)
    env.update(
        {
            "NEWSFLOW_HOME": str(home),
            # the supervisor takes the first free ports from here, one per worker
            "NEWSFLOW_METRICS_PORT_BASE": str(METRICS_PORT_BASE),
            "NEWSFLOW_LOG_FORMAT": "text",
            "PYTHONPATH": str(harness.ROOT),
        }
    )
    if enrichers:
        env["NEWSFLOW_ENRICHER_WORKERS"] = str(enrichers)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=DEFAULT_ARTICLES)
    parser.add_argument("--hosts", type=int, default=DEFAULT_HOSTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_ARTICLES} articles on {QUICK_HOSTS} hosts"
    )
    parser.add_argument(
        "--no-half-load", action="store_true", help="skip the half-load latency run"
    )
    parser.add_argument("--no-bounds", action="store_true", help="skip the standalone bounds")
    parser.add_argument("--bound-sample", type=int, default=BOUND_SAMPLE)
    parser.add_argument(
        "--enrichers",
        type=int,
        default=None,
        help="NEWSFLOW_ENRICHER_WORKERS for the run (default: what make run starts, the "
        "setting from the environment or one per core)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-docs", action="store_true", help="do not copy to docs/bench/latest.*")
    args = parser.parse_args(argv)
    if args.quick:
        args.articles, args.hosts = QUICK_ARTICLES, QUICK_HOSTS
        args.bound_sample = min(args.bound_sample, 60)
    logging.basicConfig(level=logging.WARNING)
    enrichers = args.enrichers or Settings().enricher_processes
    plan = worker_plan(Settings(enricher_workers=enrichers))

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = args.out / f"{stamp}-logs"
    log_dir.mkdir(parents=True)
    home = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
    os.chmod(home, 0o755)  # as root, the postgres user must reach the cluster in it
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "corpus": {"articles": args.articles, "hosts": args.hosts, "seed": args.seed},
        "enricher_workers": enrichers,
        "processes_started": [f"{service}#{i + 1}" for service, i in plan],
        "settings": dict(harness.RELAXED_POLITENESS),
        "note": "politeness relaxed for the loopback corpus (no per-host gap, 4 in flight per host)",
    }
    corpus = Corpus(articles=args.articles, hosts=args.hosts, seed=args.seed)
    server, served = _start_server(args, log_dir)
    print(
        f"corpus: {args.articles} articles on {args.hosts} hosts, {len(served['feeds'])} feeds "
        f"(pre-rendered in {served['prerender_s']}s)",
        flush=True,
    )
    run = harness.Run(home, run_env(home, args.enrichers), log_dir / "newsflow-run.log")
    try:
        t = time.monotonic()
        ep = run.start(expect_workers=len(plan))
        result["processes"] = [w.label for w in run.workers()]
        # the warm-up is the readiness check: it passes once every group has joined
        warm = Corpus(articles=WARMUP_ARTICLES, hosts=2, seed=args.seed + 1, first_ip=args.hosts)
        with serving(warm) as network:
            asyncio.run(harness.add_feeds(ep.database_url, network.feed_urls))
            harness.wait_done(ep.database_url, run, expect_links=WARMUP_ARTICLES, timeout=300)
            harness.wait_downstream(ep.database_url, 0.0, run)
        result["startup_and_warmup_s"] = round(time.monotonic() - t, 1)
        print(
            f"newsflow run ready and warm in {result['startup_and_warmup_s']}s "
            f"({', '.join(result['processes'])}); full load…",
            flush=True,
        )
        full = run_full(ep, run, served["feeds"], args.articles, server.pid)
        result["full_load"] = full
        print(
            f"full load: {full['articles_per_s']}/s, ratio to CPU budget "
            f"{full['ratio_to_cpu_budget']}, p95 {full['latency_s']['p95']}s",
            flush=True,
        )
        if not args.no_half_load:
            rate = max(0.5, full["articles_per_s"] / 2)
            seconds = QUICK_HALF_LOAD_SECONDS if args.quick else HALF_LOAD_SECONDS
            print(f"half load: {rate:.2f} articles/s for ~{seconds:.0f}s…", flush=True)
            result["half_load"] = run_half(
                ep,
                run,
                rate=rate,
                seconds=seconds,
                seed=args.seed,
                first_ip=args.hosts + WARMUP_ARTICLES,
            )
        result["crash_lines"] = run.crash_lines()
    finally:
        result["run_exit_code"] = run.stop()
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(home, ignore_errors=True)

    if not args.no_bounds:
        print("bounds and peer on the same pages (one process each)…", flush=True)
        result["bounds"] = bounds(corpus, int(served["port"]), args.bound_sample)
        b = result["bounds"]
        bottleneck = "extract" if b["extract_per_s"] <= b["ner_per_s"] * enrichers else "ner"
        result["bottleneck"] = bottleneck
        # each stage's standalone rate times the processes the pipeline runs it with
        result["bound_per_s"] = min(b["extract_per_s"], b["ner_per_s"] * enrichers)
        result["ratio_to_bound"] = round(
            result["full_load"]["articles_per_s"] / result["bound_per_s"], 3
        )
        peer = b.get("peer", {})
        if "extract_per_s" in peer:
            result["vs_peer"] = round(
                result["full_load"]["articles_per_s"] / peer["extract_per_s"], 3
            )
    result["finished_at"] = datetime.now(UTC).isoformat()
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    json_path = args.out / f"{stamp}.json"
    png_path = args.out / f"{stamp}.png"
    json_path.write_text(json.dumps(result, indent=2))
    has_chart = "bounds" in result and chart(result, png_path)
    print()
    print(table(result))
    print(f"\nwrote {json_path}" + (f" and {png_path}" if has_chart else " (no chart)"))
    if not args.no_docs and "bounds" in result:
        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(json_path, DOCS_DIR / "latest.json")
        if has_chart:
            shutil.copyfile(png_path, DOCS_DIR / "latest.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
