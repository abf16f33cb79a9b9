"""The curated authority index: loads `authority_lists/` and maps any URL or host to its entry.

One loader for the whole project (ranker and crawler). Matching is a dict lookup per label
suffix of the host: exact host, then the longest listed parent domain, then the longest
suffix rule (`gov`, `gov.uk`, `ac.uk`, ...). No network, ever: the public suffix list used by
`registrable_domain` is tldextract's bundled snapshot.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.domains import host_of, ip_or_none, is_dns_name, normalise_host, registrable_domain, suffix_extractor
from indexer.errors import ConfigError

__all__ = [
    "CATEGORIES",
    "TIERS",
    "OFFICIAL_CATEGORIES",
    "AuthorityEntry",
    "AuthorityListError",
    "AuthorityList",
    "BREADTH_REQUIREMENTS",
    "default_list_dir",
    "normalise_host",
    "validate",
]

CATEGORIES: frozenset[str] = frozenset(
    {
        "government",
        "intergovernmental",
        "central_bank",
        "statistics",
        "regulator",
        "legal",
        "standards",
        "university",
        "publisher",
        "preprint",
        "research_institute",
        "library_archive",
        "health_agency",
        "scientific_society",
    }
)
TIERS: tuple[int, ...] = (1, 2, 3)
#: Categories that count as a country's "official sources" for the breadth check.
OFFICIAL_CATEGORIES: frozenset[str] = frozenset(
    {"government", "regulator", "legal", "statistics", "central_bank"}
)

DOMAIN_HEADER: tuple[str, ...] = ("domain", "name", "category", "country", "tier", "note")
SUFFIX_HEADER: tuple[str, ...] = ("suffix", "name", "category", "country", "tier", "note")
SUFFIX_FILE = "suffix_rules.csv"
ENV_VAR = "DRSEARCH_AUTHORITY_LIST"

#: requirement -> minimum; see `_breadth`.
BREADTH_REQUIREMENTS: dict[str, int] = {
    "explicit_domains": 600,
    "central_bank": 40,
    "statistics": 40,
    "university": 60,
    "publisher+preprint": 30,
    "intergovernmental": 40,
    "research_institute": 40,
    "countries_with_official_sources": 30,
}

# ISO 3166-1 alpha-2 codes (officially assigned), plus `int` and `eu` used by this project.
_ISO_ALPHA2 = frozenset(
    """
    ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo bq br
    bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz
    ec ee eg eh er es et fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw
    gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky
    kz la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv
    mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py
    qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st sv sx sy sz tc td tf tg
    th tj tk tl tm tn to tr tt tv tw tz ua ug um us uy uz va vc ve vg vi vn vu wf ws ye yt za zm
    zw
    """.split()
)
_SPECIAL_COUNTRIES = frozenset({"int", "eu"})


class AuthorityListError(ConfigError):
    """An authority list file is missing, unreadable or has an invalid row (`where` = file:line)."""


@dataclass(frozen=True)
class AuthorityEntry:
    """One curated source: an explicit domain (and its subdomains) or a suffix rule."""

    domain: str
    name: str
    category: str
    country: str
    tier: int
    note: str
    kind: str  # "domain" | "suffix"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "tier": self.tier,
            "country": self.country,
            "domain": self.domain,
            "kind": self.kind,
        }


def default_list_dir() -> Path:
    """`$DRSEARCH_AUTHORITY_LIST` if set, else the `authority_lists/` beside the packages: the repository's
    top-level folder in a checkout, the copy the wheel installs into site-packages (pyproject.toml)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "authority_lists"


# --------------------------------------------------------------------------- parsing


@dataclass
class _Problem:
    file: str
    line: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


@dataclass
class _Parsed:
    directory: Path
    entries: dict[str, AuthorityEntry] = field(default_factory=dict)
    suffixes: dict[str, AuthorityEntry] = field(default_factory=dict)
    where: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)  # (kind, domain) -> (file, line)
    problems: list[_Problem] = field(default_factory=list)
    content_hash: str = ""


