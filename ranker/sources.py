"""Source facts of passages for filters, caps and the authority prior, without a Python object per passage.

The build's columns (`indexer.columns`) give each passage a host, a published and a language code;
this module maps the small host table to site, tier, category and country with the authority list loaded now
(so a changed list needs no re-index) and turns a `SourceFilter` into the `Restriction` the
retrievers apply inside their search: host codes and a date range (Lucene), a position mask (FAISS).
Languages are language codes (Lucene) and part of the position mask (FAISS).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from backends.base import Restriction
from indexer.columns import Columns
from indexer.domains import ip_or_none, normalise_host
from indexer.language import normalise as normalise_language
from indexer.schema import is_published_date
from ranker.filters import SourceFilter, SourceMeta


def _address(raw_host: str) -> str | None:
    """An IP host as its address, a site of its own for the per-domain cap (None: no host, or not an IP)."""
    ip = ip_or_none(raw_host) if raw_host else None
    return str(ip) if ip is not None else None


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
            site = (authority.registrable_domain(host) or host) if host else _address(raw)
            self._host_meta.append(SourceMeta(
                host=host, site=site, published=None,
                tier=entry.tier if entry else None, category=entry.category if entry else None,
                country=entry.country if entry else None,
            ))  # fmt: skip
        self._host_tier = np.array([m.tier or 0 for m in self._host_meta], dtype=np.int8)  # 0 = unlisted
        # Per host code, for the vectorised host mask: category and country as codes into small tables
        # (-1: none), and the host codes under each domain (`_hosts_under`, built on first use).
        self._host_category, self._category_code = _coded([m.category for m in self._host_meta])
        self._host_country, self._country_code = _coded([m.country for m in self._host_meta])
        self._under: dict[str, np.ndarray] | None = None
        # A stored value that is not an ISO date (builds before the reader refused them) reads as undated,
        # for the filters and for counting what a date bound drops for having no date.
        self._published = [p if p and is_published_date(p) else None for p in columns.published]
        # The same values as one bytes array (b"": undated) for the vectorised date mask.
        self._dated = np.fromiter((p is not None for p in self._published), dtype=bool, count=len(self._published))
        self._published_bytes = np.array([p.encode("utf-8") if p else b"" for p in self._published], dtype=np.bytes_)
        # Read as a build stores them today: builds before 639-2/639-3 codes were mapped to 639-1 stored a
        # document's "zho" as given, which no languages filter could reach ("zho" is asked for as zh).
        self._languages = [normalise_language(code) for code in columns.languages]

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

    @property
    def host_tiers(self) -> np.ndarray:
        """Authority tier (int8, 0 = unlisted or no host) of each host code of the build's host column."""
        return self._host_tier

    def tiers_at(self, positions: np.ndarray) -> np.ndarray:
        """Authority tier (int8, 0 = unlisted or no host) of the passages at these column positions
        (-1, as `Columns.positions` gives for an id the build lacks: 0)."""
        known = positions >= 0
        if known.all():
            return self._host_tier[self.columns.host[positions]]
        tiers = np.zeros(len(positions), dtype=np.int8)
        tiers[known] = self._host_tier[self.columns.host[positions[known]]]
        return tiers

    def entries(self, passage_ids: list[str]) -> list:
        """Authority list entry of each hit's source (None: unlisted or no host), in one pass over the
        columns: ids must come from this build's retrievers (see `Columns.positions`)."""
        positions = self.columns.positions(passage_ids)
        codes = self.columns.host[np.maximum(positions, 0)].tolist()
        entry = self._host_entry
        return [entry[c] if p >= 0 else None for p, c in zip(positions.tolist(), codes)]

    # ---- filters -> restrictions ---------------------------------------------------------
    def host_mask(self, filters: SourceFilter) -> np.ndarray:
        """bool per host code: does a passage from this host pass the host/tier/category/country part?
        (exactly `SourceFilter.accepts` on the host's facts, computed with array operations)"""
        ok = np.ones(len(self._host_meta), dtype=bool)
        if filters.include_domains:
            included = np.zeros_like(ok)
            for domain in filters.include_domains:
                included[self._hosts_under(domain)] = True
            ok &= included
        for domain in filters.exclude_domains:
            ok[self._hosts_under(domain)] = False
        if filters.min_tier is not None:  # unlisted hosts (tier code 0) never pass
            tier = self._host_tier.astype(np.int64)
            ok &= (tier != 0) & (tier <= filters.min_tier)
        if filters.categories:
            ok &= np.isin(self._host_category, _codes_of(filters.categories, self._category_code))
        if filters.countries:
            ok &= np.isin(self._host_country, _codes_of(filters.countries, self._country_code))
        return ok

    def _hosts_under(self, domain: str) -> np.ndarray:
        """Host codes of the hosts that are `domain` or end with "." + domain (`filters._under`)."""
        if self._under is None:
            under: dict[str, list[int]] = {}
            for code, meta in enumerate(self._host_meta):
                if meta.host:
                    labels = meta.host.split(".")
                    for i in range(len(labels)):  # every dot-suffix of the host, the host itself first
                        under.setdefault(".".join(labels[i:]), []).append(code)
            self._under = {suffix: np.array(codes, dtype=np.int64) for suffix, codes in under.items()}
        return self._under.get(domain, _NO_CODES)

    def date_mask(self, filters: SourceFilter) -> np.ndarray:
        """bool per published code (exactly the post-filter's comparison at the coarser precision,
        `filters.on_or_after`; a stored value that is not an ISO date is undated: it passes a date
        bound only with include_undated)."""
        after, before = filters.published_after, filters.published_before
        if not (after or before):
            return np.ones(len(self._published), dtype=bool)
        ok = self._dated.copy()
        lengths = np.char.str_len(self._published_bytes)
        for bound, keep in ((after, np.greater_equal), (before, np.less_equal)):
            if bound:
                value = bound.encode("utf-8")  # the stored value's first len(bound) bytes against the bound
                passes = keep(self._published_bytes.astype(f"S{len(value)}"), value)
                for coarser in (YEAR, MONTH):  # a year or month alone, against the bound's year or month
                    if coarser < len(value) and (dated := lengths == coarser).any():
                        passes[dated] = keep(self._published_bytes[dated], value[:coarser])
                ok &= passes
        if filters.include_undated:
            ok |= ~self._dated
        return ok

    def allowed(self, filters: SourceFilter) -> np.ndarray:
        """bool per passage position: the exact filter, computed over the columns."""
        return self.passing(filters)(slice(None))

    def passing(self, filters: SourceFilter) -> Callable[[np.ndarray | slice], np.ndarray]:
        """The exact filter at given positions (bool each), its per-host, per-date and per-language
        masks computed once, here, for any number of lists of candidates."""
        hosts = self.host_mask(filters)
        dates = self.date_mask(filters) if filters.published_after or filters.published_before else None
        languages = self.language_mask(filters) if filters.languages else None
        columns = self.columns

        def at(positions: np.ndarray | slice) -> np.ndarray:
            ok = hosts[columns.host[positions]]
            if dates is not None:
                ok &= dates[columns.published_code[positions]]
            if languages is not None:
                ok &= languages[columns.language[positions]]
            return ok

        return at

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
        partial_dates: tuple[str, ...] = ()
        if (filters.published_after or filters.published_before) and not filters.include_undated:
            dates = (_token(filters.published_after, "0"), _token(filters.published_before, "9"))
            partial_dates = _partial_tokens(filters.published_after, dates[1])
        languages = tuple(int(c) for c in np.flatnonzero(self.language_mask(filters))) if filters.languages else None
        return Restriction(include, exclude, dates, partial_dates, languages=languages,
                           allowed=self.allowed(filters) if positions else None)  # fmt: skip


