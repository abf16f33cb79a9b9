"""The protocol every retriever (BM25, dense, future Elasticsearch) implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ranker.hit import Hit


@runtime_checkable
class Retriever(Protocol):
    name: str

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """Top-k passages for one query, best first, ranks 1..n."""
        ...

    def batch_search(self, queries: list[str], k: int = 10) -> list[list[Hit]]:
        """`search` for many queries; result i belongs to queries[i]."""
        ...

    def close(self) -> None: ...
