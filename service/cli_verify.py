"""`drsearch index verify`: re-hash a build's files and compare them with the digests its manifest recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from indexer.errors import IndexFormatError
from service.cli_io import echo_json, non_empty_path, one_line

DAMAGED = 1
NOT_RECORDED = 3  # a build made before digests were recorded: nothing to compare with


def verify_command(
    index: Annotated[Path, typer.Argument(parser=non_empty_path, help="Index ROOT (its `current` build) or a build directory")],
    build_name: Annotated[Optional[str], typer.Option("--build", help="Verify ROOT/builds/NAME instead of `current`")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The result as one JSON object")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
) -> None:
    """Check every file of a build against the sizes and digests recorded when it was built.

    Exit 0: all match; 1: damage (each file named); 2: not an index, no such build; 3: the build
    recorded no digests (built before they were kept)."""
    from tqdm import tqdm

    from backends.manifest import Manifest
    from indexer import checksums

    build = _build_dir(index, build_name)
    manifest = Manifest.read(build)
    if manifest.files is None:
        typer.echo(f"drsearch: {one_line(str(build))}: no file digests recorded (built by drsearch "
                   f"{manifest.drsearch_version}, before they were kept); rebuild it to verify it", err=True)  # fmt: skip
        raise typer.Exit(NOT_RECORDED)
    total = sum(f.size for f in manifest.files.values())
    with tqdm(desc="verify", total=total, unit="B", unit_scale=True, disable=quiet or as_json, dynamic_ncols=True) as bar:
        problems = checksums.verify(build, manifest.files, bar.update)
    if problems and not build.exists():  # renamed away by a prune meanwhile: gone, not damaged
        raise IndexFormatError("build removed while it was verified (an `index prune` meanwhile?)", where=str(build))
    if as_json:
        echo_json({"build": str(build), "files": len(manifest.files), "bytes": total, "ok": not problems,
                   "problems": [p.as_json() for p in problems]}, indent=2)  # fmt: skip
    else:
        for p in problems:
            typer.echo(one_line(f"{build / p.path}: {p.detail}"))
        verdict = f"{len(problems)} problem(s) in" if problems else "all match:"
        typer.echo(one_line(f"{verdict} {len(manifest.files)} files, {total:,} bytes of {build}"))
    if problems:
        raise typer.Exit(DAMAGED)


def _build_dir(index: Path, build_name: str | None) -> Path:
    from indexer import builds, layout

    if build_name is None:
        return layout.resolve_build(index)
    root = layout.current_link_as_root(index)
    if not (root / layout.BUILDS_DIR).is_dir():
        raise IndexFormatError("--build needs an index ROOT (a folder with builds/)", where=str(root))
    return layout.resolve_build(builds.folder_named(root, build_name))
