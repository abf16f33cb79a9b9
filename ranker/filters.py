"""Source filters, per-document collapse and per-domain caps over fused candidates.

Pure functions over candidates plus a per-passage metadata lookup, so the pipeline can
re-run them on a deeper candidate list until k results come back (no short lists).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from indexer.language import language_code
from indexer.errors import QueryError, echo
from indexer.schema import date_prefix_problem, is_published_date
from ranker.hit import Hit

TIME_RANGES = {"day": 1, "week": 7, "month": 30, "year": 365}  # days back from `now`


@dataclass(frozen=True)
class SourceMeta:
    """What filters need to know about a passage's source document."""

    host: str | None  # normalised host (no www.)
    site: str | None  # registrable domain (or an IP host's address), the unit of per-domain caps
    published: str | None
    tier: int | None  # authority tier of the host (1 best), None = unlisted
    category: str | None
    country: str | None = None  # of the host's authority list entry
    language: str | None = None  # ISO 639-1 of the document, when known


@dataclass(frozen=True)
class SourceFilter:
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    min_tier: int | None = None  # keep tier <= min_tier (1 = primary sources only)
    categories: tuple[str, ...] = ()
    published_after: str | None = None  # inclusive, ISO date prefix comparison
    published_before: str | None = None  # inclusive
    include_undated: bool = False  # a date bound keeps documents without a date
    languages: tuple[str, ...] = ()  # ISO 639-1 codes; documents of unknown language are dropped
    countries: tuple[str, ...] = ()  # authority list country codes; unlisted sources are dropped

    @property
    def active(self) -> bool:
        return bool(
            self.include_domains or self.exclude_domains or self.min_tier is not None or self.categories
            or self.published_after or self.published_before or self.languages or self.countries
        )  # fmt: skip

    def drops_undated(self, meta: SourceMeta | None) -> bool:
        """True when a date bound drops this source only for having no date."""
        dated = bool(self.published_after or self.published_before)
        return dated and not self.include_undated and not (meta and meta.published)

    def check(self) -> None:
        """QueryError naming an unknown category or tier (4xx at the HTTP edge)."""
        from ranker.authority import CATEGORIES, TIERS

        if self.min_tier is not None and self.min_tier not in TIERS:
            raise QueryError(f"unknown tier {self.min_tier} (tiers are {', '.join(map(str, TIERS))})", field="min_tier")
        for c in self.categories:
            if c not in CATEGORIES:
                raise QueryError(f"unknown category {echo(c)} (known: {', '.join(sorted(CATEGORIES))})", field="categories")
        for name in ("published_after", "published_before"):
            value = getattr(self, name)
            if value is not None and (problem := date_prefix_problem(value)):
                raise QueryError(f"{name} {problem}", field=name)

    def accepts(self, passage_id: str, meta: SourceMeta | None) -> bool:
        host = meta.host if meta else None
        if self.include_domains and not (host and any(_under(host, d) for d in self.include_domains)):
            return False
        if self.exclude_domains and host and any(_under(host, d) for d in self.exclude_domains):
            return False
        if self.min_tier is not None and (meta is None or meta.tier is None or meta.tier > self.min_tier):
            return False
        if self.categories and (meta is None or meta.category not in self.categories):
            return False
        if self.countries and (meta is None or meta.country not in self.countries):
            return False
        if self.languages and (meta is None or meta.language not in self.languages):
            return False
        published = meta.published if meta else None
        if published and not is_published_date(published):
            published = None  # not an ISO date (stored by a build before they were refused): undated
        if published:
            if self.published_after and not on_or_after(published, self.published_after):
                return False
            if self.published_before and not on_or_before(published, self.published_before):
                return False
        elif (self.published_after or self.published_before) and not self.include_undated:
            return False
        return True


# Dates compare at the coarser of the two precisions: a bound is inclusive of the whole period it names
# (`2024-02` is all of February), and a document dated by its year or month alone is in every bound that
# its period meets (`2024` is on or after 2024-03-01: it may be March or later). Compared at the bound's
# precision only, `2024` fell before 2024-01-01, and every time_range window dropped such documents.


def on_or_after(published: str, bound: str) -> bool:
    n = min(len(published), len(bound))
    return published[:n] >= bound[:n]


def on_or_before(published: str, bound: str) -> bool:
    n = min(len(published), len(bound))
    return published[:n] <= bound[:n]


