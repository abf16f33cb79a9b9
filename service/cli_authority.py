"""`drsearch authority ...`: validate the curated authority list and look URLs up in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from indexer.domains import host_of, normalise_host
from indexer.errors import echo
from ranker.authority import AuthorityList, default_list_dir, validate
from service.cli_io import echo_json, non_empty_path

authority_app = typer.Typer(
    help="Inspect the curated authority list (authority_lists/): validate it, look URLs up.",
    no_args_is_help=True,
)

_LIST_HELP = "Authority list directory (default: $DRSEARCH_AUTHORITY_LIST, else the installed authority_lists/)."


def _table(title: str, counts: dict[str, int], limit: int | None = None) -> list[str]:
    items = list(counts.items())
    shown = items[:limit] if limit else items
    lines = [f"{title}:"]
    width = max((len(k) for k, _ in shown), default=0)
    lines += [f"  {k.ljust(width)}  {v:>5}" for k, v in shown]
    if limit and len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return lines


@authority_app.command("check")
def check(
    list_dir: Optional[Path] = typer.Option(None, "--list", parser=non_empty_path, help=_LIST_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Validate the list: schema, duplicates, normalisation, tier conflicts and breadth minimums.

    Exits 1 if there is any error or breadth shortfall.
    """
    report = validate(list_dir)
    failed = bool(report["errors"]) or not all(b["ok"] for b in report["breadth"].values())
    if as_json:
        echo_json(report, sort_keys=False)
    else:
        out: list[str] = [
            f"authority list: {report['directory']}",
            f"explicit domains: {report['explicit_domains']}   suffix rules: {report['suffix_rules']}",
            f"content hash: {report['content_hash'] or '-'}",
            "",
        ]
        out += _table("by category", report["by_category"])
        out += _table("by tier", report["by_tier"])
        out += _table("by country (top 20)", report["by_country"], limit=20)
        out.append("breadth:")
        width = max(len(k) for k in report["breadth"])
        for key, b in report["breadth"].items():
            mark = "ok" if b["ok"] else "SHORT"
            out.append(f"  {key.ljust(width)}  {b['actual']:>5} / {b['required']:<5} {mark}")
        if report["errors"]:
            out.append(f"errors ({len(report['errors'])}):")
            out += [f"{e['file']}:{e['line']}: {e['field']}: {e['message']}" for e in report["errors"]]
        else:
            out.append("errors: none")
        typer.echo("\n".join(out))
    if failed:
        raise typer.Exit(code=1)


@authority_app.command("lookup")
def lookup(
    urls: list[str] = typer.Argument(..., help="URLs or host names to look up."),
    list_dir: Optional[Path] = typer.Option(None, "--list", parser=non_empty_path, help=_LIST_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of lines."),
) -> None:
    """Show the entry each URL matches (most specific wins) or `unlisted`.

    A malformed list raises AuthorityListError (reported as a one-line error by `drsearch`).
    """
    if (bad := next((url for url in urls if host_of(url) is None), None)) is not None:  # '', 'http://', 'two words'
        raise typer.BadParameter(f"not a URL or host name: {echo(bad)}", param_hint="'URLS...'")
    alist = AuthorityList.load(list_dir if list_dir is not None else default_list_dir())
    results: list[dict[str, Any]] = []
    for url in urls:
        entry = alist.lookup(url)
        results.append(
            {
                "url": url,
                # registrable domain (public-suffix based); the bare host when the host is itself
                # a public suffix (e.g. gov.uk); None for IPs and garbage.
                "domain": alist.registrable_domain(url) or normalise_host(url),
                "entry": entry.to_dict() if entry else None,
            }
        )
    if as_json:
        echo_json(results)
        return
    width = max(len(r["url"]) for r in results)
    for r in results:
        e = r["entry"]
        if e is None:
            right = "unlisted"
        else:
            right = f"{e['domain']}  {e['name']} ({e['category']}, tier {e['tier']}, {e['country']})"
        typer.echo(f"{r['url'].ljust(width)}  ->  {right}")
