"""One query encoder per process for the same model and settings: builds opened side by side (a
server's reload) share it, and it goes with the last build that uses it."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from backends.faiss import encoder as encoders
from ranker.pipeline import SearchOptions, SearchPipeline


def test_builds_of_one_model_share_its_query_encoder_until_the_last_is_closed(tiny_root: Path) -> None:
    before = len(encoders._query_encoders)
    first, second = SearchPipeline.open(tiny_root), SearchPipeline.open(tiny_root)
    try:
        vectors = first.encode(["volcanic eruptions", "jazz"])
        assert second.dense._ensure_model() is first.dense._ensure_model()
        assert np.array_equal(second.encode(["volcanic eruptions", "jazz"]), vectors)
        assert len(encoders._query_encoders) == before + 1
        first.close()
        gc.collect()
        assert len(encoders._query_encoders) == before + 1  # the open build still uses it
        assert second.batch_search(["jazz"], SearchOptions(k=1, mode="dense"))[0]
    finally:
        first.close()
        second.close()
    gc.collect()
    assert len(encoders._query_encoders) == before


def test_other_settings_get_their_own_encoder(tiny_root: Path) -> None:
    with SearchPipeline.open(tiny_root) as pipeline:
        settings = pipeline.dense._settings
        shorter = settings.model_copy(update={"max_length": 16})
        assert encoders.load_query_encoder(shorter) is not pipeline.dense._ensure_model()
        assert encoders.load_query_encoder(settings) is pipeline.dense._ensure_model()