def since(time_range: str, now: datetime | None = None) -> str:
    """The first date (YYYY-MM-DD, UTC) inside `time_range` before `now` (default: the clock)."""
    if time_range not in TIME_RANGES:
        raise QueryError(f"time_range must be one of {', '.join(TIME_RANGES)}, got {echo(time_range)}", field="time_range")
    try:
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        return (now - timedelta(days=TIME_RANGES[time_range])).date().isoformat()
    except OverflowError:  # e.g. 0001-01-01: the window would start before the first representable date
        problem = f"a {time_range!r} time_range from this now falls outside the calendar (years 1-9999)"
        raise QueryError(problem, field="now") from None


def later_date(a: str | None, b: str | None) -> str | None:
    """The later of two ISO date prefixes (either may be None)."""
    return max((x for x in (a, b) if x), default=None)


def normalise_codes(values: Iterable[str], field_name: str) -> tuple[str, ...]:
    """Language (ISO 639-1/-3, `indexer.language.language_code`) or country (ISO 3166-1 alpha-2, `int`,
    `eu`) codes, lower-cased and without repeats; a value that is not one is a QueryError naming the field."""
    out = []
    for raw in values:
        if field_name == "languages":
            code = language_code(raw)
            problem = None if code else f"not a language code: {echo(raw)} (ISO 639-1 or 639-3, e.g. en, zh, haw)"
        else:
            code = raw.strip().lower() if isinstance(raw, str) else ""
            problem = country_code_problem(code, raw)
        if problem:
            raise QueryError(problem, field=field_name)
        out.append(code)
    return tuple(dict.fromkeys(out))  # "zh-CN" and "zh" are one code


SPECIAL_COUNTRIES = ("int", "eu")  # the authority list's codes of international and EU sources


def country_code_problem(code: str, raw: object) -> str | None:
    """Why a lower-cased `code` (as given: `raw`) is not an ISO 3166-1 alpha-2 country code nor `int` or
    `eu`, with the current code for a retired or alpha-3 one CLDR knows ("uk": did you mean gb?)."""
    if code in _iso3166_alpha2() or code in SPECIAL_COUNTRIES:
        return None
    problem = f"not a country code: {echo(raw)} (ISO 3166-1 alpha-2, int or eu)"
    hint = _country_aliases().get(code)
    return f"{problem}; did you mean {hint}?" if hint else problem


@lru_cache(maxsize=1)
def _iso3166_alpha2() -> frozenset[str]:
    """ISO 3166-1's assigned alpha-2 codes, from CLDR (Babel): those its numeric codes 001-899 map to
    (900-999, and alpha-2 codes such as QO, XK or ZZ, are user-assigned, not countries)."""
    from babel.core import get_global

    return frozenset(
        targets[0].lower() for key, targets in get_global("territory_aliases").items()
        if key.isdigit() and int(key) < 900 and len(targets) == 1 and re.fullmatch(r"[A-Z]{2}", targets[0])
    )  # fmt: skip


@lru_cache(maxsize=1)
def _country_aliases() -> dict[str, str]:
    """Retired alpha-2 and alpha-3 codes CLDR maps to one current code ("uk" -> "gb", "deu" -> "de")."""
    from babel.core import get_global

    current = _iso3166_alpha2()
    return {
        key.lower(): targets[0].lower() for key, targets in get_global("territory_aliases").items()
        if key.isalpha() and len(targets) == 1 and targets[0].lower() in current
    }  # fmt: skip


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def normalise_domain_list(values: Iterable[str], field_name: str) -> tuple[str, ...]:
    """Domains (or URLs) normalised exactly as hosts are when matched: lower case, punycode, no
    `www.`, port, userinfo or path; a value that cannot name a domain is a QueryError naming it."""
    from indexer.domains import normalise_host

    out = []
    for raw in values:
        domain = normalise_host(raw) if isinstance(raw, str) else None
        if domain is None:
            raise QueryError(f"not a domain name: {echo(raw)}", field=field_name)
        out.append(domain)
    return tuple(out)


def diversify(
    hits: Iterable[Hit], meta_of: Callable[[str], SourceMeta | None], *, per_doc: int, max_per_domain: int | None
) -> Iterator[Hit]:
    """Keep at most `per_doc` passages per document (0 = all) and `max_per_domain` per site."""
    per_doc_seen: dict[str, int] = {}
    per_site_seen: dict[str, int] = {}
    for hit in hits:
        if per_doc:
            n = per_doc_seen.get(hit.doc_id, 0)
            if n >= per_doc:
                continue
        site = None
        if max_per_domain:
            meta = meta_of(hit.passage_id)
            site = meta.site if meta else None
            if site is not None and per_site_seen.get(site, 0) >= max_per_domain:
                continue
        if per_doc:
            per_doc_seen[hit.doc_id] = per_doc_seen.get(hit.doc_id, 0) + 1
        if site is not None:
            per_site_seen[site] = per_site_seen.get(site, 0) + 1
        yield hit
