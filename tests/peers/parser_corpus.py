"""Score the parser on public corpora of real pages nobody on the team wrote, next to trafilatura.

Corpora (never committed; point at a checkout or an extracted copy):

* ``NEWSFLOW_FUNDUS_CORPUS``: flairNLP/fundus's ``tests/resources/parser/test_data`` folder
  (``<country>/<Publisher>_<date>.html.gz``, ``<Publisher>.json`` with the expected values per
  parser version, ``meta.info`` with URL and crawl date per page). Scored: body (word-level
  precision/recall/F1 against summary + section headlines + paragraphs), title, authors and
  publishing date.
* ``NEWSFLOW_TRAFILATURA_EVAL``: adbar/trafilatura's ``tests`` folder (``evaldata.json`` and
  ``eval/*.html``). Body: trafilatura's own segment scoring (a "with" segment found is a true
  positive, a "without" segment found a false positive); title, author and date where annotated.

Both systems see the same HTML: newsflow's :func:`parse_page` and plain
``trafilatura.bare_extraction`` with default settings and metadata. A page newsflow refuses
(not an article, empty ...) scores as empty output, which is what a user would get.

Fair normalisation: titles compared after NFKC, whitespace squashing, invisible characters
dropped and typographic quotes straightened; authors as sets of
NFKC, case-folded, whitespace-squashed names (order ignored); dates as instants (an expected
value without a zone matches an instant whose UTC offset would explain it, i.e. a whole number
of quarter-hours within +-14 h; an expected value at midnight or a bare date compares days).

    python -m tests.peers.parser_corpus --corpus fundus [--system both] [--json out.json]
    python -m tests.peers.parser_corpus --corpus trafilatura --limit 200
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FUNDUS_ENV = "NEWSFLOW_FUNDUS_CORPUS"
TRAFILATURA_ENV = "NEWSFLOW_TRAFILATURA_EVAL"
#: a page the corpus dates without a zone: any real UTC offset explains the difference
MAX_ZONE_OFFSET = timedelta(hours=14)
ZONE_STEP_S = 15 * 60
#: instants closer than this are the same published time (seconds are often dropped)
SAME_INSTANT = timedelta(minutes=1)
_WORD = re.compile(r"\w+")
#: max_date_lag_days for pages without a crawl date: a century, i.e. no first-seen check
UNKNOWN_FIRST_SEEN_LAG_DAYS = 36_500.0


@dataclass(slots=True)
class Case:
    """One page and what the corpus expects of it (None: not annotated)."""

    corpus: str
    name: str
    url: str
    html: str
    crawled_at: datetime | None
    body: str | None = None
    with_segments: list[str] = field(default_factory=list)
    without_segments: list[str] = field(default_factory=list)
    title: str | None = None
    authors: list[str] | None = None
    published: str | None = None


@dataclass(slots=True)
class Output:
    body: str = ""
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published: str | None = None
    error: str | None = None


# --- corpora -------------------------------------------------------------------------------


def _fundus_body(body: dict[str, Any]) -> str:
    parts: list[str] = list(body.get("summary") or [])
    for section in body.get("sections") or []:
        parts.extend(section.get("headline") or [])
        parts.extend(section.get("paragraphs") or [])
    return "\n\n".join(parts)


def _naive_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def load_fundus(root: Path) -> Iterator[Case]:
    """Pages paired with their parser version's expectations (versions and pages both in
    chronological order; a publisher whose counts differ is paired newest-to-newest)."""
    for meta_path in sorted(root.glob("*/meta.info")):
        meta: dict[str, dict[str, str]] = json.loads(meta_path.read_text("utf-8"))
        by_publisher: dict[str, list[str]] = {}
        for file_name in sorted(meta, key=lambda n: meta[n]["crawl_date"]):
            by_publisher.setdefault(file_name.split("_", 1)[0], []).append(file_name)
        for publisher, files in sorted(by_publisher.items()):
            expected_path = meta_path.parent / f"{publisher}.json"
            if not expected_path.exists():
                continue
            versions = json.loads(expected_path.read_text("utf-8"))
            keys = sorted(versions, key=_version_key)
            pairs = list(zip(reversed(files), reversed(keys), strict=False))
            for file_name, key in reversed(pairs):
                path = meta_path.parent / file_name
                if not path.exists():
                    continue
                expected = versions[key]
                html = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
                body = expected.get("body")
                authors = expected.get("authors")
                yield Case(
                    corpus="fundus",
                    name=f"{meta_path.parent.name}/{file_name}",
                    url=meta[file_name]["url"],
                    html=html,
                    crawled_at=_naive_datetime(meta[file_name]["crawl_date"]).replace(tzinfo=UTC),
                    body=_fundus_body(body) if isinstance(body, dict) else None,
                    title=expected.get("title") or None,
                    authors=authors if authors else None,
                    published=expected.get("publishing_date") or None,
                )


def _version_key(key: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", key)) or (0,)


def load_trafilatura_eval(root: Path) -> Iterator[Case]:
    data: dict[str, dict[str, Any]] = json.loads((root / "evaldata.json").read_text("utf-8"))
    for url, item in data.items():
        path = root / "eval" / item["file"]
        if not path.exists():
            continue
        raw = path.read_bytes()
        html = _decode(raw)
        author = item.get("author") or ""
        if isinstance(author, list):
            author = ";".join(str(a) for a in author)
        yield Case(
            corpus="trafilatura",
            name=item["file"],
            url=url,
            html=html,
            crawled_at=None,
            with_segments=list(item.get("with") or []),
            without_segments=list(item.get("without") or []),
            title=item.get("title") or None,
            authors=[a for a in re.split(r";", author) if a.strip()] or None,
            published=item.get("date") or None,
        )


def _decode(raw: bytes) -> str:
    # the eval pages are stored as served: mostly UTF-8, some in a declared legacy charset
    head = raw[:4096].decode("ascii", "replace").lower()
    match = re.search(r"charset=[\"']?([a-z0-9_-]+)", head)
    for encoding in ("utf-8", match[1] if match else None, "cp1252"):
        if not encoding:
            continue
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("utf-8", "replace")


# --- systems -------------------------------------------------------------------------------


def run_newsflow(case: Case) -> Output:
    from services.parser.pipeline import parse_page
    from shared.errors import PermanentError
    from shared.messages import Page
    from shared.settings import Settings

    # without a crawl date (trafilatura's set) nobody knows when the URL was first seen, so the
    # first-seen lag check on weak dates (which needs that instant) is off for those pages
    seen = case.crawled_at or datetime(2026, 1, 1, tzinfo=UTC)
    lag_days = 365.0 if case.crawled_at else UNKNOWN_FIRST_SEEN_LAG_DAYS
    page = Page(
        url=case.url,
        final_url=case.url,
        host=urlsplit(case.url).hostname or "",
        status_code=200,
        content_type="text/html",
        charset="utf-8",
        html=case.html,
        discovered_at=seen,
        fetched_at=seen,
    )
    try:
        article = parse_page(
            page,
            settings=Settings(database_url=None, kafka_bootstrap=None, max_date_lag_days=lag_days),
            now=seen + timedelta(days=1),
        )
    except PermanentError as exc:
        return Output(error=exc.kind)
    return Output(
        body=article.body_text,
        title=article.title,
        authors=list(article.authors),
        published=article.published_at.isoformat() if article.published_at else None,
    )


def run_trafilatura(case: Case) -> Output:
    import trafilatura

    try:
        document = trafilatura.bare_extraction(case.html, url=case.url, with_metadata=True)
    except Exception as exc:  # a peer failing on a page scores as empty output
        return Output(error=type(exc).__name__)
    if document is None:
        return Output(error="none")
    author = getattr(document, "author", None) or ""
    return Output(
        body=getattr(document, "text", None) or "",
        title=getattr(document, "title", None),
        authors=[a.strip() for a in author.split(";") if a.strip()],
        published=getattr(document, "date", None),
    )


SYSTEMS: dict[str, Callable[[Case], Output]] = {
    "newsflow": run_newsflow,
    "trafilatura": run_trafilatura,
}


# --- scoring -------------------------------------------------------------------------------


def words(text: str) -> Counter[str]:
    """Word multiset; combining marks dropped first, so a Devanagari or Arabic word with vowel
    signs stays one word (\\w does not match the marks)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("M"))
    return Counter(_WORD.findall(text))


