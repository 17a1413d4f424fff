"""Matcher throughput with 1,000 active watches (issue 15: above 500 articles/s on one core).

    python -m tests.bench.alerter_matcher [--watches 1000] [--articles 2000] [--json]

Synthetic but shaped like the pipeline's data: articles of 500-900 words drawn from a
security-news vocabulary (with Turkish and Kurdish place names), ~30 entity keys each out of
a pool of 3,000; watches mixing entity keys, words, phrases, OR groups, NOT, lang/source/kind
fields and date ranges. Seeded, so runs are comparable. Measures the whole per-article cost the
alerter pays in :meth:`Matcher.match` (folding and tokenising the text, index lookups,
evaluating candidates), and for comparison the same watches evaluated without the index.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import UTC, datetime, timedelta

from services.alerter.matcher import ArticleDoc, Matcher, _evaluate, _Prepared, compile_watch

SEED = 20261130
# fmt: off
_WORD_TEXT = (
    "the of and to in a on for with said by at from that was were has have after its as "
    "security forces strike drone attack border ceasefire talks ministry defence official "
    "killed wounded militants operation province district village city region government "
    "parliament minister president army police military statement report sources local "
    "people civilians refugees camp oil pipeline energy trade election vote party court "
    "prosecutor arrest detained protest rally agreement deal sanctions aid water dam "
    "Sinjar Duhok Erbil Mosul Kirkuk Sulaymaniyah Baghdad Ankara Istanbul Diyarbakır Şırnak "
    "Hakkari Qamishli Kobani Raqqa Idlib Aleppo Damascus Tehran Qandil Zakho Halabja Afrin"
)
# fmt: on
WORDS = _WORD_TEXT.split()
KINDS = ("PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT")
LANGS = ("en", "tr", "ar", "ckb", "kmr", "fa")
HOSTS = tuple(f"news{i}.example.org" for i in range(60))
T0 = datetime(2026, 11, 1, tzinfo=UTC)


#: Vocabulary size of the synthetic language: news text uses tens of thousands of distinct
#: words, most of them rare; an article of 700 words has ~350 distinct ones.
VOCABULARY = 30_000
SYLLABLES = ("ka", "ri", "mo", "del", "tan", "zu", "shi", "ba", "ro", "lek", "an", "ur", "ye")


def vocabulary(rng: random.Random) -> list[str]:
    """Common words first (their frequency follows Zipf's law), then pseudo-words."""
    words = list(dict.fromkeys(WORDS))
    seen = set(words)
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def entity_pool(rng: random.Random, size: int = 3000) -> list[str]:
    return [f"{rng.choice(KINDS)}:entity {i}" for i in range(size)]


def zipf_weights(n: int) -> list[float]:
    return [1 / (i + 1) for i in range(n)]


def make_articles(
    rng: random.Random, n: int, keys: list[str], words: list[str]
) -> list[ArticleDoc]:
    # Zipf popularity for words and entities: a few (Türkiye, PKK) appear in most articles
    weights = zipf_weights(len(keys))
    word_weights = zipf_weights(len(words))
    out = []
    for i in range(n):
        body = " ".join(rng.choices(words, weights=word_weights, k=rng.randint(500, 900)))
        out.append(
            ArticleDoc(
                article_id=i,
                url=f"https://{rng.choice(HOSTS)}/a/{i}",
                title=" ".join(rng.choices(words, weights=word_weights, k=10)),
                body=body,
                language=rng.choice(LANGS),
                host=rng.choice(HOSTS),
                feed_id=rng.randint(1, 300),
                authors=("Ayşe Yılmaz",),
                published_at=T0 + timedelta(hours=rng.randint(0, 24 * 30)),
                entity_keys=frozenset(rng.choices(keys, weights=weights, k=30)),
            )
        )
    return out


def make_queries(rng: random.Random, n: int, keys: list[str], words: list[str]) -> list[str]:
    # analysts watch for names and specific words (ranks 20-5,000), not for "the"
    content = words[20:5000]

    def word() -> str:
        return rng.choice(content)

    def key() -> str:
        return f'entity:"{rng.choice(keys)}"'

    shapes = [
        lambda: f"{key()} AND {word()}",
        lambda: f"{key()} AND ({word()} OR {word()})",
        lambda: f'"{word()} {word()}" AND {word()}',
        lambda: f"({word()} OR {word()}) AND {word()} NOT {word()}",
        lambda: f"{key()} AND lang:{rng.choice(LANGS)}",
        lambda: f"source:{rng.choice(HOSTS)} AND {word()}",
        lambda: f"title:{word()} AND kind:{rng.choice(KINDS)}",
        lambda: f"{key()} AND published:[2026-11-10 TO *]",
        lambda: f"{key()} OR {key()}",
        lambda: f"{word()} {word()} {word()}",
    ]
    return [rng.choice(shapes)() for _ in range(n)]


def run(watches: int, articles: int) -> dict[str, object]:
    rng = random.Random(SEED)
    keys = entity_pool(rng)
    words = vocabulary(rng)
    queries = make_queries(rng, watches, keys, words)
    docs = make_articles(rng, articles, keys, words)

    started = time.perf_counter()
    compiled = [compile_watch(i, f"w{i}", q) for i, q in enumerate(queries)]
    matcher = Matcher(compiled)
    compile_s = time.perf_counter() - started

    started = time.process_time()
    matches = sum(len(matcher.match(doc)) for doc in docs)
    match_cpu_s = time.process_time() - started

    candidates = sum(len(matcher.candidates(_Prepared(doc))) for doc in docs[:200]) / min(
        200, len(docs)
    )
    sample = docs[:100]
    started = time.process_time()
    brute = 0
    for doc in sample:
        art = _Prepared(doc)
        brute += sum(1 for w in compiled if _evaluate(w.node, art, []))
    brute_rate = len(sample) / (time.process_time() - started)
    started = time.process_time()
    for doc in sample:
        _Prepared(doc)
    prepare_ms = (time.process_time() - started) / len(sample) * 1000
    return {
        "watches": watches,
        "articles": articles,
        "unanchored_watches": sum(1 for w in compiled if w.anchors is None),
        "compile_ms": round(compile_s * 1000, 1),
        "articles_per_s": round(articles / match_cpu_s, 1),
        "ms_per_article": round(match_cpu_s / articles * 1000, 3),
        "prepare_ms_per_article": round(prepare_ms, 3),
        "candidates_per_article": round(candidates, 1),
        "matches_per_article": round(matches / articles, 2),
        "without_index_articles_per_s": round(brute_rate, 1),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.watches, args.articles)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, value in result.items():
        print(f"{name:>30}  {value}")


if __name__ == "__main__":
    main()
