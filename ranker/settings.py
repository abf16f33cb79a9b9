"""Search-time configuration: one pydantic-settings model (env DRSEARCH_*), overridable per request."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["bm25", "dense", "hybrid"]
Fusion = Literal["rrf", "convex", "rescore"]


class SearchSettings(BaseSettings):
    # Variables DRSEARCH_* that name no field are other settings' (the server's, the data folder's).
    model_config = SettingsConfigDict(env_prefix="DRSEARCH_", extra="ignore", allow_inf_nan=False)

    def __init__(self, **values: Any) -> None:
        """As the model's, but a field given in code that it lacks is an error (a misspelt `fusoin="rrf"`
        was dropped, and the search ran with the default)."""
        unknown = [name for name in values if name not in type(self).model_fields and not name.startswith("_")]
        if unknown:
            raise ValidationError.from_exception_data(type(self).__name__, [
                {"type": "extra_forbidden", "loc": (name,), "input": values[name]} for name in unknown
            ])  # fmt: skip
        super().__init__(**values)

    @field_validator("authority_list")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        """An empty DRSEARCH_AUTHORITY_LIST is unset, as `authority check` and `index build` read it (it named
        the current folder, so search and serve ranked with whatever CSV files were there)."""
        return value if value and value.strip() else None

    mode: Mode = "hybrid"  # falls back to bm25 for an index built without the dense leg
    k0: int = Field(100, ge=1, le=10_000)  # candidates per leg before fusion
    max_candidates: int = Field(10_000, ge=1)  # per query: filtered lists are deepened up to this, no further
    fusion: Fusion = "convex"
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(0.5, ge=0.0, le=1.0)  # convex: weight of the dense leg
    authority_weight: float = Field(0.05, ge=0.0, le=1.0)  # bounded prior added to the normalised fused score
    authority_list: str | None = None  # directory; None (or empty) = ranker.authority.default_list_dir()
    per_doc: int = Field(1, ge=0)  # passages per document in a result list (0 = no collapse)
    bm25_threads: int | None = Field(None, ge=1)  # Lucene query threads; None = the process budget (backends.threads)
    # Serving processes (serve, mcp) compile a single search's fusion (ranker/kernels.py): ~0.17 ms less a
    # query, ~55 MB more private memory a worker (and ~100 MB of shared library pages). False: numpy.
    compiled_fusion: bool = True
    # ... and scan a small exact index's int8 copy first for a single query (backends/faiss/prescan.py): the
    # same hits, ~0.3 ms less a query, ~11 MB more memory a worker on SciFact. False: FAISS's full scan alone.
    int8_prescan: bool = True