_NO_CODES = np.zeros(0, dtype=np.int64)


def _coded(values: list[str | None]) -> tuple[np.ndarray, dict[str, int]]:
    """(int32 code per value, -1 for None; value -> code) for comparing a small table's values with np.isin."""
    table: dict[str, int] = {}
    codes = [-1 if v is None else table.setdefault(v, len(table)) for v in values]
    return np.array(codes, dtype=np.int32), table


def _codes_of(wanted: tuple[str, ...], table: dict[str, int]) -> np.ndarray:
    """The codes of the wanted values the table holds (a value no host has matches nothing)."""
    return np.array([table[v] for v in wanted if v in table], dtype=np.int32)


YEAR, MONTH = len("2024"), len("2024-02")


def _partial_tokens(after: str | None, hi: str) -> tuple[str, ...]:
    """The date tokens of a year or a month alone (`20240000`, `20240200`) in the period of a lower bound
    finer than them: before the bound's token, yet inside the bound (`filters.on_or_after`)."""
    if not after:
        return ()
    tokens = [after[:YEAR] + "0000"] if len(after) > YEAR else []
    if len(after) > MONTH:
        tokens.append(after[:YEAR] + after[YEAR + 1 : MONTH] + "00")
    return tuple(t for t in tokens if t <= hi)


def _token(prefix: str | None, fill: str) -> str:
    """'2020-05' -> '20200500' (lower bound) or '20200599' (upper bound); None -> open end."""
    if not prefix:
        return fill * 8
    return prefix.replace("-", "").ljust(8, fill)
