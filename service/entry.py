"""The `drsearch` console script, and `python -m service.cli`. Loading the CLI's modules takes a moment
(typer, pydantic): a Ctrl-C then, the moment after Enter, is one line as it is during a command, not a
traceback of imports."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from service.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("drsearch: interrupted\n")
        sys.exit(130)
    run()
