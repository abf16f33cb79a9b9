"""Build configuration: one pydantic model, set from CLI flags, recorded in the manifest."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.errors import ConfigError

Encoder = Literal["st", "onnx", "onnx-int8", "st-bf16"]  # the encoder a build used (recorded in its manifest)
EncoderChoice = Literal["auto", Encoder]  # one flat Literal: a bad value is one error naming all five


class DenseSettings(BaseModel):
    """How passages are embedded and indexed for the dense leg."""

    model_config = ConfigDict(extra="forbid")  # a misspelt `enable=False` would run a whole dense build

    enabled: bool = True
    model: str | None = None  # a sentence-transformers model directory; None = bundled all-MiniLM-L6-v2
    languages: list[str] | None = None  # languages the model covers ("*" = all); None = from the model card
    query_prefix: str = ""  # e.g. "query: " for e5 models
    passage_prefix: str = ""  # e.g. "passage: "
    normalize: bool = True
    max_length: int | None = Field(None, ge=1)  # None = the model's own max_seq_length
    batch_size: int = Field(64, ge=1)
    device: str | None = None  # None = cuda when available, else cpu
    # st: sentence-transformers (torch); onnx / onnx-int8: ONNX Runtime fp32 / int8 (CPU), exported
    # from the same weights; auto: onnx on the CPU (same vectors as torch to 1e-6, about twice as
    # fast), st on a GPU. The manifest records the one used: queries use the encoder the passages used,
    # except st-bf16 (torch in bfloat16, for passages on CPUs with AMX or on a GPU): its queries use
    # auto, the fp32 model its vectors stay within cosine ~1e-4 of.
    encoder: EncoderChoice = "auto"
    ann: Literal["auto", "exact", "flat", "hnsw", "hnsw-sq8", "ivf-pq"] = "auto"  # flat = exact
    exact_max: int = Field(200_000, ge=1)  # auto: exact inner product up to this many passages, HNSW above
    ivf_min: int = Field(2_000_000, ge=1)  # auto: IVF-PQ from this many passages on
    ivf_nlist: int | None = Field(None, ge=1, le=10_000_000)  # None: about 4 * sqrt(passages)
    ivf_nprobe: int | None = Field(None, ge=1, le=10_000_000)  # None: a fifth of the lists, at least 32 (docs/OPERATIONS.md)
    pq_m: int | None = Field(None, ge=1)  # bytes per vector of the PQ code (divides the dimension); None: 48 or the divisor nearest it
    refine: int = Field(4, ge=0, le=100)  # IVF-PQ: re-score k x refine candidates with the exact vectors (memory-mapped); 0 = off
    # Upper bounds where FAISS fails (a C++ exception, an overflow) or every search would allocate gigabytes.
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_construction: int = Field(80, ge=8, le=100_000)
    hnsw_ef_search: int = Field(128, ge=1, le=100_000)
    shard_size: int = Field(8192, ge=64, le=1_000_000)  # passages per embedding shard (resume granularity)

    @field_validator("device")
    @classmethod
    def _a_torch_device(cls, device: str | None) -> str | None:
        """cpu, cuda or cuda:N: another value failed inside the model's loading, reported as a bad model."""
        if device is not None and not re.fullmatch(r"cpu|cuda(?::[0-9]+)?", device):
            raise ValueError(f"must be cpu, cuda or cuda:N, got {device!r}")
        return device

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, codes: list[str] | None) -> list[str] | None:
        """A code that is not one fails with the settings, where the CLI can name its flag."""
        from indexer.language import dense_languages

        try:
            if codes:
                dense_languages(codes, None)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return codes


class BuildSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = "embedded"  # a `backends.registry.BUILDS` name: which backend writes each leg
    chunk_words: int = Field(200, ge=0)  # 0 = each document is one passage
    overlap_words: int = Field(0, ge=0)
    threads: int = Field(2, ge=1)
    bm25_k1: float = Field(0.9, gt=0, allow_inf_nan=False)
    bm25_b: float = Field(0.4, ge=0, le=1, allow_inf_nan=False)
    skip_bad: bool = False
    quiet: bool = False
    dense: DenseSettings = DenseSettings()
