"""DedupIndex on a few hundred articles: planted copies found, nothing else flagged, and fast."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.parser.dedup import DedupIndex, fingerprint
from shared.messages import Article

BATCH = 32
ORIGINALS = 240
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
    "Zakho",
    "Amedi",
)
WORDS = [
    "officials",
    "militants",
    "drone",
    "strike",
    "convoy",
    "checkpoint",
    "border",
    "village",
    "ministry",
    "statement",
    "police",
    "army",
    "fighters",
    "camp",
    "prison",
    "attack",
    "operation",
    "ceasefire",
    "talks",
    "delegation",
    "governor",
    "council",
    "commander",
    "cell",
    "explosives",
    "weapons",
    "smuggling",
    "patrol",
    "curfew",
    "refugees",
    "returnees",
    "court",
    "trial",
]


def _text(rng: random.Random) -> str:
    return " ".join(
        f"{rng.choice(PLACES)} {' '.join(rng.choices(WORDS, k=rng.randint(8, 16)))}."
        for _ in range(30)
    )


def _rewrite(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(len(words) // 60):  # ~1.5 % of the words changed
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


async def test_planted_copies_among_hundreds_of_articles(
    parsed: Callable[..., Article], sessions: async_sessionmaker[AsyncSession]
) -> None:
    rng = random.Random(11)
    template = parsed(
        "tigris_pkk_strikes.html", "https://www.tigrisreview.com/security/2026/11/18/x"
    )

    def article(n: int, text: str) -> Article:
        digest, signature = fingerprint(text)
        url = f"https://site{n % 7}.example.com/news/{n}"
        return template.model_copy(
            update={
                "url": url,
                "final_url": url,
                "canonical_url": url,
                "body_text": text,
                "content_hash": digest,
                "minhash": signature,
                "word_count": len(text.split()),
            }
        )

    texts = [_text(rng) for _ in range(ORIGINALS)]
    stream = [article(n, t) for n, t in enumerate(texts)]
    exact = {ORIGINALS + i: i * 3 for i in range(20)}  # copy n -> original index
    near = {ORIGINALS + 20 + i: i * 5 + 1 for i in range(20)}
    stream += [article(n, texts[i]) for n, i in exact.items()]
    stream += [article(n, _rewrite(texts[i], rng)) for n, i in near.items()]

    index = DedupIndex(sessions, threshold=0.8)
    started = time.perf_counter()
    resolved: list[Article] = []
    for start in range(0, len(stream), BATCH):
        resolved += await index.resolve(stream[start : start + BATCH])
    elapsed = time.perf_counter() - started
    print(
        f"dedup: {len(stream)} articles in {elapsed * 1000:.0f} ms ({elapsed / len(stream) * 1000:.2f} ms/article)"
    )

    by_url = {a.canonical_url: a for a in resolved}
    url = [a.canonical_url for a in stream]
    for n, i in exact.items():
        assert (by_url[url[n]].status, by_url[url[n]].duplicate_of) == ("duplicate", url[i])
    for n, i in near.items():
        assert (by_url[url[n]].status, by_url[url[n]].duplicate_of) == ("near_duplicate", url[i])
    assert sum(a.status == "ok" for a in resolved) == ORIGINALS
    assert elapsed < 20, "dedup of 280 articles took far too long"
