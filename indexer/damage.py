"""One-line errors for a build whose files a reader cannot read (truncated, overwritten, copied from
another build): the leg, the file or folder, and the first line of what the reader said.

Shared by the pipeline's open (`ranker.pipeline.SearchPipeline.open`: search, eval, fetch, mcp), the
serve-time validation (`service.validate`) and the Lucene searcher (a Java exception at search time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from indexer.errors import BackendUnavailable, ConfigError, IndexFormatError

T = TypeVar("T")


class LegError(IndexFormatError):
    """A build's `leg` (manifest, store, lucene, dense or a mode's warm-up) cannot be read: `detail`
    is the first line of why, `where` the file or folder."""

    def __init__(self, leg: str, message: str, where: str):
        super().__init__(f"{leg}: {message}", where=where)
        self.leg = leg
        self.detail = message


def first_line(exc: BaseException) -> str:
    """The first line of what `exc` says, with its type (at most 300 characters): for a Java
    exception (pyjnius), its innermost cause, e.g. `EOFException: read past EOF: ...(path=".../_2.fdt")`."""
    if isinstance(exc, IndexFormatError):
        message = exc.message
    elif getattr(exc, "classname", None):  # jnius.JavaException (not imported here: it would start a JVM)
        message = java_cause(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    return (message.strip().splitlines() or ["unreadable"])[0][:300]


def java_cause(exc: BaseException) -> str:
    """`Class: message` of a pyjnius JavaException's innermost cause (the line after its last
    "Caused by:"), the package left off and Lucene's lock-factory noise removed."""
    trace = [str(line) for line in (getattr(exc, "stacktrace", None) or [])]
    line = f"{getattr(exc, 'classname', '')}: {getattr(exc, 'innermessage', None) or ''}"
    for i, text in enumerate(trace):
        if text.startswith("Caused by:"):
            rest = text.removeprefix("Caused by:").strip()
            if rest:
                line = rest
            elif i + 1 < len(trace):
                line = trace[i + 1]
    return re.sub(r" lockFactory=\S+", "", without_package(line.strip())).rstrip(": ")


def without_package(line: str) -> str:
    """A Java exception line with its class's package left off: `java.io.EOFException: ...` -> `EOFException: ...`."""
    return re.sub(r"^(?:[\w$]+\.)+(?=[\w$]+(?::|$))", "", line)


def java_exception_names(exc: BaseException) -> set[str]:
    """The simple class names of a pyjnius JavaException and of each of its causes."""
    names = {str(getattr(exc, "classname", "") or "").rsplit(".", 1)[-1]}
    for text in getattr(exc, "stacktrace", None) or []:
        text = str(text).removeprefix("Caused by:").strip()
        if m := re.match(r"(?:[\w$]+\.)+([\w$]+(?:Exception|Error))(?::|$)", text):
            names.add(m.group(1))
    return names - {""}


def read_leg(
    leg: str,
    where: str | Path,
    fn: Callable[[], T],
    *,
    error: Callable[[str, str, str], LegError] = LegError,
    keep: tuple[type[BaseException], ...] = (ConfigError, BackendUnavailable),
) -> T:
    """`fn()`, with anything a damaged file makes a reader raise turned into `error(leg, first line, where)`.
    `keep`: exceptions raised as they are (configuration, a remote cluster down: not a broken build).
    A `LegError` from a nested call keeps its own leg and place."""
    try:
        return fn()
    except keep:
        raise
    except LegError as exc:
        if type(exc) is error:
            raise
        raise error(exc.leg, exc.detail, exc.where or str(where)) from None
    except Exception as exc:  # noqa: BLE001 - anything a broken file makes a reader raise
        raise error(leg, first_line(exc), str(where)) from None
