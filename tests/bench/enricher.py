"""Enricher throughput and quality: ``.venv/bin/python -m tests.bench.enricher``.

Corpora: a deterministic generated corpus of security-news articles (about 800 words each,
from templates, no network) and, with ``--eval GOLD_JSON`` (repeatable), the hand-annotated
articles of tests/fixtures/enricher ten times over (short, name-dense briefs, closer to real
copy; their precision/recall is printed first). Per corpus:

1. ``ner_only``: spaCy with only the ner component over every paragraph (words/CPU-s);
2. ``enrich_no_skip``: :meth:`Enricher.enrich_many` (recognition + rule layer +
   canonicalisation + salience), every sentence through the model;
3. ``enrich_default``: the same with the shipped sentence skipping (nameless sentences
   dropped, sentences of known names only left to the rules); ``--check-skip`` reports how
   many mentions agree with ``no_skip``;
4. ``generated_2proc``: the default in two processes over halves of the generated corpus
   (articles/s with both cores, wall clock; model loads excluded).

Per-core numbers are words per CPU-second of the measuring process (best of ``--repeat``),
so other load on a shared machine distorts them far less than wall time.
``--model`` takes a module name or a path to a spaCy pipeline directory, to compare models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from services.enricher.pipeline import DEFAULT_MAX_CHARS, Enricher
from services.enricher.recogniser import (
    DEFAULT_MODEL,
    SKIP_KNOWN_ONLY_SENTENCES,
    SKIP_NAMELESS_SENTENCES,
    load_nlp,
)
from services.enricher.segmentation import segments
from shared.messages import Article
from tests.support.enricher_eval import evaluate, gold_articles

DEFAULT_ARTICLES = 120
DEFAULT_WORDS = 800
DEFAULT_SEED = 7
FIXED_TIME = datetime(2026, 11, 20, tzinfo=UTC)

# fmt: off
PEOPLE = (
    ("President", "Recep Tayyip Erdoğan", "Erdoğan"), ("Prime Minister", "Mohammed Shia al-Sudani", "Sudani"),
    ("Defence Minister", "Yaşar Güler", "Güler"), ("Interior Minister", "Ali Yerlikaya", "Yerlikaya"),
    ("Foreign Minister", "Hakan Fidan", "Fidan"), ("Foreign Minister", "Fuad Hussein", "Hussein"),
    ("SDF commander", "Mazloum Abdi", "Abdi"), ("KRG Prime Minister", "Masrour Barzani", "Barzani"),
    ("Peshmerga commander", "Kawa Rashid Mirza", "Mirza"), ("Gen.", "Metin Gürak", "Gürak"),
    ("spokesman", "Peshawa Hawramani", "Hawramani"), ("Lt. Gen.", "Abdulwahab al-Saadi", "Saadi"),
)
PLACES = (
    "Duhok", "Erbil", "Zakho", "Amedi", "Sinjar", "Makhmour", "Kirkuk", "Mosul", "Sulaymaniyah",
    "Qamishli", "Kobani", "Raqqa", "Hasakah", "Manbij", "Tal Rifaat", "Hakkari", "Şırnak",
    "Mardin", "Diyarbakır", "Gaziantep", "Tal Afar", "Qaladze", "Ranya", "Soran",
)
AREAS = ("Gara", "Metina", "Zap", "Avashin", "Basyan", "Hakurk", "Qandil Mountains", "Mount Gabar")
COUNTRIES = ("Türkiye", "Iraq", "Syria", "Iran", "the United States", "Russia", "Turkey")
GROUPS = (
    "the PKK", "the Kurdistan Workers' Party", "the YPG", "the Syrian Democratic Forces", "ISIS",
    "Daesh", "the Islamic State", "the Popular Mobilization Forces", "Hashd al-Shaabi",
    "the HPG", "the PYD", "Kataib Hezbollah",
)
INSTITUTIONS = (
    "the Turkish Ministry of National Defence", "the Kurdistan Regional Government",
    "the Iraqi Security Forces", "the Turkish Armed Forces", "the Peshmerga", "the KRG",
    "the National Intelligence Organization (MIT)", "the Iraqi Counter-Terrorism Service",
    "the United Nations", "NATO", "the European Union", "the Iraqi Army",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TEMPLATES = (
    "{inst} said on {day} that {n} members of {group} had been neutralised in the {area} region of northern Iraq.",
    "{title} {person} told reporters in {place} that {country} would not allow a terror corridor along its southern border.",
    "{short} said the operation would continue until the last militant was cleared from the area.",
    "According to a statement from {inst}, the strikes targeted caves, shelters and ammunition depots used by {group}.",
    "Local officials in {place}, speaking on condition of anonymity, said the strikes had damaged farmland near several villages.",
    "The operation is the latest in a series of cross-border campaigns that began after an attack on a military outpost.",
    "Residents said they heard explosions throughout the night and saw drones circling above the hills.",
    "{group} did not immediately respond to a request for comment, but a website close to the group reported casualties.",
    "Officials from {country} and {country2} met in {place} to discuss border security and the return of displaced families.",
    "Analysts say the conflict has shifted over the past decade from rural guerrilla warfare to drone strikes and targeted killings.",
    "{inst} has repeatedly called for restraint, warning that civilians are paying the price for the fighting.",
    "In a separate incident, a roadside bomb struck a convoy on the road between {place} and {place2}, wounding two soldiers.",
    "The ministry said the bodies of {n} militants were recovered after clashes that lasted several hours.",
    "{title} {person} later spoke by phone with {title2} {person2} about the security situation in {place}.",
    "Thousands of people have been displaced from villages near {place} since the strikes intensified earlier this year.",
    "Human rights groups have documented civilian casualties and urged an independent investigation into the incident.",
    "{short2} rejected the accusations and said {country} was defending itself against terrorism.",
    "The agreement, signed in {place}, commits both sides to share intelligence and to coordinate operations against {group}.",
    "Security sources said the detained suspects were planning attacks on crowded places during the holiday season.",
    "The camp, which houses families of suspected fighters, has long been a concern for officials in {country}.",
)
# fmt: on


def make_corpus(
    count: int = DEFAULT_ARTICLES, *, words: int = DEFAULT_WORDS, seed: int = DEFAULT_SEED
) -> list[Article]:
    """``count`` deterministic articles of roughly ``words`` words each."""
    rng = random.Random(seed)
    articles = []
    for index in range(count):
        paragraphs: list[str] = []
        total = 0
        while total < words:
            sentences = []
            for _ in range(rng.randint(2, 4)):
                (t1, p1, s1), (t2, p2, s2) = rng.sample(PEOPLE, 2)
                c1, c2 = rng.sample(COUNTRIES, 2)
                pl1, pl2 = rng.sample(PLACES, 2)
                sentence = rng.choice(TEMPLATES).format(
                    title=t1,
                    person=p1,
                    short=s1,
                    title2=t2,
                    person2=p2,
                    short2=s2,
                    country=c1,
                    country2=c2,
                    place=pl1,
                    place2=pl2,
                    area=rng.choice(AREAS),
                    group=rng.choice(GROUPS),
                    inst=rng.choice(INSTITUTIONS),
                    day=rng.choice(DAYS),
                    n=rng.randint(2, 19),
                )
                sentences.append(sentence[0].upper() + sentence[1:])
            paragraph = " ".join(sentences)
            paragraphs.append(paragraph)
            total += len(paragraph.split())
        body = "\n\n".join(paragraphs)
        digest = hashlib.sha256(body.encode()).hexdigest()
        url = f"https://bench.example/{index}"
        articles.append(
            Article(
                url=url,
                final_url=url,
                canonical_url=url,
                host="bench.example",
                title=f"{rng.choice(GROUPS).removeprefix('the ')} attack near {rng.choice(PLACES)}",
                body_text=body,
                content_hash=digest,
                language="en",
                discovered_at=FIXED_TIME,
                fetched_at=FIXED_TIME,
                parsed_at=FIXED_TIME,
            )
        )
    return articles


def count_words(articles: Sequence[Article]) -> int:
    return sum(len(a.body_text.split()) + len((a.title or "").split()) for a in articles)


def bench_ner(model: str, articles: Sequence[Article], *, batch_size: int) -> float:
    """CPU seconds for the bare model over every paragraph and title (no skipping)."""
    nlp = load_nlp(model)
    texts = [seg for a in articles for _, seg in segments(a.body_text)]
    texts += [a.title or "" for a in articles]
    started = time.process_time()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.process_time() - started


#: Recognizer settings compared: no sentence skipping, and the shipped defaults.
MODES: dict[str, tuple[bool, bool]] = {
    "no_skip": (False, False),
    "default": (SKIP_NAMELESS_SENTENCES, SKIP_KNOWN_ONLY_SENTENCES),
}


def _enricher(model: str, batch_size: int, mode: str) -> Enricher:
    enricher = Enricher(model=model, max_chars=DEFAULT_MAX_CHARS, batch_size=batch_size)
    enricher.load()
    assert enricher._recognizer is not None
    enricher._recognizer.skip_nameless, enricher._recognizer.skip_known = MODES[mode]
    return enricher


def _enrich_chunk(args: tuple[str, list[Article], int, str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, articles) for one Enricher over ``chunk``."""
    model, chunk, batch_size, mode = args
    enricher = _enricher(model, batch_size, mode)
    enricher.enrich_many(chunk[:2])  # warm caches, as a running service would be
    wall, cpu = time.perf_counter(), time.process_time()
    done = 0
    for i in range(0, len(chunk), batch_size):
        done += len(enricher.enrich_many(chunk[i : i + batch_size]))
    return time.perf_counter() - wall, time.process_time() - cpu, done


