"""Per-query work bounds: a deadline checked between stages and deepening rounds, and the result
list type that says how much was examined and whether the search was cut short."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from indexer.errors import DrsearchError


class DeadlineExceeded(DrsearchError):
    """The search passed its deadline; the work stopped at the next check (HTTP 504)."""


class RankedList(list):
    """A ranked list (of `Hit`s or `Result`s) with what it cost: `examined` candidates, and
    `exhausted` False when the candidate cap or the deadline (`partial`) stopped the search before
    k results were found (more may exist)."""

    examined: int = 0
    exhausted: bool = True
    partial: bool = False

    def like(self, items: Iterable[Any]) -> "RankedList":
        """`items` with this list's cost fields."""
        out = RankedList(items)
        out.examined, out.exhausted, out.partial = self.examined, self.exhausted, self.partial
        return out

    @classmethod
    def of(cls, items: Iterable[Any], *, examined: int, exhausted: bool, partial: bool = False) -> "RankedList":
        out = cls(items)
        out.examined, out.exhausted, out.partial = examined, exhausted, partial
        return out


def passed(deadline: float | None) -> bool:
    """Whether a `time.monotonic()` deadline has passed (None: no deadline)."""
    return deadline is not None and time.monotonic() >= deadline


def check(deadline: float | None, stage: str) -> None:
    if passed(deadline):
        raise DeadlineExceeded(f"search deadline passed ({stage}); ask for fewer queries, a smaller k or a "
                               "larger timeout_ms, or set allow_partial", field="timeout_ms")  # fmt: skip
