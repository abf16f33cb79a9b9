"""The CLI's standard streams on the hosts it runs on: closed ones, and output that cannot be written
(a full disk, a closed stdout)."""

from __future__ import annotations

import errno
import io
import os
import sys
import traceback


class _ClosedOutput(io.TextIOBase):
    """sys.stdout when the process started with descriptor 1 closed: writing fails as it would on the
    descriptor (EBADF), so results are not dropped in silence."""

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            raise OSError(errno.EBADF, "standard output is closed")
        return 0


def prepare_standard_streams() -> None:
    """Called first thing by `main`.

    A descriptor among 0-2 that the caller closed (`>&-`, `2>&-`) is opened on /dev/null, so that no index
    or store file opened later takes its number and receives what Java or a C library prints there;
    a closed stderr then swallows progress bars and messages (Python had set sys.stderr to None, on which
    the bars failed and the build stopped). A closed stdout fails at the first result written."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # takes the lowest free descriptor: this one
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115  (open for the process's life)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()


def output_failure(exc: OSError) -> str | None:
    """One line for an error writing the command's output (a full disk, a closed stdout), else None."""
    frames = traceback.extract_tb(exc.__traceback__)[-2:]  # click's echo, then perhaps _ClosedOutput.write
    if not any(f.name == "echo" and f.filename.endswith(os.path.join("_click", "utils.py")) for f in frames):
        return None
    return f"cannot write the output: {exc.strerror or exc}"