def _domain_problem(value: str, key: str) -> str | None:
    """Why `value` is not a normalised domain/suffix, or None if it is fine."""
    if not value:
        return f"empty {key}"
    if "://" in value or value.startswith("//"):
        return f"{key} must not contain a scheme: {value!r}"
    if any(c in value for c in "/?#@: \t"):
        return f"{key} must be a bare host name: {value!r}"
    if value.endswith("."):
        return f"{key} must not end with a dot: {value!r}"
    if value != value.lower():
        return f"{key} must be lower case: {value!r}"
    if value.startswith("www."):
        return f"{key} must not start with 'www.': {value!r}"
    if not value.isascii():
        puny = host_of(value)
        hint = f" (use {puny!r})" if puny else ""
        return f"{key} must be punycode, not unicode: {value!r}{hint}"
    if ip_or_none(value) is not None:
        return f"{key} must not be an IP address: {value!r}"
    if not is_dns_name(value):
        return f"invalid {key} syntax: {value!r}"
    if value.startswith("xn--") or ".xn--" in value:
        try:
            import idna  # type: ignore[import-untyped]

            idna.decode(value)
        except Exception:  # noqa: BLE001 - any decoding failure means a bad label
            return f"invalid punycode in {key}: {value!r}"
    return None


def _parse_file(path: Path, parsed: _Parsed) -> bytes | None:
    is_suffix = path.name == SUFFIX_FILE
    header = SUFFIX_HEADER if is_suffix else DOMAIN_HEADER
    key = header[0]
    kind = "suffix" if is_suffix else "domain"
    fname = path.name
    problems = parsed.problems
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(_Problem(fname, 0, "file", f"cannot read: {exc.strerror or exc}"))
        return None
    body = raw.removeprefix(codecs.BOM_UTF8)  # positions in errors count from here, as the decoder's do
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, line_start = body.count(b"\n", 0, exc.start) + 1, body.rfind(b"\n", 0, exc.start) + 1
        problems.append(_Problem(fname, line, "file", f"not UTF-8 ({exc.reason} at byte {exc.start - line_start + 1} of the line)"))
        return raw
    reader = csv.reader(io.StringIO(text, newline=""))
    try:  # blank and comment lines before the header are skipped, as between rows
        first = next((row for row in reader if any(c.strip() for c in row) and not row[0].lstrip().startswith("#")), None)
    except csv.Error as exc:
        problems.append(_Problem(fname, reader.line_num, "header", f"unreadable CSV: {exc}"))
        return raw
    if first is None:
        problems.append(_Problem(fname, 1, "header", "empty file (expected header " + ",".join(header) + ")"))
        return raw
    if tuple(c.strip() for c in first) != header:
        problems.append(
            _Problem(fname, reader.line_num, "header", f"expected header {','.join(header)!r}, got {','.join(first)!r}")
        )
        return raw
    target = parsed.suffixes if is_suffix else parsed.entries
    while True:
        line = reader.line_num + 1  # where the row starts: a quoted field may run over several lines
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(_Problem(fname, line, "row", f"unreadable CSV: {exc}"))
            break
        if not row or all(not c.strip() for c in row):
            continue
        if row[0].lstrip().startswith("#"):
            continue  # comment line for human reviewers
        if len(row) != len(header):
            runs_to = f" (the row runs to line {reader.line_num}: a quote not closed?)" if reader.line_num > line else ""
            problems.append(
                _Problem(fname, line, "row", f"expected {len(header)} fields, got {len(row)}{runs_to}")
            )
            continue
        domain, name, category, country, tier_s, note = (c.strip() for c in row)
        ok = True
        why = _domain_problem(domain, key)
        if not why and not is_suffix and suffix_extractor()(domain).suffix == domain:
            why = (f"{domain!r} is a public suffix, a whole zone (every site under it would be rated): list it in "
                   f"{SUFFIX_FILE}, or list the sites")  # fmt: skip
        if why:
            problems.append(_Problem(fname, line, key, why))
            ok = False
        if not name:
            problems.append(_Problem(fname, line, "name", "empty name"))
            ok = False
        if category not in CATEGORIES:
            problems.append(
                _Problem(fname, line, "category", f"unknown category {category!r} (one of {', '.join(sorted(CATEGORIES))})")
            )
            ok = False
        if country not in _SPECIAL_COUNTRIES and country not in _ISO_ALPHA2:
            problems.append(
                _Problem(fname, line, "country", f"not an ISO 3166-1 alpha-2 lower-case code, 'int' or 'eu': {country!r}")
            )
            ok = False
        tier = 0
        if re.fullmatch("[0-9]+", tier_s) and int(tier_s) in TIERS:  # ASCII digits: "²".isdigit() too
            tier = int(tier_s)
        else:
            problems.append(_Problem(fname, line, "tier", f"tier must be 1, 2 or 3, got {tier_s!r}"))
            ok = False
        if not ok:
            continue
        if domain in target:
            other_file, other_line = parsed.where[(kind, domain)]
            problems.append(
                _Problem(fname, line, key, f"duplicate {key} {domain!r} (first at {other_file}:{other_line})")
            )
            continue
        target[domain] = AuthorityEntry(domain, name, category, country, tier, note, kind)
        parsed.where[(kind, domain)] = (fname, line)
    return raw


