"""The FAISS leg's manifest section (written by `FaissWriter`, read by `FaissSearcher`).

`EncoderSection` is the part any vector backend records about its encoder (`encoder_info`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from backends.base import Section
from indexer.settings import DenseSettings, Encoder

INDEX_FILE = "index.faiss"
IDS_FILE = "passage_ids.json"
VECTORS_FILE = "vectors.npy"


class EncoderSection(Section):
    """How passages were embedded; queries must be encoded the same way."""

    model: str
    bundled: bool
    model_name: str
    dimension: int = Field(ge=1)
    normalize: bool = True
    max_length: int | None = None
    query_prefix: str = ""
    passage_prefix: str = ""
    device: str | None = None  # the build's device (for humans; search picks its own)
    encoder: Encoder = "st"  # builds before the choice existed used torch
    model_key: str  # embedding-cache key of everything that changes a vector
    model_digest: str | None = None  # sha256 of the model's files (backends.faiss.model_files); None: builds before it
    languages: list[str] = ["*"]  # languages the model covers ("*": any; builds before they were recorded)
    count: int = Field(ge=0)
    encoded: int = Field(ge=0)
    reused: int = Field(ge=0)

    def encoder_settings(self, device: str | None = None) -> DenseSettings:
        """The settings that load this build's encoder for queries. A bfloat16 build's queries are
        encoded in fp32 (`auto`): one query gains nothing from bfloat16 (torch's per-call cost), and
        the pair ranks as the fp32 build does (`backends.faiss.bf16`)."""
        return DenseSettings(
            model=None if self.bundled else self.model, query_prefix=self.query_prefix,
            passage_prefix=self.passage_prefix, normalize=self.normalize, max_length=self.max_length, device=device,
            encoder="auto" if self.encoder == "st-bf16" else self.encoder,
        )  # fmt: skip


class HnswParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    m: int
    ef_construction: int
    ef_search: int


class IvfParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nlist: int
    nprobe: int
    pq_m: int
    nbits: int
    refine: int  # k x refine candidates re-scored with the exact vectors (0 = off)


class FaissFiles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: str = INDEX_FILE
    passage_ids: str = IDS_FILE
    vectors: str | None = None  # exact float32 vectors (.npy, memory-mapped) for IVF-PQ re-scoring


class FaissSection(EncoderSection):
    backend: Literal["faiss"] = "faiss"
    summary_fields: ClassVar[tuple[str, ...]] = ("model", "dimension", "ann", "languages")
    ann: Literal["exact", "hnsw", "hnsw-sq8", "ivf-pq"]
    hnsw: HnswParams | None = None
    ivf: IvfParams | None = None
    files: FaissFiles = FaissFiles()
