"""The bench corpus is reproducible and shaped as the issue asks (fast, no infrastructure)."""

from __future__ import annotations

import gzip
import urllib.request

from tests.bench.corpus import (
    MAX_PAGE_BYTES,
    MAX_WORDS,
    MIN_PAGE_BYTES,
    MIN_WORDS,
    Corpus,
    paragraphs,
    render_article,
    render_feed,
)
from tests.bench.server import serving


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a, b, c = (Corpus(articles=6, hosts=2, seed=s) for s in (1, 1, 2))
    page = render_article(a, a.articles[3], "http://h")
    assert page == render_article(b, b.articles[3], "http://h")
    assert page != render_article(c, c.articles[3], "http://h")


def test_pages_and_bodies_are_in_range_and_every_article_is_in_one_feed() -> None:
    corpus = Corpus(articles=30, hosts=4, seed=5)
    for article in corpus.articles:
        size = len(render_article(corpus, article, "http://127.0.0.2:80").encode())
        assert MIN_PAGE_BYTES * 0.95 <= size <= MAX_PAGE_BYTES * 1.05, size
        words = sum(len(p.split()) for p in paragraphs(article))
        assert MIN_WORDS <= words <= MAX_WORDS + 120, words
    listed = [
        a.index for host in corpus.hosts for items in corpus.feeds(host).values() for a in items
    ]
    assert sorted(listed) == list(range(30))
    assert len({(a.host.ip, a.path) for a in corpus.articles}) == 30


def test_served_over_loopback_per_host_address_with_gzip() -> None:
    corpus = Corpus(articles=4, hosts=2, seed=3, first_ip=500)
    # no environment proxy: the corpus is on loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with serving(corpus) as network:
        feed_url = network.feed_urls[0]
        with opener.open(feed_url, timeout=5) as resp:
            feed = resp.read().decode()
        host = corpus.hosts[0]
        assert feed == render_feed(corpus, host, "/feed.xml", network.base(host.ip))
        request = urllib.request.Request(
            network.article_url(1), headers={"Accept-Encoding": "gzip"}
        )
        with opener.open(request, timeout=5) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            body = gzip.decompress(resp.read()).decode()
        article = corpus.articles[1]
        assert body == render_article(corpus, article, network.base(article.host.ip))
        assert article.host.ip != corpus.hosts[0].ip  # article 1 lives on the second host