def body_scores(expected: str, got: str) -> tuple[float, float, float]:
    """Word-level (multiset) precision, recall, F1."""
    gold, pred = words(expected), words(got)
    overlap = sum((gold & pred).values())
    precision = overlap / sum(pred.values()) if pred else 0.0
    recall = overlap / sum(gold.values()) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


#: invisible characters (soft hyphen, zero-width space, word joiner, BOM) are not text
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).translate(_INVISIBLE).split())


def segment_counts(case: Case, got: str) -> tuple[int, int, int, int]:
    """trafilatura's evaluation: (tp, fn, fp, tn) over the annotated segments."""
    text = _squash(got)
    tp = sum(1 for s in case.with_segments if _squash(s) in text)
    fp = sum(1 for s in case.without_segments if _squash(s) in text)
    return tp, len(case.with_segments) - tp, fp, len(case.without_segments) - fp


#: typographic quotes compare equal to straight ones (corpora mix them within one title)
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "„": '"'})


def title_match(expected: str, got: str | None) -> bool:
    return got is not None and _squash(expected).translate(_QUOTES) == _squash(got).translate(
        _QUOTES
    )


def _author_key(name: str) -> str:
    return _squash(name).casefold()


def authors_match(expected: list[str], got: list[str]) -> bool:
    return {_author_key(a) for a in expected} == {_author_key(a) for a in got}


