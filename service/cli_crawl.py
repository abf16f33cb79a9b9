"""`drsearch crawl`: crawl the curated authority domains into documents JSONL.gz shards.

Registered by the CLI as `app.command("crawl")(crawl_command)`. Bad input raises ConfigError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from crawler.config import DEFAULT_USER_AGENT
from service.cli_io import non_empty_path


def crawl_command(
    out: Annotated[Path, typer.Option("--out", parser=non_empty_path, help="Output directory: docs/*.jsonl.gz, job/, report.json.")],
    domains: Annotated[
        Optional[Path], typer.Option("--domains", parser=non_empty_path, help="Allowed domains, one per line (# comments); a URL line sets the home page.")
    ] = None,
    from_authority_list: Annotated[
        bool, typer.Option("--from-authority-list", help="Crawl the explicit domains of authority_lists/.")
    ] = False,
    seeds: Annotated[Optional[Path], typer.Option("--seeds", parser=non_empty_path, help="Extra start URLs, one per line.")] = None,
    max_pages_per_domain: Annotated[
        int, typer.Option("--max-pages-per-domain", min=1, help="Pages fetched per registrable domain (>= 1).")
    ] = 1000,
    max_depth: Annotated[int, typer.Option("--max-depth", min=0, help="Link hops from the home page.")] = 3,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the crawl in --out without refetching.")] = False,
    host_map: Annotated[
        Optional[Path],
        typer.Option("--host-map", parser=non_empty_path, help="Lines 'hostname IP:PORT': that host's requests go there, as to a proxy."),
    ] = None,
    allow_private: Annotated[
        bool,
        typer.Option(
            "--allow-private",
            help="Allow loopback targets (tests, local mirrors); private, link-local and other non-public "
            "addresses stay refused.",
        ),
    ] = False,
    allow_dns: Annotated[
        bool, typer.Option("--allow-dns", help="With --host-map: look unmapped hosts up in DNS (default: refuse them).")
    ] = False,
    user_agent: Annotated[
        str, typer.Option("--user-agent", help="Sent on every request; robots.txt groups match its product token.")
    ] = DEFAULT_USER_AGENT,
    shard_docs: Annotated[int, typer.Option("--shard-docs", min=1, help="Documents per shard.")] = 1000,
    setting: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Scrapy setting override KEY=VALUE (repeatable); not for keys an option sets."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress line on stderr.")] = False,
) -> None:
    """Crawl the allowed domains (home pages + sitemaps, links inside the allowlist) politely and resumably."""
    from crawler.run import make_config, run_crawl  # lazy: scrapy/twisted only when crawling

    config = make_config(
        out,
        domains_file=domains,
        from_authority_list=from_authority_list,
        seeds_file=seeds,
        max_pages_per_domain=max_pages_per_domain,
        max_depth=max_depth,
        resume=resume,
        host_map_file=host_map,
        allow_private=allow_private,
        allow_dns=allow_dns,
        user_agent=user_agent,
        quiet=quiet,
        shard_docs=shard_docs,
        settings=setting or [],
    )
    report = run_crawl(config)
    if not quiet:
        typer.echo(
            f"crawl {report['finish_reason']}: {report['docs']} documents in {len(report['shards'])} shard(s) "
            f"under {out / 'docs'}; report {out / 'report.json'}",
            err=True,
        )
    if not report.get("docs"):  # even with -q: the folder holds nothing `index build` can read
        skips = sorted(((r, n) for r, n in (report.get("skips") or {}).items() if n), key=lambda kv: -kv[1])
        why = ", ".join(f"{reason} {count}" for reason, count in skips[:3]) or "no page was fetched"
        hint = "; loopback and private addresses need --allow-private" if "private_address" in dict(skips) else ""
        typer.echo(f"drsearch: warning: the crawl stored no document (pages skipped: {why}){hint}; see "
                   f"{out / 'report.json'}", err=True)  # fmt: skip
    if report.get("finish_reason") != "finished":
        raise typer.Exit(3)
