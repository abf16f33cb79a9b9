"""One query encoder per process for the same model and settings: builds opened side by side (a
server's reload) share it, and it goes with the last user."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np

from backends.faiss import encoder as encoders
from ranker.pipeline import SearchOptions, SearchPipeline


def test_builds_of_one_model_share_its_query_encoder(tiny_root: Path) -> None:
    first, second = SearchPipeline.open(tiny_root), SearchPipeline.open(tiny_root)
    try:
        vectors = first.encode(["volcanic eruptions", "jazz"])
        assert second.dense._ensure_model() is first.dense._ensure_model()
        assert np.array_equal(second.encode(["volcanic eruptions", "jazz"]), vectors)
        first.close()
        assert second.batch_search(["jazz"], SearchOptions(k=1, mode="dense"))[0]  # the open build keeps it
    finally:
        first.close()
        second.close()


def test_an_encoder_goes_with_its_last_user_and_other_settings_get_their_own(tiny_root: Path) -> None:
    with SearchPipeline.open(tiny_root) as pipeline:
        settings = pipeline.dense._settings
        ours = pipeline.dense._ensure_model()
    shorter = settings.model_copy(update={"max_length": 17})  # settings no other test uses
    model = encoders.load_query_encoder(shorter)
    assert model is not ours and encoders.load_query_encoder(shorter) is model
    assert model.max_seq_length == 17
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
    assert not any('"max_length":17' in key[0] for key in encoders._query_encoders.keys())
