"""Duplicate detection: exact (content hash) and near-duplicate (MinHash + LSH in PostgreSQL).

State lives in ``article_fingerprints`` (one row per canonical URL: hash, signature,
first-seen time) and ``minhash_bands`` (LSH buckets of *original* articles only), so it
survives restarts and is shared by every parser worker.

Ordering is what makes decisions stable. ``first_seen_at`` is taken from the database clock
inside a transaction that holds a transaction-scoped advisory lock, so all workers' batches are
serialised and numbered in one order. An article is only ever a duplicate of something seen
*before* it; therefore a redelivered article resolves exactly as it did the first time (an
original stays original, never "a duplicate of itself"; a copy stays a copy of the same
original). The lock is held for a few queries per batch, which is cheap next to parsing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.parser.clean import normalise_key
from shared.db.errors import db_error_kind
from shared.db.models import ArticleFingerprint, MinhashBand
from shared.errors import PermanentError
from shared.messages import Article, DeadLetter, Page
from shared.retry import isolate_batch
from shared.stage import Decoded, StageInput, record_failed

logger = logging.getLogger(__name__)

NUM_PERM = 128
MINHASH_SEED = 1
#: datasketch 2.x hashing scheme; fixed so signatures stay comparable across upgrades
MINHASH_SCHEME = "affine32"
SHINGLE_WORDS = 3
MAX_SIGNATURE_WORDS = 10_000
#: LSH: 16 bands of 8 rows. A pair is a candidate with probability 1-(1-s^8)^16: 0.5 at s~0.7,
#: 0.96 at s=0.8, so the 0.8 default threshold loses few true pairs; candidates are then
#: verified against the full signature.
LSH_BANDS = 16
LSH_ROWS = NUM_PERM // LSH_BANDS
#: texts shorter than this are matched exactly only (a few shingles give noisy estimates)
MIN_NEAR_DUPLICATE_WORDS = 30
DEFAULT_THRESHOLD = 0.8
#: any constant bigint unique to this lock; "newsflow parser dedup" in ASCII, truncated
ADVISORY_LOCK_KEY = int.from_bytes(b"nf-dedup", "big") & 0x7FFF_FFFF_FFFF_FFFF
_STEP = timedelta(microseconds=1)

# Arrays through unnest(): one statement text whatever the batch size, so asyncpg prepares it
# once; a multi-row VALUES list with thousands of parameters was ~100 ms per batch to compile.
_FIND_BANDS = text(
    "SELECT DISTINCT b.canonical_url FROM minhash_bands AS b"
    " JOIN unnest(CAST(:bands AS smallint[]), CAST(:hashes AS bigint[])) AS q(band, hash)"
    " ON b.band = q.band AND b.hash = q.hash"
)
_INSERT_BANDS = text(
    "INSERT INTO minhash_bands (band, hash, canonical_url)"
    " SELECT * FROM unnest(CAST(:bands AS smallint[]), CAST(:hashes AS bigint[]),"
    " CAST(:urls AS text[])) ON CONFLICT DO NOTHING"
)
_UPSERT_FINGERPRINTS = text(
    "INSERT INTO article_fingerprints (canonical_url, content_hash, minhash, first_seen_at)"
    " SELECT * FROM unnest(CAST(:urls AS text[]), CAST(:hashes AS varchar[]),"
    " CAST(:minhashes AS bytea[]), CAST(:seen AS timestamptz[]))"
    " ON CONFLICT (canonical_url) DO UPDATE"
    " SET content_hash = excluded.content_hash, minhash = excluded.minhash"
    # an update of the article keeps its first-seen time (and so its place in the order)
    " WHERE article_fingerprints.content_hash IS DISTINCT FROM excluded.content_hash"
)


# --- pure: hash and signature ------------------------------------------------------------------


def content_hash(text: str) -> str:
    """sha256 hex of the normalised text (case, punctuation and whitespace do not count)."""
    return hashlib.sha256(normalise_key(text).encode("utf-8")).hexdigest()


def fingerprint(text: str) -> tuple[str, list[int]]:
    """``(content_hash(text), minhash_signature(text))``, normalising the text once."""
    key = normalise_key(text)
    return hashlib.sha256(key.encode("utf-8")).hexdigest(), _signature(key.split())


def _shingle_hash(data: bytes) -> int:
    # CRC-32 only has to tell shingles apart; the affine permutations do the mixing. It is
    # C-fast, unlike datasketch's default sha1 (which dominated the signature's cost).
    return zlib.crc32(data)


@functools.cache
def _permutations() -> np.ndarray:
    # datasketch draws the permutations from the seed on every MinHash(); drawing them once
    # makes a signature ~5x cheaper and keeps every worker's signatures comparable.
    from datasketch import MinHash

    return np.asarray(
        MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme=MINHASH_SCHEME).permutations
    )


def minhash_signature(text: str) -> list[int]:
    """MinHash (128 uint32) over word 3-shingles of the normalised text; [] for no words."""
    return _signature(normalise_key(text).split())


def _signature(words: list[str]) -> list[int]:
    from datasketch import MinHash

    # bounded cost on pathological texts; an article's first 10k words identify it
    words = words[:MAX_SIGNATURE_WORDS]
    if not words:
        return []
    shingles = {
        " ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8")
        for i in range(max(1, len(words) - SHINGLE_WORDS + 1))
    }
    signature = MinHash(
        num_perm=NUM_PERM,
        seed=MINHASH_SEED,
        permutations=_permutations(),
        scheme=MINHASH_SCHEME,
        hashfunc=_shingle_hash,
    )
    signature.update_batch(sorted(shingles))
    return [int(v) for v in signature.hashvalues]


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Jaccard estimate of two signatures (share of equal slots)."""
    if not a or len(a) != len(b):
        return 0.0
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


