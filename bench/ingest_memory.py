"""Peak memory of `drsearch index build --no-dense` on hostile corpus files: a small gzip file holding one
line of gigabytes (no newline), and one valid document of tens of MB of text in one paragraph. Reading
drops a line past 64 MiB as it reads it, and chunking keeps no list of all words, so the first costs
about the limit and the second a small multiple of the document.

    python bench/ingest_memory.py --work /tmp/ingest-mem [--line-gib 2] [--doc-mb 60]

Peak RSS is the largest single process (the CLI or a child it waited for), from wait4's rusage.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import table


def write_gzip(path: Path, head: bytes, fill: bytes, size: int, tail: bytes) -> Path:
    """A gzip file of `head`, `size` bytes of `fill` repeated and `tail`, written in 1 MiB blocks."""
    block = fill * ((1 << 20) // len(fill))
    with gzip.open(path, "wb", compresslevel=6) as fh:
        fh.write(head)
        for start in range(0, size, len(block)):
            fh.write(block[: min(len(block), size - start)])
        fh.write(tail)
    return path


def peak_build(corpus: Path, out: Path) -> tuple[int, float, int, str]:
    """(exit code, seconds, peak RSS in MB, last stderr/stdout line) of one build."""
    shutil.rmtree(out, ignore_errors=True)
    drsearch = Path(sys.executable).with_name("drsearch")
    started = time.perf_counter()
    proc = subprocess.Popen([drsearch, "index", "build", "--corpus", corpus, "--out", out, "--no-dense", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    said = (proc.stderr.read() or proc.stdout.read()).decode(errors="replace").strip().splitlines()
    return os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss // 1024, (said or [""])[-1][:110]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--line-gib", type=float, default=2.0)
    parser.add_argument("--doc-mb", type=int, default=60)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    line = write_gzip(args.work / "one-long-line.jsonl.gz", b"", b"a", int(args.line_gib * (1 << 30)), b"")
    doc = write_gzip(args.work / "one-big-document.jsonl.gz", b'{"id": "big", "text": "', b"word ",
                     args.doc_mb * 1_000_000, b'"}\n')  # fmt: skip
    rows = []
    for name, corpus, inflated in ((f"one line of {args.line_gib:g} GiB", line, args.line_gib * 1024),
                                   (f"one document of {args.doc_mb} MB", doc, args.doc_mb)):  # fmt: skip
        rc, seconds, peak, said = peak_build(corpus, args.work / "index")
        rows.append([name, f"{corpus.stat().st_size / 1e6:.1f} MB", f"{inflated:,.0f} MB", rc, f"{seconds:.1f}", f"{peak:,}", said])
    print(table(["corpus", "gzip file", "inflated", "exit", "s", "peak RSS MB", "says"], rows))


if __name__ == "__main__":
    main()
