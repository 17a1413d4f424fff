from __future__ import annotations

from services.parser.dedup import (
    LSH_BANDS,
    NUM_PERM,
    content_hash,
    fingerprint,
    lsh_bands,
    minhash_signature,
    similarity,
)

TEXT = (
    "Turkish warplanes hit dozens of suspected PKK targets in the Qandil and Gara regions of "
    "northern Iraq overnight, the defence ministry in Ankara said on Tuesday, a day after an "
    "attack killed two soldiers near the border. The ministry said 32 targets were destroyed."
)


def test_content_hash_ignores_case_punctuation_and_spacing() -> None:
    assert content_hash(TEXT) == content_hash("  " + TEXT.upper().replace(",", "") + "\n")
    assert content_hash(TEXT) != content_hash(TEXT.replace("32", "33"))
    assert len(content_hash(TEXT)) == 64


def test_signature_is_deterministic_uint32() -> None:
    signature = minhash_signature(TEXT)
    assert signature == minhash_signature(TEXT)
    assert len(signature) == NUM_PERM
    assert all(0 <= v < 2**32 for v in signature)
    assert minhash_signature("") == []


def test_similarity_tracks_edits() -> None:
    light = TEXT.replace("on Tuesday", "on Wednesday")
    other = (
        "Iraqi counter-terrorism forces arrested five suspected Islamic State members in Kirkuk."
    )
    assert similarity(minhash_signature(TEXT), minhash_signature(TEXT)) == 1.0
    assert 0.7 < similarity(minhash_signature(TEXT), minhash_signature(light)) < 1.0
    assert similarity(minhash_signature(TEXT), minhash_signature(other)) < 0.1
    assert similarity([], []) == 0.0


def test_lsh_bands_are_stable_signed_64_bit() -> None:
    bands = lsh_bands(minhash_signature(TEXT))
    assert [b for b, _ in bands] == list(range(LSH_BANDS))
    assert all(-(2**63) <= h < 2**63 for _, h in bands)
    assert bands == lsh_bands(minhash_signature(TEXT))
    assert lsh_bands([1, 2, 3]) == []


def test_fingerprint_is_hash_and_signature_in_one_pass() -> None:
    assert fingerprint(TEXT) == (content_hash(TEXT), minhash_signature(TEXT))
