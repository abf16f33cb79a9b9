"""The one result type every retriever and the pipeline return."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from indexer.schema import doc_id_of


@dataclass(frozen=True)
class Hit:
    """One ranked passage with its score breakdown.

    `score` is the score the list is ordered by. Leg scores/ranks are None
    when that leg did not retrieve the passage (or was not run).
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
        return replace(self, **changes)

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