def bench_parallel(
    model: str, articles: list[Article], *, processes: int, batch_size: int
) -> tuple[float, int]:
    """Wall time for ``processes`` workers over equal shares, model loads excluded."""
    chunks = [articles[i::processes] for i in range(processes)]
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker
    with context.Pool(processes) as pool:
        results = pool.map(_enrich_chunk, [(model, c, batch_size, "default") for c in chunks])
    return max(wall for wall, _, _ in results), sum(done for _, _, done in results)


def mention_agreement(model: str, articles: list[Article], *, batch_size: int) -> float:
    """Share of mentions identical with the default sentence skipping and without any."""
    sets = {}
    for mode in MODES:
        enricher = _enricher(model, batch_size, mode)
        sets[mode] = [
            {(m.field, m.start, m.end, m.entity_key) for m in r.mentions}
            for r in enricher.enrich_many(articles)
        ]
    pairs = list(zip(sets["no_skip"], sets["default"], strict=True))
    same = sum(len(a & b) for a, b in pairs)
    union = sum(len(a | b) for a, b in pairs)
    return same / union if union else 1.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=DEFAULT_ARTICLES)
    parser.add_argument("--words", type=int, default=DEFAULT_WORDS, help="words per article")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--batch-size", type=int, default=16, help="articles per enrich_many")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--skip-parallel", action="store_true")
    parser.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="GOLD_JSON",
        help="also report entity precision/recall on a gold file (repeatable)",
    )
    parser.add_argument(
        "--check-skip", action="store_true", help="compare mentions with/without skipping"
    )
    args = parser.parse_args(argv)

    if args.eval:
        enricher = Enricher(model=args.model)
        enricher.load()
        for path in args.eval:
            print(json.dumps({"eval": path, **evaluate(enricher, path)}))
    corpora = {"generated": make_corpus(args.articles, words=args.words)}
    if args.eval:
        # short, name-dense briefs: closer to real copy than the generated corpus
        corpora["gold_articles_x10"] = gold_articles(args.eval, copies=10)
    report: dict[str, object] = {"model": args.model}
    for name, articles in corpora.items():
        words = count_words(articles)
        stats: dict[str, object] = {"articles": len(articles), "words": words}
        # per core = words per CPU-second of this process, best of --repeat runs: other
        # load on a shared machine disturbs wall time far more than CPU time
        cpu = min(bench_ner(args.model, articles, batch_size=64) for _ in range(args.repeat))
        stats["ner_only_words_per_cpu_s"] = round(words / cpu)
        for mode in MODES:
            runs = [
                _enrich_chunk((args.model, articles, args.batch_size, mode))
                for _ in range(args.repeat)
            ]
            wall, cpu, done = min(runs, key=lambda run: run[1])
            stats[f"enrich_{mode}_words_per_cpu_s"] = round(words / cpu)
            stats[f"enrich_{mode}_articles_per_cpu_s"] = round(done / cpu, 2)
        if args.check_skip:
            stats["default_vs_no_skip_mention_agreement"] = round(
                mention_agreement(args.model, articles, batch_size=args.batch_size), 4
            )
        report[name] = stats
    if not args.skip_parallel and args.processes > 1:
        articles = corpora["generated"]
        wall, done = min(
            bench_parallel(
                args.model, articles, processes=args.processes, batch_size=args.batch_size
            )
            for _ in range(args.repeat)
        )
        report[f"generated_{args.processes}proc_articles_per_wall_s"] = round(done / wall, 2)
        report[f"generated_{args.processes}proc_words_per_wall_s"] = round(
            count_words(articles) / wall
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
