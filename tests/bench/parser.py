"""Parse-time benchmark: p50/p95 of :func:`parse_page` on ~100 KB article pages, one core.

    .venv/bin/python -m tests.bench.parser [--pages 60] [--repeat 5] [--cpu 0]

Pages are the article fixtures (tests/fixtures/parser) grown to the size of a real news page:
a mega-menu, an inline JSON state blob and tracking script, a sidebar of teasers, a long
footer, and extra body paragraphs, so the article is ~700-900 words inside ~100 KB of HTML.
Each page gets a distinct URL and body so nothing is served from a cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from services.parser.pipeline import parse_page
from shared.errors import PermanentError
from shared.messages import Page
from shared.settings import Settings

DEFAULT_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "parser"
ARTICLE_FIXTURES = (
    ("tigris_pkk_strikes.html", "https://www.tigrisreview.com/security/2026/11/18/bench-{n}"),
    ("zagros_kirkuk_cell.html", "https://zagrosdaily.com/news/iraq/bench-{n}/"),
    ("euphrates_deir_ezzor_raid.html", "https://euphratesobserver.org/2026/11/20/bench-{n}/"),
    ("sinjar_no_date.html", "https://ninevehmonitor.net/bench-{n}"),
    ("duhok_future_date.html", "https://kurdistancourier.com/news/bench-{n}"),
    ("gulfdispatch_pkk_strikes_rewrite.html", "https://www.gulfdispatch.net/region/bench-{n}"),
    ("haberhatti_tr_operasyon.html", "https://www.haberhatti.com.tr/gundem/bench-{n}"),
)
TARGET_BYTES = 100_000
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PLACES = (
    "Erbil",
    "Duhok",
    "Kirkuk",
    "Mosul",
    "Qamishli",
    "Hasakah",
    "Raqqa",
    "Sulaymaniyah",
    "Hakkari",
    "Sirnak",
)
ACTORS = (
    "the PKK",
    "Islamic State",
    "the SDF",
    "the Iraqi army",
    "Turkish forces",
    "the Peshmerga",
    "the PMF",
)
VERBS = ("said", "reported", "told reporters", "announced", "confirmed", "denied")


def _sentence(rng: random.Random) -> str:
    return (
        f"Officials in {rng.choice(PLACES)} {rng.choice(VERBS)} that {rng.choice(ACTORS)} "
        f"had moved {rng.randint(2, 400)} fighters towards {rng.choice(PLACES)} after clashes with "
        f"{rng.choice(ACTORS)} on {rng.choice(('Monday', 'Tuesday', 'Wednesday', 'Thursday'))}."
    )


def _chrome(rng: random.Random, n: int) -> tuple[str, str, str]:
    menu = "".join(
        f'<li><a href="/section-{i}/">{rng.choice(PLACES)} {i}</a><ul>'
        + "".join(
            f'<li><a href="/section-{i}/sub-{j}/">{rng.choice(ACTORS)} {j}</a></li>'
            for j in range(8)
        )
        + "</ul></li>"
        for i in range(18)
    )
    state = json.dumps(
        {
            "page": n,
            "teasers": [
                {"id": i, "title": _sentence(rng), "img": f"/img/{i}.jpg"} for i in range(90)
            ],
        }
    )
    head = (
        f"<script>window.__STATE__ = {state};</script>"
        '<script>(function(){var d=document,s=d.createElement("script");s.async=1;'
        's.src="https://analytics.example.net/t.js";d.head.appendChild(s)})();</script>'
        "<style>"
        + "".join(f".c{i}{{margin:{i}px;padding:{i % 7}px}}" for i in range(300))
        + "</style>"
    )
    sidebar = (
        '<aside class="sidebar"><h3>Most read</h3><ol>'
        + "".join(f'<li><a href="/story-{i}">{_sentence(rng)}</a></li>' for i in range(40))
        + "</ol></aside>"
    )
    footer = (
        '<div class="footer-links">'
        + "".join(f'<a href="/footer-{i}">{rng.choice(PLACES)} news {i}</a> ' for i in range(120))
        + "</div>"
    )
    return f'<nav class="mega-menu"><ul>{menu}</ul></nav>', head, sidebar + footer


_last_paragraphs: dict[str, str] = {}


def _last_paragraph(html: str, url_template: str) -> str:
    url = url_template.format(n="x")
    page = Page(
        url=url,
        final_url=url,
        host=url.split("/")[2],
        status_code=200,
        html=html,
        discovered_at=NOW,
        fetched_at=NOW,
    )
    return parse_page(page, now=NOW).body_text.split("\n\n")[-1]


def build_pages(count: int, *, fixtures: Path = DEFAULT_FIXTURES, seed: int = 7) -> list[Page]:
    """``count`` distinct ~100 KB article pages built from the fixtures."""
    rng = random.Random(seed)
    pages = []
    for n in range(count):
        name, url_template = ARTICLE_FIXTURES[n % len(ARTICLE_FIXTURES)]
        html = (fixtures / name).read_text(encoding="utf-8")
        menu, head, tail = _chrome(rng, n)
        extra = "".join(f"<p>{' '.join(_sentence(rng) for _ in range(3))}</p>" for _ in range(10))
        html = html.replace("</head>", head + "</head>", 1)
        html = html.replace("<body", "<!--body--><body", 1)
        html = html.replace("</nav>", "</nav>" + menu, 1)
        # after the article's last paragraph, found by parsing the fixture as it is
        last = (
            _last_paragraphs[name]
            if name in _last_paragraphs
            else _last_paragraph(html, url_template)
        )
        _last_paragraphs[name] = last
        at = html.index("</p>", html.index(last[:40])) + len("</p>")
        html = html[:at] + extra + html[at:]
        html = html.replace("</body>", tail + "</body>", 1)
        while len(html.encode()) < TARGET_BYTES:
            html = html.replace("</body>", f"<!-- {_sentence(rng)} -->" * 20 + "</body>", 1)
        url = url_template.format(n=n)
        pages.append(
            Page(
                url=url,
                final_url=url,
                host=url.split("/")[2],
                status_code=200,
                html=html,
                discovered_at=NOW,
                fetched_at=NOW,
            )
        )
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="pin to this core (-1: no pinning)")
    args = parser.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    settings = Settings()
    pages = build_pages(args.pages)
    sizes = [len(p.html.encode()) for p in pages]
    parse_page(pages[0], settings=settings, now=NOW)  # warm-up: loads the language model once
    timings: list[float] = []
    words: list[int] = []
    failures = 0
    for _ in range(args.repeat):
        for page in pages:
            started = time.perf_counter()
            try:
                article = parse_page(page, settings=settings, now=NOW)
            except PermanentError:
                failures += 1
                continue
            finally:
                timings.append((time.perf_counter() - started) * 1000)
            words.append(article.word_count)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(
        f"pages={len(pages)} x{args.repeat} size_kb mean={statistics.mean(sizes) / 1000:.0f} "
        f"min={min(sizes) / 1000:.0f} max={max(sizes) / 1000:.0f} words mean={statistics.mean(words):.0f}"
    )
    print(
        f"parse_ms p50={statistics.median(timings):.1f} p95={p95:.1f} mean={statistics.mean(timings):.1f} "
        f"max={timings[-1]:.1f} failures={failures} cpu={'any' if args.cpu < 0 else args.cpu}"
    )


if __name__ == "__main__":
    main()
