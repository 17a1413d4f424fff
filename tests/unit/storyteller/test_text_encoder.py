"""The storyteller's text encoder is a setting: NEWSFLOW_STORY_TEXT_ENCODER=e5|ngram.

The setting names an encoder of :data:`services.storyteller.text.ENCODERS`; anything else is a
ConfigError that names the variable. Stored vectors of another dimension than the configured
encoder's stop the stage at start (:func:`services.storyteller.service.check_encoder`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, get_args

import numpy as np
import pytest

from services.storyteller.service import check_encoder
from services.storyteller.text import (
    ENCODERS,
    CharNgramEncoder,
    E5Encoder,
    article_text,
    make_encoder,
)
from shared.errors import ConfigError
from shared.settings import Settings, load_settings

VARIABLE = "NEWSFLOW_STORY_TEXT_ENCODER"


def test_default_is_e5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    assert Settings(_env_file=None).story_text_encoder == "e5"


def test_the_setting_selects_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "ngram")
    encoder = make_encoder(load_settings(_env_file=None).story_text_encoder)
    assert isinstance(encoder, CharNgramEncoder)
    assert (encoder.name, encoder.dim, encoder.floor) == ("ngram", 4096, 0.0)
    monkeypatch.setenv(VARIABLE, "e5")
    encoder = make_encoder(load_settings(_env_file=None).story_text_encoder)
    assert isinstance(encoder, E5Encoder)
    assert (encoder.name, encoder.dim) == ("e5", 384)


def test_an_unknown_encoder_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VARIABLE, "tfidf")
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert VARIABLE in str(err.value) and "'tfidf'" in str(err.value)
    assert "e5" in str(err.value) and "ngram" in str(err.value)
    with pytest.raises(
        ConfigError, match=re.escape("NEWSFLOW_STORY_TEXT_ENCODER is one of e5 | ngram")
    ):
        make_encoder("tfidf")


def test_the_setting_and_the_encoders_name_the_same_choices() -> None:
    annotation = Settings.model_fields["story_text_encoder"].annotation
    assert get_args(annotation) == tuple(ENCODERS)


def test_production_ngrams_have_uniform_weights_and_are_stable() -> None:
    """No idf in the stage; the hash is stable across instances (vectors are stored)."""
    text = article_text("PKK attack kills 3 soldiers in Van", "Three soldiers were killed.")
    one, two = CharNgramEncoder().encode([text]), CharNgramEncoder().encode([text])
    assert np.array_equal(one, two)
    assert CharNgramEncoder()._idf == {}
    # uniform weights: a row holds only sublinear tf values (before normalising)
    row = one[0][one[0] > 0]
    allowed = np.array([1 + np.log(c) for c in range(1, 10)])
    for ratio in row / row.min():
        assert np.isclose(allowed, ratio, atol=1e-3).any(), ratio


class _Session:
    def __init__(self, blob: bytes | None) -> None:
        self.blob = blob

    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def scalar(self, _query: Any) -> bytes | None:
        return self.blob


def _sessions(blob: bytes | None) -> Any:
    return lambda: _Session(blob)


def test_stored_vectors_of_another_encoder_stop_the_stage() -> None:
    ngram = CharNgramEncoder()
    e5_header = (384).to_bytes(4, "little")
    with pytest.raises(ConfigError, match=r"384-dimension.*STORY_TEXT_ENCODER=ngram makes 4096"):
        asyncio.run(check_encoder(_sessions(e5_header), ngram))
    asyncio.run(check_encoder(_sessions((4096).to_bytes(4, "little")), ngram))
    asyncio.run(check_encoder(_sessions(None), ngram))  # nothing stored yet
