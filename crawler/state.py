"""Crawl state shared by the spider's middlewares and pipelines: what is stored, what is done,
counters for the report. Persisted in the job dir so that `--resume` continues without refetching.

Files (besides Scrapy's own JOBDIR files in DIR/job/):
- DIR/job/LOCK            flock'ed by the running crawl for its whole life (its pid inside): one crawl per DIR.
- DIR/job/RUNNING         written when a run starts, removed when it ends cleanly: found by the next run
                          (which holds the lock), it means the last run was killed.
- DIR/job/frontier.jsonl  `{"seen": url, "depth": d}` when a page request is scheduled (again, with a
                          smaller d, when a shorter path to it is found: the least depth counts),
                          `{"fetched": url}` when it is let through to the network (page limits),
                          `{"done": url}` when its outcome is durable (stored in a flushed shard,
                          dropped, refused or failed); pending = seen - done, re-issued on resume.
                          The report's counters are kept there too, so that a killed run loses none:
                          a page's skip rides on its `done` record (`"skip"`, `"ex"` when the example
                          is not the URL, `"dup": [kept, hash, duplicate]` for a duplicate group, with
                          `"same_text": true` when the duplicate is a page dropped for its text at its
                          own URL or one it redirects to: a page naming that rel=canonical is a
                          duplicate too), the
                          links skipped on a page go in `{"links": url, "skips": {..}, "ex": {..}}`
                          before its outcome (counted once the page is done; a page parsed again
                          after a kill counts its last parse), `{"net": {..}}` adds what a run
                          counted on the network (requests, bytes, status codes, pages per domain,
                          duration) every COUNTERS_CHECKPOINT_S and at its end, `{"run": n}` starts run n.
- DIR/job/counters.json   written by earlier versions at a clean end: the counters of the runs whose
                          records carry none; read on resume, never written.
- DIR/docs/*.jsonl.gz     the documents themselves: the stored URLs/hashes are read back from them.

Skips with no page outcome behind them (a robots.txt or sitemap fetch and the entries of a sitemap,
`robots_unreachable`, which leaves the page pending) are not logged: every run fetches robots.txt and
the sitemaps again and asks again for those pages, so a report counts them for its own run only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import IO, Any

from crawler.shards import ShardWriter, iter_shard_records, recover_tmp_shards
from crawler.urls import url_domain
from indexer.errors import ConfigError

SKIP_REASONS = (
    "robots", "robots_unreachable", "offsite", "duplicate", "near_duplicate", "content_type", "too_large",
    "private_address",
    "redirect_offsite", "redirect_limit", "redirect_loop", "redirect_bad_url", "bad_url", "noindex", "timeout",
    "error", "http_status", "empty", "depth", "page_limit", "unmapped_host",
)
EXAMPLES_PER_REASON = 50
COUNTERS_CHECKPOINT_S = 2.0  # a killed run loses at most this long of its network counters
_NEAR_WS = re.compile(r"\W+", re.UNICODE)


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def near_hash(text: str) -> str:
    """Hash of the text with case, punctuation and whitespace differences removed."""
    return hashlib.sha1(_NEAR_WS.sub(" ", text.casefold()).strip().encode("utf-8")).hexdigest()


LOCK_WAIT_S = 1.0  # a check (in_use_by) may hold the lock for a moment: ride that out, not a crawl


def lock_job(out_dir: Path) -> IO[str]:
    """Take DIR/job/LOCK for this process (released when the returned file is closed or the process dies,
    so a killed crawl never leaves it taken). ConfigError, touching nothing, while another crawl holds it."""
    job_dir = out_dir / "job"
    job_dir.mkdir(parents=True, exist_ok=True)
    fh = open(job_dir / "LOCK", "a+", encoding="utf-8")
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                fh.seek(0)
                pid = fh.read().strip() or "?"
                fh.close()
                raise _in_use(out_dir, pid) from None
            time.sleep(0.05)
    fh.truncate(0)
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def in_use_by(out_dir: Path) -> str | None:
    """The pid of the crawl holding DIR's job lock, or None; reads only."""
    try:
        fh = open(out_dir / "job" / "LOCK", encoding="utf-8")
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return fh.read().strip() or "?"
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def check_not_in_use(out_dir: Path) -> None:
    pid = in_use_by(out_dir)
    if pid is not None:
        raise _in_use(out_dir, pid)


