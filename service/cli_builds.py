"""`drsearch index list | use | prune`: see an index ROOT's builds, make another one `current`, remove old ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli_io import echo_json, non_empty_path, one_line

RootArg = Annotated[Path, typer.Argument(parser=non_empty_path, help="Index ROOT (the folder holding builds/ and current)")]


def list_command(
    root: RootArg,
    as_json: Annotated[bool, typer.Option("--json", help='{"builds": [...], "current_problem": null or why no build is current}')] = False,
) -> None:
    """List ROOT's builds, newest first: current, state, built at, counts, legs, size on disk.

    States: complete (has its manifest), building (a live build writes it), incomplete (left by a
    killed build), removing (an interrupted removal). A `current` that is no link (a copy made with
    `cp -rL`) marks no build current, with a warning saying how to repair it."""
    from indexer import builds

    index = builds.index_root(root)
    found, problem = builds.list_builds(index), builds.current_problem(index)
    if problem:
        typer.echo(one_line(f"drsearch: warning: {problem}"), err=True)
    if as_json:
        echo_json({"builds": [b.as_json() for b in found], "current_problem": problem}, indent=2)
        return
    rows = [("", "NAME", "STATE", "BUILT AT", "DOCUMENTS", "PASSAGES", "LEGS", "SIZE")] + [
        ("*" if b.current else "", b.name, b.state, b.built_at or "-", _number(b.documents), _number(b.passages),
         "+".join(b.legs) or "-", builds.human_bytes(b.size_bytes))
        for b in found
    ]  # fmt: skip
    notes = [""] + [f"  unusable: {b.problem}" if b.problem else "" for b in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {4, 5, 7}  # numbers
    for row, note in zip(rows, notes):
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        typer.echo(one_line("  ".join(cells).rstrip() + note))


def use_command(
    root: RootArg,
    name: Annotated[str, typer.Argument(help="A complete build: its NAME under ROOT/builds, or the path ROOT/builds/NAME")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
) -> None:
    """Make a complete build `current` (roll back or forward) once its files match their digests.

    Servers watching `current` reload it as they do a new build."""
    from tqdm import tqdm

    from indexer import builds

    index = builds.index_root(root)
    bars: list[tqdm] = []

    def progress_bar(total: int):  # drawn only once the build's files are read, not for a refused NAME
        bars.append(tqdm(desc="verify", total=total, unit="B", unit_scale=True, disable=quiet, dynamic_ncols=True))
        return bars[-1].update

    try:
        before, now, checked = builds.use_build(index, name, progress_bar)
    finally:
        for bar in bars:
            bar.close()
    if not checked:
        typer.echo(one_line(f"drsearch: warning: {now}: no file digests recorded (built before they were kept); "
                            "switched without checking its files"), err=True)  # fmt: skip
    if before == now:
        typer.echo(one_line(f"current already names {now}: unchanged"))
    else:
        typer.echo(one_line(f"current was {before or '(none)'}, now {now}"))


def prune_command(
    root: RootArg,
    keep: Annotated[int, typer.Option("--keep", min=0, help="Complete builds to keep besides `current`, the newest")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be removed; remove nothing")] = False,
) -> None:
    """Remove old builds: complete ones but `current` and the --keep newest, and killed builds' folders.

    Never `current`, a build being built, or anything outside ROOT/builds."""
    from indexer import builds

    index = builds.index_root(root)
    removed = builds.prune_plan(index, keep) if dry_run else builds.prune(index, keep)
    verb = "would remove" if dry_run else "removed"
    freed = count = 0
    for build in removed:
        typer.echo(one_line(f"{verb} {build.name}  ({build.state}, {builds.human_bytes(build.size_bytes)})"))
        freed, count = freed + build.size_bytes, count + 1
    for build in builds.kept_incomplete(index):
        typer.echo(one_line(f"kept {build.name}  (incomplete, without a .building lock: from an older drsearch "
                            "or a file system without locks; remove it by hand once no build writes it)"))  # fmt: skip
    typer.echo(f"{'would free' if dry_run else 'freed'} {freed:,} bytes ({builds.human_bytes(freed)}) in {count} build(s)")


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