def _parse_when(value: str) -> datetime | date | None:
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def date_match(expected: str, got: str | None) -> bool:
    """Same instant; see the module docstring for values without a zone or a time."""
    if not got:
        return False
    want, have = _parse_when(expected), _parse_when(got)
    if want is None or have is None:
        return False
    if isinstance(have, date) and not isinstance(have, datetime):
        have_day = have
        if isinstance(want, datetime):
            return want.date() == have_day
        return want == have_day
    assert isinstance(have, datetime)
    if have.tzinfo is None:
        have = have.replace(tzinfo=UTC)
    if not isinstance(want, datetime):
        # a bare expected day: the instant falls on that day in some real zone
        return any((have + timedelta(hours=h)).date() == want for h in range(-14, 15))
    if want.tzinfo is not None:
        return abs(want - have) <= SAME_INSTANT
    if want.time() == datetime.min.time():
        return any((have + timedelta(hours=h)).date() == want.date() for h in range(-14, 15))
    delta = (want.replace(tzinfo=UTC) - have).total_seconds()
    if abs(delta) > MAX_ZONE_OFFSET.total_seconds():
        return False
    return abs(delta - round(delta / ZONE_STEP_S) * ZONE_STEP_S) <= SAME_INSTANT.total_seconds()


@dataclass(slots=True)
class PageResult:
    name: str
    system: str
    error: str | None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    segments: tuple[int, int, int, int] | None = None
    title: bool | None = None
    authors: bool | None = None
    date: bool | None = None
    got_title: str | None = None
    got_authors: list[str] | None = None
    got_date: str | None = None
    want_title: str | None = None
    want_authors: list[str] | None = None
    want_date: str | None = None


def score(case: Case, system: str, out: Output) -> PageResult:
    result = PageResult(name=case.name, system=system, error=out.error)
    if case.body is not None:
        result.precision, result.recall, result.f1 = body_scores(case.body, out.body)
    if case.with_segments or case.without_segments:
        result.segments = segment_counts(case, out.body)
    if case.title:
        result.title = title_match(case.title, out.title)
    if case.authors:
        result.authors = authors_match(case.authors, out.authors)
    if case.published:
        result.date = date_match(case.published, out.published)
    result.got_title, result.got_authors, result.got_date = out.title, out.authors, out.published
    result.want_title, result.want_authors, result.want_date = (
        case.title,
        case.authors,
        case.published,
    )
    return result


def summarise(results: list[PageResult]) -> dict[str, Any]:
    def rate(values: list[bool | None]) -> dict[str, float | int]:
        known = [v for v in values if v is not None]
        return {"rate": round(sum(known) / len(known), 4) if known else 0.0, "n": len(known)}

    summary: dict[str, Any] = {"pages": len(results)}
    f1s = [r.f1 for r in results if r.f1 is not None]
    if f1s:
        summary["body"] = {
            "precision": round(
                sum(r.precision or 0 for r in results if r.f1 is not None) / len(f1s), 4
            ),
            "recall": round(sum(r.recall or 0 for r in results if r.f1 is not None) / len(f1s), 4),
            "f1": round(sum(f1s) / len(f1s), 4),
            "n": len(f1s),
        }
    segments = [r.segments for r in results if r.segments is not None]
    if segments:
        tp, fn, fp, tn = (sum(s[i] for s in segments) for i in range(4))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        summary["segments"] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(2 * precision * recall / (precision + recall), 4)
            if precision + recall
            else 0.0,
            "accuracy": round((tp + tn) / (tp + tn + fp + fn), 4),
            "n": len(segments),
        }
    summary["title"] = rate([r.title for r in results])
    summary["authors"] = rate([r.authors for r in results])
    summary["date"] = rate([r.date for r in results])
    summary["refused"] = dict(Counter(r.error for r in results if r.error))
    return summary


def load(corpus: str) -> list[Case]:
    if corpus == "fundus":
        root = os.environ.get(FUNDUS_ENV)
        return list(load_fundus(Path(root))) if root else []
    root = os.environ.get(TRAFILATURA_ENV)
    return list(load_trafilatura_eval(Path(root))) if root else []


def evaluate(
    cases: list[Case], systems: list[str]
) -> tuple[dict[str, dict[str, Any]], list[PageResult]]:
    results: list[PageResult] = []
    summaries: dict[str, dict[str, Any]] = {}
    for system in systems:
        run = SYSTEMS[system]
        started = time.perf_counter()
        mine = [score(case, system, run(case)) for case in cases]
        summaries[system] = summarise(mine)
        summaries[system]["seconds"] = round(time.perf_counter() - started, 1)
        results.extend(mine)
    return summaries, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=("fundus", "trafilatura"), default="fundus")
    parser.add_argument("--system", choices=("both", *SYSTEMS), default="both")
    parser.add_argument("--limit", type=int, default=0, help="first N pages only")
    parser.add_argument("--only", default="", help="pages whose name contains this")
    parser.add_argument("--json", type=Path, help="write per-page results here")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)  # trafilatura/htmldate chatter on odd pages
    cases = [c for c in load(args.corpus) if args.only in c.name]
    if args.limit:
        cases = cases[: args.limit]
    if not cases:
        print(f"no pages: set {FUNDUS_ENV} / {TRAFILATURA_ENV}", file=sys.stderr)
        return 2
    systems = list(SYSTEMS) if args.system == "both" else [args.system]
    summaries, results = evaluate(cases, systems)
    print(json.dumps({"corpus": args.corpus, **summaries}, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(
            json.dumps([asdict(r) for r in results], indent=1, ensure_ascii=False), "utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