def _in_use(out_dir: Path, pid: str) -> ConfigError:
    return ConfigError(f"--out {out_dir} is in use by a running crawl (pid {pid})")


class CrawlState:
    def __init__(self, out_dir: Path, *, resume: bool, shard_docs: int, flush_docs: int):
        self.out_dir = out_dir
        self.job_dir = out_dir / "job"
        self.docs_dir = out_dir / "docs"
        self.job_dir.mkdir(parents=True, exist_ok=True)
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.stored: dict[str, str] = {}  # canonical url -> content hash
        self.by_hash: dict[str, str] = {}  # content hash -> kept url
        self.by_near: dict[str, str] = {}  # near hash -> kept url
        # url whose own page was dropped as a text duplicate -> (kept url, its content hash): a page naming it
        # rel=canonical is a duplicate of the kept one too, not stored under it with its own text
        self.identities_kept_as: dict[str, tuple[str, str]] = {}
        self.seen: dict[str, int] = {}  # page url -> depth
        self.done: set[str] = set()
        self.issued: set[str] = set()  # page urls sent to the downloader in this run
        self.fetched: set[str] = set()  # pages let through to the network, in any run (page limit)
        self.fetched_per_domain: Counter[str] = Counter()
        self.pages_per_domain: Counter[str] = Counter()  # page responses received
        self.docs_per_domain: Counter[str] = Counter()
        self.skips: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)
        # kept url -> {content_hash, duplicates: {url: None}} (a dict: a group can have thousands of URLs)
        self.groups: dict[str, dict[str, Any]] = {}
        self.link_skips: dict[str, dict[str, list[Any]]] = {}  # page url -> reason -> [count, examples]
        self.net_logged: dict[str, Any] = {}  # this run's network counters already in the log
        self.previous: dict[str, Any] = {}  # counters of earlier runs
        self.runs = 1
        if resume:
            self._load()
        marker = self.job_dir / "RUNNING"
        self.write_error: str | None = None  # the first failed write of the crawl's output (or too little room)
        # The log goes on when the crawl stops for DRSEARCH_MIN_FREE_BYTES (its room is kept for the last shard,
        # log and report) or a shard write fails: what is settled while it stops is done, not fetched again.
        self._log_failed = False
        self.unclean_previous = marker.exists()  # the previous run was killed (a live one would hold the job lock)
        if resume or self.unclean_previous:
            # Scrapy's disk queue and seen-set of an earlier run are never reused: the frontier log re-issues
            # every pending page and sitemaps are refetched. After a kill they were not closed and cannot be
            # trusted (a FIFO disk queue reopened without its info file replays stale entries); after a clean
            # stop (Ctrl-C, SIGTERM, CLOSESPIDER_*) they hold pages the frontier re-issues anyway, and a retry
            # waiting among them was fetched a second time beside its re-issued page (a retry passes the
            # once-per-run check), its outcome counted twice (a page reported a duplicate of itself).
            shutil.rmtree(self.job_dir / "requests.queue", ignore_errors=True)
            (self.job_dir / "requests.seen").unlink(missing_ok=True)
        marker.write_text(str(os.getpid()))
        frontier = self.job_dir / "frontier.jsonl"
        _end_torn_line(frontier)
        self._frontier = open(frontier, "a", encoding="utf-8", buffering=1)
        self._log({"run": self.runs})
        self.writer = ShardWriter(self.docs_dir, shard_docs, flush_docs, on_flushed=self.mark_done_many)

    # -- resume ---------------------------------------------------------------------------------
    def _load(self) -> None:
        recover_tmp_shards(self.docs_dir)
        for rec in iter_shard_records(self.docs_dir):
            url, h = rec["url"], rec["content_hash"]
            self.stored[url] = h
            self.by_hash.setdefault(h, url)
            self.by_near.setdefault(near_hash(rec.get("text", "")), url)
            self.done.add(url)
            self.docs_per_domain[rec.get("domain") or ""] += 1  # documents per domain: from the shards (the truth)
        counters = self.job_dir / "counters.json"
        if counters.is_file():  # an earlier version's
            self.previous = json.loads(counters.read_text(encoding="utf-8"))
            for kept, g in self.previous.get("groups", {}).items():
                self.groups[kept] = {"content_hash": g["content_hash"], "duplicates": dict.fromkeys(g["duplicates"])}
        runs = int(self.previous.get("runs", 0))
        earlier = _Skips()
        links: dict[str, dict[str, Any]] = {}  # page url -> its last links record, until the page is done
        net: list[dict[str, Any]] = [self.previous]
        path = self.job_dir / "frontier.jsonl"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line of a killed crawl
                if "seen" in rec:
                    depth = int(rec.get("depth", 0))
                    self.seen[rec["seen"]] = min(depth, self.seen.get(rec["seen"], depth))
                elif "fetched" in rec:
                    self.fetched.add(rec["fetched"])
                elif "done" in rec:
                    self.done.add(rec["done"])
                    if "skip" in rec:
                        earlier.add(rec["skip"], rec.get("ex", rec["done"]))
                    if "dup" in rec:
                        self.add_duplicate(*rec["dup"], same_text=rec.get("same_text", False))
                    if rec["done"] in links:
                        earlier.add_links(links.pop(rec["done"]))
                elif "links" in rec:
                    links[rec["links"]] = rec
                elif "net" in rec:
                    net.append(rec["net"])
                elif "run" in rec:
                    runs = max(runs, int(rec["run"]))
        # Links skipped on a page count once its outcome is durable: a page in flight at a kill is parsed again
        # (its last parse counts). Left here: pages in flight, and stored ones whose done records a kill lost.
        for url, rec in links.items():
            if url in self.done:
                earlier.add_links(rec)
        self.runs = runs + 1
        self.previous = {
            "skips": _add(self.previous.get("skips"), earlier.counts),
            "skipped_examples": _merge_examples(self.previous.get("skipped_examples"), earlier.examples),
            "duration_s": sum(float(n.get("duration_s", 0.0)) for n in net),
            "bytes": sum(int(n.get("bytes", 0)) for n in net),
            "requests": sum(int(n.get("requests", 0)) for n in net),
            "status_codes": _add_all(n.get("status_codes") for n in net),
            "pages_per_domain": _add_all(n.get("pages_per_domain") for n in net),
        }
        # The page limit counts what was let through to the network, as an uninterrupted crawl does: not pages
        # done for other reasons (robots, refused, over the limit); pages in flight at the stop count once.
        for url in self.fetched:
            self.fetched_per_domain[url_domain(url)] += 1

    def pending(self) -> list[tuple[str, int]]:
        """Page URLs scheduled by an earlier run whose outcome was never recorded."""
        return [(u, d) for u, d in self.seen.items() if u not in self.done and u not in self.stored]

    # -- frontier -------------------------------------------------------------------------------
    def mark_seen(self, url: str, depth: int) -> None:
        """Record a page request at `depth`; a page already seen deeper takes the smaller depth (a shorter path
        found after a longer one: its links are followed from the depth it really has)."""
        if depth < self.seen.get(url, depth + 1):
            self.seen[url] = depth
            self._log({"seen": url, "depth": depth})

    def least_depth(self, urls: list[str], depth: int) -> int:
        """The smallest depth any of `urls` (one page: the URL asked for, its redirect hops, the URL fetched)
        was seen at, `depth` at most: a request made for a longer path may reach the page first."""
        return min([depth] + [self.seen[u] for u in urls if u in self.seen])

    def mark_fetched(self, url: str) -> None:
        if url not in self.fetched:
            self.fetched.add(url)
            self.fetched_per_domain[url_domain(url)] += 1
            self._log({"fetched": url})

    def mark_done(self, url: str) -> None:
        if url not in self.done:
            self.done.add(url)
            self._log({"done": url})

    def _log(self, record: dict[str, Any]) -> None:
        if not self._log_failed:  # after a failed write of the log nothing more is logged: a resume asks again
            try:
                self._frontier.write(json.dumps(record) + "\n")
            except OSError as exc:
                self._log_failed = True
                self.failed_write(exc)

    def failed_write(self, exc: OSError) -> None:
        """Record the first write of the crawl's output that failed (a full disk): the crawl stops."""
        if self.write_error is None:
            self.write_error = exc.strerror or str(exc)

    def mark_done_many(self, urls: list[str]) -> None:
        for url in urls:
            self.mark_done(url)

    # -- counters -------------------------------------------------------------------------------
    def skip(self, reason: str, url: str) -> bool:
        """Count a skip in this run's counters, unlogged (`settle_page` and `skip_link` log theirs); True when
        `url` became one of the reason's examples."""
        self.skips[reason] += 1
        return _keep_example(self.examples[reason], url)

    def settle_page(self, reason: str, example: str, urls: list[str],
                    duplicate: tuple[str, str, str] | None = None, *, same_text: bool = False) -> None:  # fmt: skip
        """Count a page's outcome and record its URLs (the page asked for first) as done. The reason and the
        duplicate group go in the first URL's done record: a resume counts them exactly when it does not ask
        for the page again. `same_text`: the duplicate is the page's identity and one of the URLs it was
        asked for by, its text the kept url's (`identities_kept_as`)."""
        self.skip(reason, example)
        record: dict[str, Any] = {"done": urls[0], "skip": reason}
        if example != urls[0]:
            record["ex"] = example
        if duplicate is not None:
            self.add_duplicate(*duplicate, same_text=same_text)
            record["dup"] = list(duplicate)
            if same_text:
                record["same_text"] = True
        self.done.add(urls[0])
        self._log(record)
        self.mark_done_many(urls[1:])

    def skip_link(self, page: str | None, reason: str, url: str) -> None:
        """Count a link of `page` skipped (offsite, depth, bad_url); logged with the page by `log_links`.
        A link with no page behind it (a sitemap's entry) counts for this run only."""
        kept = self.skip(reason, url)
        if page is not None:
            count = self.link_skips.setdefault(page, {}).setdefault(reason, [0, []])
            count[0] += 1
            if kept:
                count[1].append(url)

    def log_links(self, page: str) -> None:
        """Log the links skipped on `page`, before its outcome is (they count once it is done)."""
        skipped = self.link_skips.pop(page, None)
        if skipped:
            record: dict[str, Any] = {"links": page, "skips": {r: n for r, (n, _) in skipped.items()}}
            examples = {r: ex for r, (_, ex) in skipped.items() if ex}
            if examples:
                record["ex"] = examples
            self._log(record)

    def add_duplicate(self, kept: str, h: str, dup: str, *, same_text: bool = False) -> None:
        """`dup` joins `kept`'s group; `same_text`: `dup` is an identity whose own page had `kept`'s text, so a
        page naming it rel=canonical is a duplicate of `kept` too (`identities_kept_as`)."""
        g = self.groups.setdefault(kept, {"content_hash": h, "duplicates": {}})
        if dup != kept:
            g["duplicates"][dup] = None
        if same_text:
            self.identities_kept_as[dup] = (kept, h)

    def net_counters(self, stats: dict[str, Any]) -> dict[str, Any]:
        """What this run counted on the network so far (from Scrapy's stats and the page responses)."""
        return {
            "duration_s": round(time.time() - self.started, 3),
            "bytes": int(stats.get("downloader/response_bytes", 0)),
            "requests": int(stats.get("downloader/request_count", 0)),
            "status_codes": {
                k.rsplit("/", 1)[1]: int(v) for k, v in stats.items()
                if k.startswith("downloader/response_status_count/")
            },
            "pages_per_domain": dict(self.pages_per_domain),
        }  # fmt: skip

    def log_net(self, stats: dict[str, Any], *, final: bool = False) -> None:
        """Log what this run counted on the network since the last such record (while only the clock moved,
        nothing but at the end): a killed run loses at most COUNTERS_CHECKPOINT_S of it."""
        now, before = self.net_counters(stats), self.net_logged
        delta: dict[str, Any] = {}
        for key in ("bytes", "requests"):
            if now[key] != before.get(key, 0):
                delta[key] = now[key] - before.get(key, 0)
        for key in ("status_codes", "pages_per_domain"):
            changed = {k: v - before.get(key, {}).get(k, 0) for k, v in now[key].items()
                       if v != before.get(key, {}).get(k, 0)}  # fmt: skip
            if changed:
                delta[key] = changed
        if delta or final:
            delta["duration_s"] = round(now["duration_s"] - before.get("duration_s", 0.0), 3)
            self._log({"net": delta})
            self.net_logged = now

    def register_stored(self, url: str, h: str, nh: str, domain: str) -> None:
        self.stored[url] = h
        self.by_hash.setdefault(h, url)
        self.by_near.setdefault(nh, url)
        self.docs_per_domain[domain] += 1

    # -- report ---------------------------------------------------------------------------------
    def report(self, stats: dict[str, Any], config: dict[str, Any], reason: str) -> dict[str, Any]:
        prev = self.previous
        status_now = {
            k.rsplit("/", 1)[1]: v for k, v in stats.items() if k.startswith("downloader/response_status_count/")
        }
        skips = Counter(self.skips)
        skips["robots"] += 0
        duration = time.time() - self.started
        report = {
            "finish_reason": reason,
            "runs": self.runs,
            "duration_s": round(duration + float(prev.get("duration_s", 0.0)), 3),
            "docs": sum(self.docs_per_domain.values()),
            "docs_per_domain": dict(sorted(self.docs_per_domain.items())),
            "pages_per_domain": _add(prev.get("pages_per_domain"), self.pages_per_domain),
            "status_codes": _add(prev.get("status_codes"), status_now),
            "skips": _add(prev.get("skips"), {r: skips.get(r, 0) for r in SKIP_REASONS} | dict(skips)),
            "skipped_examples": _merge_examples(prev.get("skipped_examples"), self.examples),
            "bytes": int(prev.get("bytes", 0)) + int(stats.get("downloader/response_bytes", 0)),
            "requests": int(prev.get("requests", 0)) + int(stats.get("downloader/request_count", 0)),
            "near_duplicate_groups": [
                {"kept": k, "content_hash": g["content_hash"], "duplicates": sorted(g["duplicates"])}
                for k, g in sorted(self.groups.items())
                if g["duplicates"]
            ],
            "shards": sorted(p.name for p in self.docs_dir.glob("part-*.jsonl.gz")),
            "config": config,
        }
        return report

    def close(self) -> None:
        for close in (self.writer.close, self._frontier.close):
            try:
                close()
            except OSError as exc:
                self.failed_write(exc)
        (self.job_dir / "RUNNING").unlink(missing_ok=True)


