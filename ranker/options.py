"""The one typed options object of a search, declared once.

`RequestOptions` is what any caller may ask (an agent over HTTP, a CLI user): the HTTP request
model inherits it (so its fields, limits and descriptions are the API's and the tool schema's),
the CLI constructs it, the pipeline reads it, and the response cache keys on its dump. A new
request option is one field here. `SearchOptions` adds the operator knobs the CLI, eval and
benchmarks set (not offered over HTTP).

Checks run once, at construction (at the edge): shape errors are pydantic's (422 over HTTP),
meaning errors (an unknown category, a value that cannot name a domain) raise `QueryError`
naming the field (400 over HTTP, a one-line CLI error).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ranker.filters import SourceFilter, date_prefix_problem, later_date, normalise_codes, normalise_domain_list, since
from ranker.query import surrogate_problem
from ranker.settings import Fusion, Mode

DATE_PATTERN = r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"  # ASCII digits; the calendar is checked too


def _valid_unicode(value: Any) -> Any:
    """A lone UTF-16 surrogate (JSON "\\ud800") cannot reach the tokenizer, the matcher, SQLite, JNI or a
    UTF-8 response: refused before any other check of the string, so the error names the field and,
    in a list, its index (`queries[3]`)."""
    if isinstance(value, str) and (problem := surrogate_problem(value)):
        raise ValueError(problem)
    return value


# A string of any request field (queries, domains, codes, ids, URLs): valid Unicode, i.e. encodable as UTF-8.
UnicodeText = Annotated[str, BeforeValidator(_valid_unicode)]


@functools.cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, field in model.model_fields.items() if field.annotation is int or int in get_args(field.annotation))


class CountsAsIntegers(BaseModel):
    """A request model whose (strict) integer fields also take a number with no fractional part: `5.0`,
    which JSON Schema's `integer` admits and some function-calling clients send; never a string or a
    boolean (`"5"`, `true`). Done before validation so that the fields' schemas keep `minimum`/`maximum`
    (an annotated validator on `int | None` had them written out as `ge`/`le`, unknown to JSON Schema)."""

    @model_validator(mode="before")
    @classmethod
    def _whole_floats_as_integers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = _integer_fields(cls)
        return {k: int(v) if type(v) is float and k in names and v.is_integer() else v for k, v in data.items()}


def _date_time_text(value: Any) -> Any:
    """`now` as the API documents it, an ISO 8601 string: pydantic would also take a number (or a string
    of digits) as Unix seconds, a second spelling of the same instant that no schema or doc offers."""
    if value is None or isinstance(value, datetime):  # datetime: a Python caller's
        return value
    if not isinstance(_valid_unicode(value), str) or not re.match(r"[0-9]{4}-", value):
        raise ValueError("must be an ISO 8601 date and time with an offset, e.g. 2026-11-30T12:00:00Z")
    return value


class RequestOptions(CountsAsIntegers):
    """Options of one search request (every query of a batch shares them); None = the pipeline's setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(10, strict=True, ge=1, description="Results per query")
    mode: Mode | None = Field(None, description="Retrieval mode (default: hybrid when the index has a dense leg, else bm25)")
    include_domains: tuple[UnicodeText, ...] = Field((), max_length=1000, description="Only these domains (and their subdomains)")
    exclude_domains: tuple[UnicodeText, ...] = Field((), max_length=1000, description="Never these domains (or their subdomains)")
    min_tier: int | None = Field(None, strict=True, ge=1, le=3, description="Only listed sources of authority tier <= N (1 = primary)")
    categories: tuple[UnicodeText, ...] = Field((), max_length=100, description="Only sources of these authority categories")
    published_after: str | None = Field(None, pattern=DATE_PATTERN, description="YYYY[-MM[-DD]], inclusive")
    published_before: str | None = Field(None, pattern=DATE_PATTERN, description="YYYY[-MM[-DD]], inclusive")
    max_per_domain: int | None = Field(None, strict=True, ge=1, le=100, description="At most N hits per site")
    per_doc: int | None = Field(None, strict=True, ge=0, le=100, description="Passages per document (0 = no collapse; default 1)")
    dedupe_text: bool = Field(
        True, strict=True, description="Show a passage text once: a hit whose text (casefolded, whitespace collapsed) "
        "a better-ranked hit has is left out and the list refilled (false: keep every copy)",
    )  # fmt: skip
    time_range: Literal["day", "week", "month", "year"] | None = Field(
        None, description="Only documents published on or after `now` minus a day/week/month (30 days)/year (365 days): "
        "a lower bound only (published_before sets an upper one)"
    )
    now: Annotated[AwareDatetime | None, BeforeValidator(_date_time_text)] = Field(
        None, description="Reference time of `time_range` (ISO 8601 with offset; default the server's clock): pin it "
        "for reproducible rollouts",
    )  # fmt: skip
    languages: tuple[UnicodeText, ...] = Field(
        (), max_length=50, description="Only documents in these languages (ISO 639-1, e.g. en, de; ISO 639-3 for a language "
        "without a 639-1 code, e.g. haw); documents of unknown language are dropped unless the list names und",
    )  # fmt: skip
    countries: tuple[UnicodeText, ...] = Field(
        (), max_length=300,
        description="Only sources of these countries (the authority list's ISO 3166-1 alpha-2 codes, or int / eu)",
    )  # fmt: skip
    include_undated: bool = Field(
        False, strict=True, description="With a date bound or time_range, keep documents without a date (else they are dropped "
        "and counted in `undated_dropped`)",
    )  # fmt: skip

    @field_validator("published_after", "published_before")
    @classmethod
    def _calendar_date(cls, value: str | None) -> str | None:
        if value is not None and (problem := date_prefix_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _normalise(self) -> "RequestOptions":
        # Domains are compared as normalised hosts; store them normalised so equal requests are equal options.
        for name in ("include_domains", "exclude_domains"):
            object.__setattr__(self, name, normalise_domain_list(getattr(self, name), name))
        for name in ("languages", "countries"):
            object.__setattr__(self, name, normalise_codes(getattr(self, name), name))
        self.filters.check()  # unknown categories: QueryError naming the field
        return self

    @property
    def filters(self) -> SourceFilter:
        """The source filters the pipeline (and a pre-filtering backend) applies."""
        after = later_date(self.published_after, since(self.time_range, self.now) if self.time_range else None)
        return SourceFilter(
            include_domains=self.include_domains, exclude_domains=self.exclude_domains, min_tier=self.min_tier,
            categories=self.categories, published_after=after, published_before=self.published_before,
            include_undated=self.include_undated, languages=self.languages, countries=self.countries,
        )  # fmt: skip

    def to_search(self, **changes: Any) -> "SearchOptions":
        """These options as the pipeline's, with `changes`; no second validation (they were checked once)."""
        values = {name: getattr(self, name) for name in RequestOptions.model_fields}
        return SearchOptions.model_construct(**{**values, **changes})


class SearchOptions(RequestOptions):
    """What the pipeline receives: the request's options plus operator knobs (CLI, eval, benchmarks)."""

    authority_weight: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False, description="Authority prior strength; 0 = off")
    fusion: Fusion | None = Field(None, description="Hybrid fusion: rrf | convex | rescore")
    k0: int | None = Field(None, ge=1, le=10_000, description="Candidates per leg before fusion")
    page_size: int | None = Field(
        None, ge=1, description="When k counts a page's offset (or a refill) too: the page's own k. Scores come from as deep as a "
        "request for page_size hits searches (default: k's depth); deeper hits rank after them by leg position, so "
        "every page of a ranking orders alike",
    )  # fmt: skip
    max_candidates: int | None = Field(None, ge=1, description="Per query and leg across deepening rounds (None: the setting)")
    deadline: float | None = Field(None, description="time.monotonic() after which the search stops (checked between stages)")
    partial: bool = Field(False, description="At the deadline: the hits ranked so far (flagged) instead of DeadlineExceeded")
