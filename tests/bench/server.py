"""Serve a :class:`~tests.bench.corpus.Corpus` on loopback: one listener per host address.

Every host listens on its own 127.x.y.z address (same port), so the fetcher's per-host
politeness and the ``news.links.v1`` partitioning see as many hosts as the corpus has. Pages are
rendered and gzip-compressed once, before serving (``prerender``), so the load generator spends
almost no CPU during a measured run: the two cores belong to the pipeline.

Run it as a separate process (what ``make bench`` does) with
``python -m tests.bench.server --articles N --hosts M --seed S``: it prints one JSON line
(``port``, ``feeds``) when it listens, then serves until stdin closes or it is terminated.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.bench.corpus import (
    DEFAULT_ARTICLES,
    DEFAULT_HOSTS,
    DEFAULT_SEED,
    Corpus,
    render_article,
    render_feed,
)

logger = logging.getLogger(__name__)

GZIP_LEVEL = 5
ROBOTS = b"User-agent: *\nAllow: /\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client killed mid-request (the fault tests kill -9 the fetcher) is not our error
        return


class SiteNetwork:
    """Pre-rendered pages of a corpus, served on one address per host; a context manager."""

    def __init__(self, corpus: Corpus, *, port: int = 0, prerender: bool = True) -> None:
        self.corpus = corpus
        self.port = port
        self.prerender = prerender
        self._pages: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.requests = 0
        self._lock = threading.Lock()

    def base(self, ip: str) -> str:
        return f"http://{ip}:{self.port}"

    @property
    def feed_urls(self) -> list[str]:
        return [
            self.base(host.ip) + feed
            for host in self.corpus.hosts
            for feed in sorted(self.corpus.feeds(host))
        ]

    def article_url(self, index: int) -> str:
        a = self.corpus.articles[index]
        return self.base(a.host.ip) + a.path

    def render(self, ip: str, path: str) -> tuple[bytes, str] | None:
        """(uncompressed body, content type) for a path, or None (404)."""
        corpus = self.corpus
        article = corpus.by_path.get((ip, path))
        if article is not None:
            body = render_article(corpus, article, self.base(ip))
            return body.encode("utf-8"), "text/html; charset=utf-8"
        host = next((h for h in corpus.hosts if h.ip == ip), None)
        if host is not None and path in corpus.feeds(host):
            return render_feed(corpus, host, path, self.base(ip)).encode(), "application/rss+xml"
        if path == "/robots.txt":
            return ROBOTS, "text/plain"
        return None

    def _compressed(self, ip: str, path: str) -> tuple[bytes, str] | None:
        key = (ip, path)
        hit = self._pages.get(key)
        if hit is None:
            rendered = self.render(ip, path)
            if rendered is None:
                return None
            hit = (gzip.compress(rendered[0], GZIP_LEVEL), rendered[1])
            self._pages[key] = hit
        return hit

    def _prerender(self) -> None:
        for a in self.corpus.articles:
            self._compressed(a.host.ip, a.path)

    def __enter__(self) -> SiteNetwork:
        if self.prerender:
            self._prerender()
        network = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers

            def do_GET(self) -> None:
                ip = str(self.connection.getsockname()[0])  # the host address it came to
                path = self.path.split("?", 1)[0]
                with network._lock:
                    network.requests += 1
                hit = network._compressed(ip, path)
                if hit is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, content_type = hit
                gz = "gzip" in (self.headers.get("Accept-Encoding") or "")
                if not gz:
                    data = gzip.decompress(data)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                if gz:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        for host in self.corpus.hosts:
            server = _Server((host.ip, self.port), Handler)
            if self.port == 0:
                self.port = server.server_address[1]
            self._servers.append(server)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def _free_common_port(corpus: Corpus) -> int:
    """A port free on the first host's address (others are checked when they bind)."""
    with socket.socket() as sock:
        sock.bind((corpus.hosts[0].ip, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(corpus: Corpus, *, prerender: bool = True) -> Iterator[SiteNetwork]:
    """Serve *corpus* in this process (threads); retry once if a port clashes."""
    for attempt in range(3):
        network = SiteNetwork(corpus, port=_free_common_port(corpus), prerender=prerender)
        try:
            network.__enter__()
        except OSError:
            network.__exit__(None, None, None)
            if attempt == 2:
                raise
            continue
        try:
            yield network
        finally:
            network.__exit__(None, None, None)
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=DEFAULT_ARTICLES)
    parser.add_argument("--hosts", type=int, default=DEFAULT_HOSTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    corpus = Corpus(articles=args.articles, hosts=args.hosts, seed=args.seed)
    started = time.monotonic()
    with serving(corpus) as network:
        sys.stdout.write(
            json.dumps(
                {
                    "port": network.port,
                    "feeds": network.feed_urls,
                    "prerender_s": round(time.monotonic() - started, 2),
                }
            )
            + "\n"
        )
        sys.stdout.flush()
        # serve until the parent closes our stdin (or terminates us)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
