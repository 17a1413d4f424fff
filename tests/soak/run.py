"""``make soak``: ``newsflow run`` (continuous, embedded stack) for DURATION seconds at a
steady RATE of new articles on loopback feeds; RSS of every process and the size of every
table at the start and the end, so growth without bound shows (issue 13).

    python -m tests.soak.run --duration 3600 --rate 0.5 [--home DIR] [--out bench-results/soak.json]

The site releases article *i* at ``i / rate`` seconds after the start; each feed lists its
newest released items. Feeds are polled every 20-60 s, retention runs every minute (with the
default windows nothing is old enough to go: what it proves is that the pass runs and costs
little), and the run is stopped with SIGINT at the end as an operator would, which must exit
130 (128 + SIGINT, as after Ctrl-C) without an ERROR line. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from services.cli.main import INTERRUPTED_EXIT
from shared import stack
from tests.bench import harness
from tests.bench.corpus import Corpus, render_feed_items
from tests.bench.server import SiteNetwork, serving

SAMPLE_EVERY_S = 30.0
FEED_ITEMS = 50
HOSTS = 10
SEED = 20261130
POLL_ENV = {
    "NEWSFLOW_POLL_MIN_INTERVAL_S": "20",
    "NEWSFLOW_POLL_MAX_INTERVAL_S": "60",
    "NEWSFLOW_RETENTION_INTERVAL_S": "60",
}
MB = 2**20


class DripSite:
    """Wraps a :class:`SiteNetwork` so its feeds only list articles released so far."""

    def __init__(self, network: SiteNetwork, rate: float) -> None:
        self.network = network
        self.rate = rate
        self.started = time.monotonic()
        corpus = network.corpus
        original = network._compressed

        def compressed(ip: str, path: str) -> tuple[bytes, str] | None:
            host = next((h for h in corpus.hosts if h.ip == ip), None)
            if host is None or path not in corpus.feeds(host):
                return original(ip, path)
            released = self.released()
            items = [a for a in corpus.feeds(host)[path] if a.index < released]
            items = sorted(items, key=lambda a: a.index, reverse=True)[:FEED_ITEMS]
            body = render_feed_items(corpus, host, items, network.base(ip)).encode()
            return gzip.compress(body), "application/rss+xml"

        network._compressed = compressed  # type: ignore[method-assign]

    def released(self) -> int:
        return min(
            self.network.corpus.n_articles,
            1 + int((time.monotonic() - self.started) * self.rate),
        )


def _tree(pid: int) -> dict[str, int]:
    """label -> RSS bytes of the run and every process below it (workers, Tansu, PostgreSQL)."""
    out: dict[str, int] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return out
    for proc in procs:
        try:
            cmd = proc.cmdline()
            rss = proc.memory_info().rss
        except psutil.Error:
            continue
        if proc.pid == pid:
            label = "supervisor"
        elif "worker" in cmd:
            label = "worker " + cmd[cmd.index("worker") + 1]
        else:
            continue
        n = 1
        while f"{label}#{n}" in out:
            n += 1
        out[f"{label}#{n}"] = rss
    return out


def _stack_rss(home: Path) -> dict[str, int]:
    state = stack.read_state(home)
    out: dict[str, int] = {}
    if state.kafka and state.kafka.pid:
        out["tansu"] = stack.rss_bytes(state.kafka.pid)
    if state.postgres and state.postgres.pid:
        try:
            pm = psutil.Process(state.postgres.pid)
            procs = [pm, *pm.children(recursive=True)]
            out["postgres (all)"] = sum(p.memory_info().rss for p in procs)
            # RSS counts the shared buffers once per backend that touched them; the
            # proportional set size splits them, so its sum is what the cluster really holds
            out["postgres (all, PSS)"] = sum(p.memory_full_info().pss for p in procs)
        except psutil.Error:
            pass
    return out


async def _db(home: Path) -> dict[str, Any]:
    state = stack.read_state(home)
    assert state.postgres and state.postgres.endpoint
    conn = await asyncpg.connect(harness.plain_dsn(state.postgres.endpoint))
    try:
        sizes = {
            r["relname"]: r["bytes"]
            for r in await conn.fetch(
                "SELECT relname, pg_total_relation_size(relid) AS bytes FROM pg_stat_user_tables"
                " ORDER BY relname"
            )
        }
        counts = dict(
            await conn.fetchrow(
                "SELECT (SELECT count(*) FROM articles) AS articles,"
                " (SELECT count(*) FROM seen_links) AS links,"
                " (SELECT count(*) FROM seen_links WHERE done_at IS NULL) AS pending,"
                " (SELECT count(*) FROM dead_letters) AS dead_letters"
            )
        )
        return {"tables": sizes, **counts}
    finally:
        await conn.close()


def sample(pid: int, home: Path, t0: float) -> dict[str, Any]:
    return {
        "t_s": round(time.monotonic() - t0, 1),
        "rss": {**_tree(pid), **_stack_rss(home)},
        **asyncio.run(_db(home)),
    }


def _slope_mb_per_h(series: list[tuple[float, int]]) -> float:
    """Least-squares slope over the second half of a (seconds, bytes) series, in MB/h."""
    half = series[len(series) // 2 :]
    if len(half) < 2:
        return 0.0
    xs = [t for t, _ in half]
    ys = [b / MB for _, b in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return (
        0.0
        if var == 0
        else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("--rate", type=float, default=0.5, help="new articles per second")
    parser.add_argument("--home", type=Path, default=None, help="NEWSFLOW_HOME (default: temp)")
    parser.add_argument("--out", type=Path, default=harness.ROOT / "bench-results" / "soak.json")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="newsflow-soak-"))
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o755)
    n = math.ceil(args.duration * args.rate) + 10
    with serving(Corpus(articles=n, hosts=HOSTS, seed=SEED), prerender=False) as network:
        site = DripSite(network, args.rate)
        feeds = home / "soak-feeds.txt"
        feeds.write_text("\n".join(network.feed_urls) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
        env.update(harness.RELAXED_POLITENESS)
        env.update(POLL_ENV)
        env.update(
            {
                "NEWSFLOW_HOME": str(home),
                "NEWSFLOW_METRICS_PORT_BASE": "0",
                "NEWSFLOW_LOG_FORMAT": "text",
                "PYTHONPATH": str(harness.ROOT),
            }
        )
        log_path = home / "soak-run.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [harness.newsflow(), "run", "--feeds", str(feeds)],
                env=env,
                cwd=harness.ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            t0 = time.monotonic()
            samples: list[dict[str, Any]] = []
            try:
                while True:  # warm-up: the first article stored
                    if proc.poll() is not None:
                        raise RuntimeError(f"run exited early; see {log_path}")
                    try:
                        if asyncio.run(_db(home))["articles"] > 0:
                            break
                    except (AssertionError, OSError, asyncpg.PostgresError):
                        pass
                    time.sleep(1)
                t0 = time.monotonic()
                samples.append(sample(proc.pid, home, t0))
                print(f"soak: started, {json.dumps(samples[0]['rss'])}", flush=True)
                while time.monotonic() - t0 < args.duration:
                    time.sleep(
                        min(SAMPLE_EVERY_S, max(0.1, args.duration - (time.monotonic() - t0)))
                    )
                    if proc.poll() is not None:
                        raise RuntimeError(f"run exited with {proc.returncode}; see {log_path}")
                    samples.append(sample(proc.pid, home, t0))
                    s = samples[-1]
                    print(
                        f"soak: t={s['t_s']:.0f}s released={site.released()} stored={s['articles']}"
                        f" pending={s['pending']} rss_mb="
                        + ",".join(f"{k}:{v / MB:.0f}" for k, v in sorted(s["rss"].items())),
                        flush=True,
                    )
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    code = proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
    text = log_path.read_text(errors="replace")
    first, last = samples[0], samples[-1]
    labels = sorted(set(first["rss"]) | set(last["rss"]))
    report = {
        "duration_s": last["t_s"],
        "rate_per_s": args.rate,
        "released": site.released(),
        "stored": last["articles"],
        "pending_at_end": last["pending"],
        "dead_letters": last["dead_letters"],
        "exit_code_after_sigint": code,
        "error_lines": [line for line in text.splitlines() if " ERROR " in line][:10],
        "tracebacks": text.count("Traceback"),
        "rss_mb": {
            label: {
                "start": round(first["rss"].get(label, 0) / MB, 1),
                "end": round(last["rss"].get(label, 0) / MB, 1),
                "peak": round(max(s["rss"].get(label, 0) for s in samples) / MB, 1),
                "slope_mb_per_h_second_half": round(
                    _slope_mb_per_h([(s["t_s"], s["rss"].get(label, 0)) for s in samples]), 1
                ),
            }
            for label in labels
        },
        "table_mb": {
            name: {
                "start": round(first["tables"].get(name, 0) / MB, 2),
                "end": round(size / MB, 2),
            }
            for name, size in sorted(last["tables"].items())
        },
        "log": str(log_path),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    # 130 = 128 + SIGINT: what 'newsflow run' answers to Ctrl-C (services.cli.main)
    ok = code == INTERRUPTED_EXIT and not report["error_lines"] and not report["tracebacks"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