def lsh_bands(signature: Sequence[int]) -> list[tuple[int, int]]:
    """(band, bucket) pairs; the bucket is a signed 64-bit hash of the band's rows."""
    if len(signature) != NUM_PERM:
        return []
    bands = []
    for band in range(LSH_BANDS):
        rows = signature[band * LSH_ROWS : (band + 1) * LSH_ROWS]
        digest = hashlib.blake2b(struct.pack(f"<{LSH_ROWS}I", *rows), digest_size=8).digest()
        bands.append((band, int.from_bytes(digest, "little", signed=True)))
    return bands


def _pack(signature: Sequence[int]) -> bytes | None:
    return np.asarray(signature, dtype="<u4").tobytes() if signature else None


def _unpack(blob: bytes | None) -> list[int]:
    return [int(v) for v in np.frombuffer(blob, dtype="<u4")] if blob else []


# --- the index ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Known:
    canonical_url: str
    content_hash: str
    signature: list[int]
    first_seen_at: datetime


class DedupIndex:
    """Resolves batches of parsed articles against every article seen before (PostgreSQL)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self._sessions = session_factory
        self.threshold = threshold

    async def resolve(self, articles: list[Article]) -> list[Article]:
        """Return copies with ``status``/``duplicate_of``/``similarity`` set; record fingerprints.

        Same content hash as an earlier article -> ``status="duplicate"``, ``similarity=1.0``.
        MinHash similarity >= threshold to an earlier original -> ``"near_duplicate"``.
        Otherwise the article keeps its status. Idempotent: a redelivered article gets the
        same answer and writes nothing new. Database errors propagate (the caller retries).
        """
        if not articles:
            return []
        async with self._sessions() as session, session.begin():
            await session.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
            base = (await session.execute(select(func.clock_timestamp()))).scalar_one()
            known, indexed = await self._load(session, articles)
            resolved, rows, bands, changed = self._decide(articles, known, indexed, base)
            if changed:
                await session.execute(
                    delete(MinhashBand).where(MinhashBand.canonical_url.in_(sorted(changed)))
                )
            if rows:
                values = list(rows.values())
                await session.execute(
                    _UPSERT_FINGERPRINTS,
                    {
                        "urls": [r["canonical_url"] for r in values],
                        "hashes": [r["content_hash"] for r in values],
                        "minhashes": [r["minhash"] for r in values],
                        "seen": [r["first_seen_at"] for r in values],
                    },
                )
            if bands:
                ordered = sorted(bands)
                await session.execute(
                    _INSERT_BANDS,
                    {
                        "bands": [b for b, _, _ in ordered],
                        "hashes": [h for _, h, _ in ordered],
                        "urls": [u for _, _, u in ordered],
                    },
                )
        return resolved

    async def _load(
        self, session: AsyncSession, articles: list[Article]
    ) -> tuple[dict[str, _Known], set[str]]:
        """Fingerprints of this batch's URLs, hashes and LSH candidates; and which are indexed."""
        urls = {a.canonical_url for a in articles}
        hashes = {a.content_hash for a in articles}
        pairs = {pair for a in articles for pair in lsh_bands(a.minhash)}
        indexed: set[str] = set()
        if pairs:
            ordered = sorted(pairs)
            result = await session.execute(
                _FIND_BANDS,
                {"bands": [b for b, _ in ordered], "hashes": [h for _, h in ordered]},
            )
            indexed.update(result.scalars())
        fp = ArticleFingerprint
        result = await session.execute(
            select(fp.canonical_url, fp.content_hash, fp.minhash, fp.first_seen_at).where(
                fp.canonical_url.in_(sorted(urls | indexed)) | fp.content_hash.in_(sorted(hashes))
            )
        )
        known = {
            row.canonical_url: _Known(
                row.canonical_url, row.content_hash, _unpack(row.minhash), row.first_seen_at
            )
            for row in result
        }
        return known, indexed

    def _decide(
        self, articles: list[Article], known: dict[str, _Known], indexed: set[str], base: datetime
    ) -> tuple[list[Article], dict[str, dict[str, object]], set[tuple[int, int, str]], set[str]]:
        # originals with LSH bands (from the DB, plus this batch's as they are decided)
        band_index: dict[tuple[int, int], set[str]] = {}
        for url in indexed & known.keys():
            for pair in lsh_bands(known[url].signature):
                band_index.setdefault(pair, set()).add(url)
        resolved: list[Article] = []
        rows: dict[str, dict[str, object]] = {}
        bands: set[tuple[int, int, str]] = set()
        changed: set[str] = set()
        for position, article in enumerate(articles):
            url = article.canonical_url
            previous = known.get(url)
            seen_at = previous.first_seen_at if previous else base + position * _STEP
            if previous is not None and previous.content_hash != article.content_hash:
                changed.add(url)  # an updated article: new hash and bands, same first-seen
            me = _Known(url, article.content_hash, list(article.minhash), seen_at)
            known[url] = me
            update: dict[str, object] = {}
            earlier = sorted(
                (k.first_seen_at, k.canonical_url)
                for k in known.values()
                if k.content_hash == me.content_hash
                and (k.first_seen_at, k.canonical_url) < (seen_at, url)
            )
            if earlier:
                update = {"status": "duplicate", "duplicate_of": earlier[0][1], "similarity": 1.0}
            elif article.word_count >= MIN_NEAR_DUPLICATE_WORDS and len(me.signature) == NUM_PERM:
                my_bands = lsh_bands(me.signature)
                best_url, best = None, 0.0
                for candidate in sorted({u for pair in my_bands for u in band_index.get(pair, ())}):
                    other = known.get(candidate)
                    if (
                        other is None
                        or candidate == url
                        or (other.first_seen_at, candidate) >= (seen_at, url)
                    ):
                        continue
                    score = similarity(me.signature, other.signature)
                    if score > best:
                        best_url, best = candidate, score
                if best_url is not None and best >= self.threshold:
                    update = {
                        "status": "near_duplicate",
                        "duplicate_of": best_url,
                        "similarity": round(best, 4),
                    }
                else:
                    for pair in my_bands:
                        band_index.setdefault(pair, set()).add(url)
                        bands.add((pair[0], pair[1], url))
            if previous is None or url in changed:
                rows[url] = {
                    "canonical_url": url,
                    "content_hash": article.content_hash,
                    "minhash": _pack(article.minhash),
                    "first_seen_at": seen_at,
                }
            if update:
                logger.debug("dedup %s -> %s of %s", url, update["status"], update["duplicate_of"])
            resolved.append(article.model_copy(update=update) if update else article)
        return resolved, rows, bands, changed


async def resolve_isolated(
    dedup: DedupIndex,
    parsed: list[Article],
    decoded: list[Decoded[Page]],
    source: StageInput,
) -> tuple[list[Article], list[DeadLetter]]:
    """Dedup a batch; an article whose fingerprint the database refuses (a canonical URL too
    long to index, say) is dead-lettered alone, with its page as the payload."""
    batches, refused = await isolate_batch(parsed, dedup.resolve, what="parser dedup")
    pages = {record.item.url: record for record in decoded}
    letters = []
    for article, exc in refused:
        record = pages.get(article.url)
        error = PermanentError(f"{type(exc).__name__}: {exc}", kind=db_error_kind(exc))
        letters.append(
            record_failed(
                source,
                error,
                payload=record.raw if record else None,
                item=record.item if record else article,
                attempt=record.attempt if record else 1,
            )
        )
    return [article for batch in batches for article in batch], letters