def _end_torn_line(path: Path) -> None:
    """End the log's last line when it has no newline (a crawl stopped on a full disk left half a record):
    the half stays one unreadable line, skipped on resume, instead of swallowing the next record written."""
    try:
        with open(path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
    except FileNotFoundError:
        pass


def _add(prev: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, int]:
    out: Counter[str] = Counter({k: int(v) for k, v in (prev or {}).items()})
    for k, v in now.items():
        out[str(k)] += int(v)
    return dict(sorted(out.items()))


def _add_all(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        out = _add(out, c or {})
    return out


class _Skips:
    """Skip counts and their examples, as `CrawlState.skip` keeps them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, *examples: str, n: int = 1) -> None:
        self.counts[reason] += n
        for url in examples:
            _keep_example(self.examples[reason], url)

    def add_links(self, record: dict[str, Any]) -> None:
        """A page's `{"links": url, "skips": {..}, "ex": {..}}` record."""
        for reason, n in record["skips"].items():
            self.add(reason, *record.get("ex", {}).get(reason, []), n=int(n))


def _keep_example(examples: list[str], url: str) -> bool:
    """Add `url` to a reason's examples while there is room; whether it was added."""
    if len(examples) < EXAMPLES_PER_REASON and url not in examples:
        examples.append(url)
        return True
    return False


def _merge_examples(prev: dict[str, list[str]] | None, now: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in (prev or {}).items()}
    for k, urls in now.items():
        for u in urls:
            _keep_example(out.setdefault(k, []), u)
    return dict(sorted(out.items()))