def _check_conflicts(parsed: _Parsed) -> None:
    """Overlapping entries whose tiers contradict each other, reported at the more specific entry:

    - an entry under a listed parent of its own table (explicit under explicit, rule under rule)
      with the same category but another tier;
    - an explicit domain with no listed parent under a suffix rule of the same category that
      rates it lower (the rule vouches for its whole zone; naming a member to raise it is curation,
      e.g. kist.re.kr at tier 1 under re.kr at tier 2).
    """
    for rule in parsed.suffixes.values():  # explicit entries are looked up first: one at or above a rule covers its zone
        if (covering := _nearest_parent(rule.domain, parsed.entries, include_self=True)) is not None:
            f, ln = parsed.where[("suffix", rule.domain)]
            of, ol = parsed.where[("domain", covering.domain)]
            parsed.problems.append(_Problem(f, ln, "suffix", f"rule {rule.domain!r} can never match: the explicit entry "
                                            f"{covering.domain!r} at {of}:{ol} covers every host under it"))  # fmt: skip
    for kind, table in (("domain", parsed.entries), ("suffix", parsed.suffixes)):
        for domain, entry in table.items():
            parent = _nearest_parent(domain, table)
            if parent is not None:
                if parent.category == entry.category and parent.tier != entry.tier:
                    _conflict(parsed, kind, entry, "suffix" if kind == "suffix" else "domain", parent, "parent")
            elif kind == "domain":
                rule = _nearest_parent(domain, parsed.suffixes, include_self=True)
                if rule is not None and rule.category == entry.category and entry.tier > rule.tier:
                    _conflict(parsed, kind, entry, "suffix", rule, "suffix rule")


def _nearest_parent(domain: str, table: dict[str, AuthorityEntry], include_self: bool = False) -> AuthorityEntry | None:
    labels = domain.split(".")
    for i in range(0 if include_self else 1, len(labels)):
        found = table.get(".".join(labels[i:]))
        if found is not None:
            return found
    return None


def _conflict(parsed: _Parsed, kind: str, entry: AuthorityEntry, other_kind: str, other: AuthorityEntry, what: str) -> None:
    f, ln = parsed.where[(kind, entry.domain)]
    of, ol = parsed.where[(other_kind, other.domain)]
    parsed.problems.append(_Problem(
        f, ln, "tier", f"{entry.domain!r} ({entry.category}, tier {entry.tier}) conflicts with {what} "
        f"{other.domain!r} ({other.category}, tier {other.tier}) at {of}:{ol}",
    ))  # fmt: skip


def _parse_dir(directory: Path | str | None) -> _Parsed:
    d = Path(directory) if directory is not None else default_list_dir()
    parsed = _Parsed(directory=d)
    if not d.is_dir():
        reason = "is a file, not an authority list directory (the folder of .csv files)" if d.exists() else "authority list directory not found"
        parsed.problems.append(_Problem(str(d), 0, "directory", reason))
        return parsed
    files = sorted(p for p in d.iterdir() if p.suffix == ".csv" and p.is_file())
    if not files:
        parsed.problems.append(_Problem(str(d), 0, "directory", "no .csv files in authority list directory"))
        return parsed
    h = hashlib.sha256()
    for p in files:
        raw = _parse_file(p, parsed)
        h.update(p.name.encode("utf-8") + b"\0")
        h.update(raw or b"")
        h.update(b"\0")
    parsed.content_hash = h.hexdigest()
    _check_conflicts(parsed)
    return parsed


