"""Run one crawl: `run_crawl(config)` in-process (CrawlerProcess; once per process, Twisted's reactor
cannot restart) or `python -m crawler.run --out DIR ...` as a subprocess (what tests use)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from indexer.errors import ConfigError, DrsearchError
from indexer.layout import remove_stale_temporaries

from crawler.config import (
    DEFAULT_USER_AGENT,
    CrawlConfig,
    home_page,
    load_authority_domains,
    load_domains,
    load_host_map,
    load_seeds,
    product_token,
)
from crawler.settings import check_override, check_value
from crawler.state import check_not_in_use, lock_job
from crawler.urls import Allowlist


def parse_setting(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` -> (KEY, value parsed as JSON when it is JSON, else the string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isupper():
        raise ConfigError(f"expected KEY=VALUE with an upper-case Scrapy setting name, got {text!r}", where="--set")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    check_override(key.strip())
    check_value(key.strip(), value)
    return key.strip(), value


def make_config(
    out: Path,
    *,
    domains_file: Path | None = None,
    from_authority_list: bool = False,
    seeds_file: Path | None = None,
    max_pages_per_domain: int = 1000,
    max_depth: int = 3,
    resume: bool = False,
    host_map_file: Path | None = None,
    allow_private: bool = False,
    allow_dns: bool = False,
    user_agent: str = DEFAULT_USER_AGENT,
    quiet: bool = False,
    shard_docs: int = 1000,
    flush_docs: int = 20,
    settings: list[str] | None = None,
) -> CrawlConfig:
    """Validate the inputs (ConfigError naming file:line for bad ones) and build the crawl's config."""
    if domains_file is None and not from_authority_list:
        raise ConfigError("give --domains FILE or --from-authority-list", where="crawl")
    if domains_file is not None and from_authority_list:
        raise ConfigError("give only one of --domains and --from-authority-list", where="crawl")
    if max_pages_per_domain < 1:
        raise ConfigError("--max-pages-per-domain must be >= 1", where="crawl")
    if max_depth < 0:
        raise ConfigError("--max-depth must be >= 0", where="crawl")
    if not product_token(user_agent):
        raise ConfigError("--user-agent must start with a product token, e.g. 'mybot/1.0 (+contact)'", where="crawl")
    if domains_file is not None:
        domains, homes = load_domains(domains_file)
    else:
        domains = load_authority_domains()
        homes = [home_page(d) for d in domains]
    allow = Allowlist(domains)
    seeds: list[str] = []
    if seeds_file is not None:
        seeds = load_seeds(seeds_file, allow.allows_url)
    host_map = load_host_map(host_map_file) if host_map_file is not None else {}
    extra = dict(parse_setting(s) for s in (settings or []))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory", where="crawl")
    check_not_in_use(out)
    has_previous = holds_crawl(out)
    if has_previous and not resume:
        raise _holds_a_crawl(out)
    resume_requested = resume
    if resume and not has_previous:
        resume = False  # nothing to resume: a fresh crawl
    return CrawlConfig(
        out_dir=out,
        domains=domains,
        start_urls=list(dict.fromkeys(homes + seeds)),
        max_pages_per_domain=max_pages_per_domain,
        max_depth=max_depth,
        resume=resume,
        resume_requested=resume_requested,
        host_map=host_map,
        allow_private=allow_private,
        allow_dns=allow_dns,
        user_agent=user_agent,
        quiet=quiet,
        shard_docs=shard_docs,
        flush_docs=flush_docs,
        settings=extra,
    )


def holds_crawl(out: Path) -> bool:
    """Whether `out` holds (part of) a crawl: its job state or its documents; a lock file alone is none."""
    job = out / "job"
    return (job.is_dir() and any(p.name != "LOCK" for p in job.iterdir())) or any((out / "docs").glob("part-*"))


def _holds_a_crawl(out: Path) -> ConfigError:
    return ConfigError("output directory already holds a crawl: pass --resume or use a new --out", where=str(out))


def run_crawl(config: CrawlConfig) -> dict[str, Any]:
    """Run the crawl to its end in this process and return the report (also in DIR/report.json)."""
    from scrapy.crawler import CrawlerProcess

    from crawler.settings import build_settings
    from crawler.spiders.authority import AuthoritySpider

    try:
        config.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the --out directory: {exc.strerror}", where=str(config.out_dir)) from None
    lock = lock_job(config.out_dir)
    try:
        # Checked again under the lock: a crawl started beside this one may have run and finished while
        # this one waited for it (`LOCK_WAIT_S`), and this one would crawl afresh over its output.
        if not config.resume and holds_crawl(config.out_dir):
            if not config.resume_requested:
                raise _holds_a_crawl(config.out_dir)
            config = dataclasses.replace(config, resume=True)  # asked to resume, and there is a crawl now
        for folder in (config.out_dir, config.out_dir / "job"):  # report.json and counters.json of killed runs
            remove_stale_temporaries(folder)
        report_path = config.out_dir / "report.json"
        if report_path.exists():
            report_path.unlink()
        process = CrawlerProcess(build_settings(config))
        crawler = process.create_crawler(AuthoritySpider)
        process.crawl(crawler, config=config)
        process.start()
    finally:
        lock.close()
    write_error = getattr(getattr(crawler.spider, "crawl_state", None), "write_error", None)
    if write_error is not None:
        raise DrsearchError(f"the crawl stopped, its disk full: {write_error}; what was written is kept: free "
                            "space, then run it again with --resume", where=str(config.out_dir))  # fmt: skip
    if not report_path.is_file():
        raise DrsearchError("the crawl stopped before it wrote its report (a second Ctrl-C or SIGTERM stops it at once; "
                            "else an error logged above); what it stored is kept: run it again with --resume",
                            where=str(report_path))  # fmt: skip
    return json.loads(report_path.read_text(encoding="utf-8"))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m crawler.run", description="Crawl the authority domains.")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--domains", type=Path)
    ap.add_argument("--from-authority-list", action="store_true")
    ap.add_argument("--seeds", type=Path)
    ap.add_argument("--max-pages-per-domain", type=int, default=1000)
    ap.add_argument("--max-depth", type=int, default=3)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--host-map", type=Path)
    ap.add_argument("--allow-private", action="store_true")
    ap.add_argument("--allow-dns", action="store_true", help="with --host-map: look unmapped hosts up (else refused)")
    ap.add_argument("--user-agent", default=DEFAULT_USER_AGENT)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--shard-docs", type=int, default=1000)
    ap.add_argument("--flush-docs", type=int, default=20)
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = make_config(
            args.out,
            domains_file=args.domains,
            from_authority_list=args.from_authority_list,
            seeds_file=args.seeds,
            max_pages_per_domain=args.max_pages_per_domain,
            max_depth=args.max_depth,
            resume=args.resume,
            host_map_file=args.host_map,
            allow_private=args.allow_private,
            allow_dns=args.allow_dns,
            user_agent=args.user_agent,
            quiet=args.quiet,
            shard_docs=args.shard_docs,
            flush_docs=args.flush_docs,
            settings=args.settings,
        )
        report = run_crawl(config)
    except DrsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if report.get("finish_reason") == "finished" else 3


if __name__ == "__main__":
    raise SystemExit(main())
