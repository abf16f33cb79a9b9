"""The CLI's standard streams on the hosts it runs on: closed ones, encodings that cannot show every
character, and output that cannot be written (a full disk, a closed stdout)."""

from __future__ import annotations

import codecs
import errno
import io
import json
import os
import re
import select
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

_UNICODE_CODECS = {"utf-8", "utf-16", "utf-32", "gb18030"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and newline


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
    the bars failed and the build stopped). A closed stdout fails at the first result written.

    Under PYTHONUNBUFFERED=1 (-u) stdout writes straight to its descriptor, and a write a signal cut short
    (into a full pipe) lost the rest of the text with no error; it now writes the rest, still unbuffered.

    A stream whose encoding cannot show every character (PYTHONIOENCODING=latin-1, a non-UTF-8 locale)
    writes the others as backslash escapes instead of failing on the first of them.

    Progress bars on a stderr that is not a terminal are redrawn at most every 10 s (TQDM_MININTERVAL
    overrides): into a log file, each redraw is kept."""
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
    elif isinstance(sys.stdout, io.TextIOWrapper) and isinstance(sys.stdout.buffer, io.RawIOBase):
        sys.stdout = _whole_writes(sys.stdout)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not is_unicode(stream):
            stream.reconfigure(errors="backslashreplace")
    if not sys.stderr.isatty():  # a log file or a pipe: a progress bar redrawn every 10 s, not 10 times a second
        os.environ.setdefault("TQDM_MININTERVAL", "10")  # read when tqdm is imported, which the commands do later


class _WholeWrites(io.FileIO):
    """A descriptor whose `write` writes all it is given. FileIO's returns what one write(2) took, less
    than asked when a signal cut it short (into a full pipe), and the text layer Python puts over an
    unbuffered stdout drops the rest without an error."""

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            wrote = super().write(view[done:])
            if wrote is None:  # a non-blocking descriptor that is full
                raise BlockingIOError(errno.EAGAIN, "standard output would block", done)
            done += wrote
        return done


def _whole_writes(stream: io.TextIOWrapper) -> io.TextIOWrapper:
    """Unbuffered `stream` again, over a descriptor that writes whole."""
    raw = _WholeWrites(stream.fileno(), "w", closefd=False)
    return io.TextIOWrapper(raw, encoding=stream.encoding, errors=stream.errors,  # type: ignore[arg-type]
                            line_buffering=stream.line_buffering, write_through=True)  # fmt: skip


def is_unicode(stream: Any) -> bool:
    """Whether `stream` encodes every character (UTF-8 and the like)."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name in _UNICODE_CODECS
    except LookupError:
        return False


def echo_json(payload: Any, **dumps: Any) -> None:
    """Print `payload` as JSON: its text as is on a UTF-8 stdout, as \\u escapes on any other (still
    valid JSON, in any ASCII-compatible encoding)."""
    typer.echo(json.dumps(payload, ensure_ascii=not is_unicode(sys.stdout), **dumps))


def non_empty_path(value: str) -> Path:
    """A path option's or argument's value, refused when empty: `--out "$OUT"` with OUT unset would
    otherwise mean the current folder (Path("") is "."), and build or read an index there. One that
    exists must be readable, as typer checks a path it parses itself."""
    if not str(value).strip():
        raise typer.BadParameter("empty path (an unset shell variable?); give a file or folder")
    if os.path.exists(value) and not os.access(value, os.R_OK):
        raise typer.BadParameter(f"{'Directory' if os.path.isdir(value) else 'File'} {value!r} is not readable.")
    return Path(value)


def argument_text(value: str) -> str:
    """A command-line argument's text as its bytes spell it in UTF-8. Under a locale Python reads as ASCII
    (LC_ALL=C with PYTHONUTF8=0), non-ASCII bytes arrive as lone surrogates (U+DC80-U+DCFF); a
    terminal that sent UTF-8 meant those characters. Bytes that are not UTF-8 are left as they came."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:
        return value


def output_failure(exc: OSError) -> str | None:
    """One line for an error writing the command's output (a full disk, a closed stdout), else None."""
    frames = traceback.extract_tb(exc.__traceback__)[-2:]  # click's echo, then perhaps _ClosedOutput.write
    if not any(f.name == "echo" and f.filename.endswith(os.path.join("_click", "utils.py")) for f in frames):
        return None
    return f"cannot write the output: {exc.strerror or exc}"


READER_GONE = 128 + signal.SIGPIPE  # what a shell reports for `git log | head` under `set -o pipefail`


def reader_gone(exc: SystemExit) -> bool:
    """Whether the command was ended with this exit because writing the output found its reader gone
    (EPIPE: `drsearch search ... | head -1`). Typer exits 1 on any EPIPE, and rich (which draws --help)
    exits 1 on one of its own; 1 is `index verify`'s "damage found" and `fetch`'s "an item failed".
    An EPIPE from elsewhere (a socket) is left as it is."""
    if exc.code != 1 or not isinstance(exc.__context__, BrokenPipeError):
        return False
    poll = select.poll()
    poll.register(1, select.POLLOUT)  # a pipe or socket whose reader left reports an error or a hang-up
    if any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0)):
        return True
    return os.path.samestat(os.fstat(1), os.stat(os.devnull))  # rich's answer: stdout already put on /dev/null


def stop_writing_output() -> None:
    """Point stdout at /dev/null once writing to it failed, so that what is still buffered is not
    written again at exit (Python's advice for SIGPIPE, https://docs.python.org/3/library/signal.html)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


class Terminated(BaseException):
    """SIGTERM or SIGHUP during a long command (`stopped_by_signals_with_a_word`). Not an `Exception`, so
    no handler meant for errors takes it for one."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signal = signal.Signals(signum)


@contextmanager
def stopped_by_signals_with_a_word() -> Iterator[None]:
    """SIGTERM or SIGHUP (a `kill`, a closed terminal) during a build or an encode ends it as Ctrl-C does:
    it raises `Terminated`, which `service.cli.main` reports in one line with 128 + the signal's number.
    By default they ended it with no word. A signal the caller ignores (`nohup`) stays ignored."""
    signals = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is signal.SIG_DFL]

    def stop(signum: int, _frame: Any) -> None:
        raise Terminated(signum)

    previous = {s: signal.signal(s, stop) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def for_terminal(text: str) -> str:
    """`text` safe to print on a terminal: control characters other than tab and newline written as
    `\\xNN`. Titles and passages come from crawled pages, whose ESC sequences could otherwise clear the
    screen, retitle the window or set the clipboard, and whose backspaces and carriage returns could
    overwrite what is shown (click strips some ESC sequences, and only when stdout is not a terminal)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str) -> str:
    """`text` as one terminal-safe line: newlines and tabs too as `\\n`, `\\t` (a path given with a newline
    in its name, named by an error message)."""
    return for_terminal(text).replace("\n", "\\n").replace("\t", "\\t")


def warn_unread(corpora: list[Path]) -> None:
    """One warning per corpus folder holding files that look like documents but are not read (a
    `.json` export, an upper-case `.JSONL`): `index build` and `index encode` would leave them out without a word."""
    from indexer.readers import unread_files

    for corpus in corpora:
        unread = unread_files(corpus)
        if unread:
            names = ", ".join(str(f.relative_to(corpus)) for f in unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else "")
            typer.echo(one_line(f"drsearch: warning: {corpus}: {len(unread)} file(s) not read as documents: {names} "
                                "(a folder's own *.jsonl and *.ndjson shards, either with .gz, are read, else those in "
                                "its docs/)"), err=True)  # fmt: skip