# --------------------------------------------------------------------------- the list


class AuthorityList:
    """The loaded list: explicit domains + suffix rules, with a fast most-specific-wins lookup."""

    def __init__(
        self,
        entries: dict[str, AuthorityEntry],
        suffix_rules: dict[str, AuthorityEntry],
        *,
        directory: Path,
        content_hash: str,
    ) -> None:
        self.entries: dict[str, AuthorityEntry] = dict(entries)
        self._suffixes: dict[str, AuthorityEntry] = dict(suffix_rules)
        self.explicit_domains: list[str] = sorted(self.entries)
        self.suffix_rules: list[AuthorityEntry] = [self._suffixes[k] for k in sorted(self._suffixes)]
        self.directory: Path = directory
        self.content_hash: str = content_hash

    @classmethod
    def load(cls, directory: Path | str | None = None) -> "AuthorityList":
        """Read every CSV in `directory`; raise AuthorityListError on the first invalid row."""
        parsed = _parse_dir(directory)
        if parsed.problems:
            p = parsed.problems[0]
            where = f"{p.file}:{p.line}" if p.line else p.file
            raise AuthorityListError(f"{p.field}: {p.message}", where=where, field=p.field)
        return cls(
            parsed.entries,
            parsed.suffixes,
            directory=parsed.directory,
            content_hash=parsed.content_hash,
        )

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return (
            f"AuthorityList({str(self.directory)!r}, explicit={len(self.entries)}, "
            f"suffix_rules={len(self._suffixes)}, hash={self.content_hash[:12]})"
        )

    def lookup_host(self, host: str) -> AuthorityEntry | None:
        """Like `lookup` for a host that is already normalised (hot path)."""
        for table in (self.entries, self._suffixes):
            cand = host
            while True:
                entry = table.get(cand)
                if entry is not None:
                    return entry
                dot = cand.find(".")
                if dot < 0:
                    break
                cand = cand[dot + 1 :]
        return None

    def lookup(self, url_or_host: str) -> AuthorityEntry | None:
        """Most specific entry for a URL/host: exact host, longest listed parent, longest suffix rule."""
        host = normalise_host(url_or_host)
        if host is None:
            return None
        return self.lookup_host(host)

    def registrable_domain(self, url_or_host: str) -> str | None:
        """The domain under the public suffix (`a.b.stats.gov.cn` -> `stats.gov.cn`), offline."""
        host = normalise_host(url_or_host)
        return registrable_domain(host) if host else None


# --------------------------------------------------------------------------- validation report


def _breadth(entries: dict[str, AuthorityEntry]) -> dict[str, dict[str, Any]]:
    cats = Counter(e.category for e in entries.values())
    official_countries = {
        e.country
        for e in entries.values()
        if e.category in OFFICIAL_CATEGORIES and e.country not in _SPECIAL_COUNTRIES
    }
    actual = {
        "explicit_domains": len(entries),
        "central_bank": cats["central_bank"],
        "statistics": cats["statistics"],
        "university": cats["university"],
        "publisher+preprint": cats["publisher"] + cats["preprint"],
        "intergovernmental": cats["intergovernmental"],
        "research_institute": cats["research_institute"],
        "countries_with_official_sources": len(official_countries),
    }
    return {
        k: {"required": req, "actual": actual[k], "ok": actual[k] >= req}
        for k, req in BREADTH_REQUIREMENTS.items()
    }


def validate(directory: Path | str | None = None) -> dict[str, Any]:
    """Check a list directory; never raises for bad rows. See `drsearch authority check`."""
    parsed = _parse_dir(directory)
    entries = parsed.entries
    by_category = Counter(e.category for e in entries.values())
    by_tier = Counter(str(e.tier) for e in entries.values())
    by_country = Counter(e.country for e in entries.values())
    return {
        "directory": str(parsed.directory),
        "content_hash": parsed.content_hash,
        "explicit_domains": len(entries),
        "suffix_rules": len(parsed.suffixes),
        "by_category": dict(sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_tier": {t: by_tier.get(t, 0) for t in ("1", "2", "3")},
        "by_country": dict(sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0]))),
        "errors": [p.as_dict() for p in parsed.problems],
        "breadth": _breadth(entries),
    }
