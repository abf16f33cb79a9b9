"""Source facts of passages for filters, caps and the authority prior, without a Python object per passage.

The build's columns (`indexer.columns`) give each passage a host, a published and a language code;
this module maps the small host table to site, tier, category and country with the authority list loaded now
(so a changed list needs no re-index) and turns a `SourceFilter` into the `Restriction` the
retrievers apply inside their search: host codes and a date range (Lucene), a position mask (FAISS).
Languages are language codes (Lucene) and part of the position mask (FAISS).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from backends.base import Restriction
from indexer.columns import Columns
from indexer.domains import normalise_host
from indexer.schema import is_published_date
from ranker.filters import SourceFilter, SourceMeta


class SourceTable:
    """Source facts by passage position: the columns' codes + per-host facts from the authority list."""

    def __init__(self, columns: Columns, authority):
        self.columns = columns
        self._host_meta: list[SourceMeta] = []
        self._host_entry: list = []  # authority list entry per host code (None: unlisted or no host)
        for raw in columns.hosts:
            host = normalise_host(raw) if raw else None
            entry = authority.lookup_host(host) if host else None
            self._host_entry.append(entry)
            site = (authority.registrable_domain(host) or host) if host else None
            self._host_meta.append(SourceMeta(
                host=host, site=site, published=None,
                tier=entry.tier if entry else None, category=entry.category if entry else None,
                country=entry.country if entry else None,
            ))  # fmt: skip
        self._host_tier = np.array([m.tier or 0 for m in self._host_meta], dtype=np.int8)  # 0 = unlisted
        # A stored value that is not an ISO date (builds before the reader refused them) reads as undated,
        # for the filters and for counting what a date bound drops for having no date.
        self._published = [p if p and is_published_date(p) else None for p in columns.published]
        self._languages = [code or None for code in columns.languages]

    def meta(self, position: int) -> SourceMeta:
        host = self._host_meta[int(self.columns.host[position])]
        published = self._published[int(self.columns.published_code[position])]
        language = self._languages[int(self.columns.language[position])]
        if published is None and language is None:
            return host
        return dataclasses.replace(host, published=published, language=language)

    def meta_of(self, passage_id: str) -> SourceMeta | None:
        pos = self.columns.position(passage_id)
        return None if pos is None else self.meta(pos)

    def tiers(self, passage_ids: list[str]) -> np.ndarray:
        """Authority tier of each hit's source (int8, 0 = unlisted or no host), in one pass over the
        columns: ids must come from this build's retrievers (see `Columns.positions`)."""
        positions = self.columns.positions(passage_ids)
        known = positions >= 0
        tiers = np.zeros(len(positions), dtype=np.int8)
        tiers[known] = self.tiers_at(positions[known])
        return tiers

    def tiers_at(self, positions: np.ndarray) -> np.ndarray:
        """Authority tier (int8, 0 = unlisted or no host) of the passages at these column positions."""
        return self._host_tier[self.columns.host[positions]]

    def entries(self, passage_ids: list[str]) -> list:
        """Authority list entry of each hit's source (None: unlisted or no host), in one pass over the
        columns like `tiers`: ids must come from this build's retrievers."""
        positions = self.columns.positions(passage_ids)
        codes = self.columns.host[np.maximum(positions, 0)].tolist()
        entry = self._host_entry
        return [entry[c] if p >= 0 else None for p, c in zip(positions.tolist(), codes)]

    # ---- filters -> restrictions ---------------------------------------------------------
    def host_mask(self, filters: SourceFilter) -> np.ndarray:
        """bool per host code: does a passage from this host pass the host/tier/category/country part?"""
        part = dataclasses.replace(filters, published_after=None, published_before=None, languages=())
        return np.fromiter((part.accepts("", m) for m in self._host_meta), dtype=bool, count=len(self._host_meta))

    def date_mask(self, filters: SourceFilter) -> np.ndarray:
        """bool per published code (exactly the post-filter's prefix comparison; a stored value that
        is not an ISO date is undated: it passes a date bound only with include_undated)."""
        part = SourceFilter(published_after=filters.published_after, published_before=filters.published_before,
                            include_undated=filters.include_undated)  # fmt: skip
        if not part.active:
            return np.ones(len(self._published), dtype=bool)
        return np.fromiter(
            (part.accepts("", SourceMeta(None, None, p, None, None)) for p in self._published),
            dtype=bool, count=len(self._published),
        )  # fmt: skip

    def allowed(self, filters: SourceFilter) -> np.ndarray:
        """bool per passage position: the exact filter, computed over the columns."""
        ok = self.host_mask(filters)[self.columns.host]
        if filters.published_after or filters.published_before:
            ok &= self.date_mask(filters)[self.columns.published_code]
        if filters.languages:
            ok &= self.language_mask(filters)[self.columns.language]
        return ok

    def language_mask(self, filters: SourceFilter) -> np.ndarray:
        """bool per language code: is a passage in this language kept (unknown: only without a languages filter)?"""
        wanted = set(filters.languages)
        return np.fromiter((not wanted or code in wanted for code in self._languages), dtype=bool,
                           count=len(self._languages))  # fmt: skip

    def restriction(self, filters: SourceFilter, *, positions: bool) -> Restriction:
        """`filters` for the retrievers: host, language codes and a date range (Lucene), and with
        `positions` the exact position mask (FAISS; O(passages) to compute, so only when a vector leg runs)."""
        hosts = self.host_mask(filters)
        include: tuple[int, ...] | None = None
        exclude: tuple[int, ...] = ()
        if not hosts.all():
            allowed, refused = np.flatnonzero(hosts), np.flatnonzero(~hosts)
            if len(allowed) <= len(refused):
                include = tuple(int(c) for c in allowed)
            else:
                exclude = tuple(int(c) for c in refused)
        dates = None  # undated passages have no date field: with include_undated the post-filter decides
        if (filters.published_after or filters.published_before) and not filters.include_undated:
            dates = (_token(filters.published_after, "0"), _token(filters.published_before, "9"))
        languages = tuple(int(c) for c in np.flatnonzero(self.language_mask(filters))) if filters.languages else None
        return Restriction(include, exclude, dates, languages=languages,
                           allowed=self.allowed(filters) if positions else None)  # fmt: skip


def _token(prefix: str | None, fill: str) -> str:
    """'2020-05' -> '20200500' (lower bound) or '20200599' (upper bound); None -> open end."""
    if not prefix:
        return fill * 8
    return prefix.replace("-", "").ljust(8, fill)
