"""The small interfaces every backend implements, and the build context its writer receives.

A backend is one folder under `backends/` that owns both sides of one leg of a build: a writer
(store -> its files or remote index, returning its manifest section) and a searcher (manifest
section -> `Hit`s). The pipeline only sees these interfaces; `backends.registry` maps names to them.
Dependencies point one way: ranker -> backends -> indexer (schema, store, layout, settings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from backends.hit import Hit
from indexer.errors import ConfigError, QueryError

if TYPE_CHECKING:
    import numpy as np

Leg = Literal["bm25", "dense"]  # lexical leg, vector leg: what a search mode fuses
LEXICAL: Leg = "bm25"
VECTOR: Leg = "dense"


def check_k(k: object, *, field: str = "k") -> int:
    """`k` as a positive int, or QueryError."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a positive integer, got {k!r}", field=field)
    return k


def query_matrix(vectors: np.ndarray, dimension: int) -> np.ndarray:
    """Query vectors as a C-contiguous (n, dimension) float32 matrix (one vector may come as 1-D)."""
    import numpy as np

    q = np.asarray(vectors, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dimension:
        raise ConfigError(f"query vectors have shape {q.shape}, index dimension is {dimension}")
    return np.ascontiguousarray(q)


class SourceFilters(Protocol):
    """What a backend may read of a request's source filters (ranker.filters.SourceFilter has it).

    A backend may pre-filter with them; the pipeline post-filters anyway, so ignoring them is correct.
    """

    include_domains: tuple[str, ...]
    exclude_domains: tuple[str, ...]
    min_tier: int | None
    categories: tuple[str, ...]
    published_after: str | None
    published_before: str | None

    @property
    def active(self) -> bool: ...


@dataclass(frozen=True)
class Restriction:
    """Source filters resolved against a build's passage columns (`ranker.sources`), in the terms a
    backend can apply inside its search: a superset of the exact filter (the pipeline still
    post-filters), so a backend that ignores part of it stays correct. The pipeline passes it
    instead of the filters to a searcher whose `restricts` attribute is true."""

    include_hosts: tuple[int, ...] | None = None  # host codes a passage must have (None = any)
    exclude_hosts: tuple[int, ...] = ()
    date_range: tuple[str, str] | None = None  # inclusive YYYYMMDD tokens; non-ISO dates always pass
    date_tokens: tuple[str, ...] = ()  # with date_range: these tokens pass too (a year or month alone inside it)
    languages: tuple[int, ...] | None = None  # language codes a passage must have (None = any)
    allowed: np.ndarray | None = field(default=None, compare=False)  # bool per passage position

    active = True


class Section(BaseModel):
    """A leg's manifest section: written by the backend's writer, read by its searcher.

    `backend` names the registry entry that reads it back (like txtai's saved `backend` config).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    summary_fields: ClassVar[tuple[str, ...]] = ()  # what `index info` shows of the section

    def describe(self) -> str:
        return " ".join([self.backend, *(f"{f}={getattr(self, f)}" for f in self.summary_fields)])


@runtime_checkable
class LexicalRetriever(Protocol):
    """Bag-of-words retrieval (BM25). Query text is plain text, never query syntax."""

    name: ClassVar[str]

    @property
    def size(self) -> int:
        """Number of passages searchable (the deepest a candidate list can get)."""
        ...

    def terms(self, query: str) -> list[str]:
        """The index terms the analyzer keeps from `query` (empty: nothing can match)."""
        ...

    def search(
        self, queries: Sequence[str], k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[list[Hit]]:
        """Top-k per query, best first, ranks 1..n, own leg's score and rank set; result i is queries[i]'s."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class VectorRetriever(Protocol):
    """Nearest passages of query vectors; `encode` turns query texts into those vectors."""

    name: ClassVar[str]
    dimension: int

    @property
    def size(self) -> int: ...

    def encode(self, queries: Sequence[str], on_idle: Callable[[], None] | None = None) -> np.ndarray:
        """(len(queries), dimension) float32, each row independent of the other queries in the batch.
        `on_idle`, if given, is called once, when the encoding first leaves a core free for other
        work (`backends.faiss.encoder.encode_queries`)."""
        ...

    def search_vectors(
        self, vectors: np.ndarray, k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[list[Hit]]:
        """Top-k per query vector, best first, ranks 1..n."""
        ...

    def scores_for(self, vectors: np.ndarray, passage_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """The vector score of given passages, one array per query vector, in the given order."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BuildContext:
    """What a writer gets: the finished store of a new build and where things go."""

    build_dir: Path  # ROOT/builds/<version>/, the store already written
    root: Path  # index ROOT (shared caches live here)
    store: Any  # indexer.store.Store, read-only
    passages: int
    threads: int
    quiet: bool


class Writer(Protocol):
    """Writes one leg of a build from the store and returns its manifest section.

    Constructed from the build settings before the corpus is read, so a bad setting
    (a missing model, an unreachable cluster) fails before minutes of reading. A writer may also
    have `check(ctx)`, called once the store is written and before any leg is, for what depends on
    the corpus (an index type its size cannot train).
    """

    leg: ClassVar[Leg]

    def write(self, ctx: BuildContext) -> Section: ...
