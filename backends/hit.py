"""The one result type every backend searcher and the pipeline return."""

from __future__ import annotations

from typing import Any, NamedTuple

from indexer.schema import doc_id_of


class Hit(NamedTuple):
    """One ranked passage with its score breakdown (immutable).

    `score` is the score the list is ordered by. Leg scores/ranks are None
    when that leg did not retrieve the passage (or was not run). A NamedTuple rather than a
    frozen dataclass: retrievers build 10-1,000 of these per query and a frozen dataclass's
    __init__ costs four times as much.
    """

    passage_id: str
    doc_id: str
    score: float
    rank: int  # 1-based
    bm25: float | None = None
    dense: float | None = None
    fused: float | None = None
    authority: float | None = None
    bm25_rank: int | None = None
    dense_rank: int | None = None

    @classmethod
    def of(cls, passage_id: str, score: float, rank: int, **legs: Any) -> "Hit":
        return cls(passage_id=passage_id, doc_id=doc_id_of(passage_id), score=score, rank=rank, **legs)

    def with_(self, **changes: Any) -> "Hit":
        return self._replace(**changes)

    def breakdown(self) -> dict[str, float | None]:
        return {
            "bm25": self.bm25,
            "dense": self.dense,
            "fused": self.fused,
            "authority": self.authority,
            "final": self.score,
        }

    def leg_ranks(self) -> dict[str, int | None]:
        return {"bm25": self.bm25_rank, "dense": self.dense_rank}
