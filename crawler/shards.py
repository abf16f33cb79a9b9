"""Documents JSONL.gz shards written as the crawl goes.

The open shard is `part-NNNNN.jsonl.gz.tmp`; every flush appends one complete gzip member, so the
valid prefix of a killed crawl's shard is recoverable (a flush that fails, e.g. on a full disk, leaves none of
its member: the documents stay buffered for the next flush); on rotation/close it is renamed to
`part-NNNNN.jsonl.gz` (the indexer reads only `*.jsonl.gz`).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SHARD_GLOB = "part-*.jsonl.gz"


def complete_members(data: bytes) -> tuple[bytes, int]:
    """(decompressed bytes of the complete gzip members at the start of data, bytes they span)."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        try:
            chunk = d.decompress(data[pos:])
        except zlib.error:
            break
        if not d.eof:
            break
        out.append(chunk)
        pos = len(data) - len(d.unused_data)
    return b"".join(out), pos


def recover_tmp_shards(docs_dir: Path) -> list[Path]:
    """Turn the `.tmp` shards of a killed crawl into finished shards holding their complete members."""
    recovered = []
    for tmp in sorted(docs_dir.glob("part-*.jsonl.gz.tmp")):
        data = tmp.read_bytes()
        text, valid = complete_members(data)
        final = tmp.with_name(tmp.name.removesuffix(".tmp"))
        if not text.strip():
            tmp.unlink()
            continue
        if valid != len(data):
            with open(tmp, "r+b") as fh:
                fh.truncate(valid)
        os.replace(tmp, final)
        recovered.append(final)
    return recovered


def iter_shard_records(docs_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(docs_dir.glob(SHARD_GLOB)):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


class ShardWriter:
    """Append documents; one gzip member per flush; rotate every `shard_docs` documents."""

    def __init__(
        self,
        docs_dir: Path,
        shard_docs: int = 1000,
        flush_docs: int = 20,
        on_flushed: Callable[[list[str]], None] | None = None,
    ):
        self.docs_dir = docs_dir
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.shard_docs = max(1, shard_docs)
        self.flush_docs = max(1, flush_docs)
        self.on_flushed = on_flushed
        existing = [int(p.name[5:10]) for p in docs_dir.glob("part-*.jsonl.gz*") if p.name[5:10].isdigit()]
        self.index = max(existing) + 1 if existing else 0
        self._buffer: list[str] = []
        self._done: list[str] = []
        self._in_shard = 0
        self._fh: Any = None
        self.written = 0
        self.closed_shards: list[str] = []

    def _tmp_path(self) -> Path:
        return self.docs_dir / f"part-{self.index:05d}.jsonl.gz.tmp"

    def add(self, record: dict[str, Any], done_urls: list[str]) -> None:
        self._buffer.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._done.extend(done_urls)
        if len(self._buffer) >= self.flush_docs or self._in_shard + len(self._buffer) >= self.shard_docs:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        if self._fh is None:
            self._fh = open(self._tmp_path(), "ab", buffering=0)  # unbuffered: a failed write keeps no bytes back
        fd = self._fh.fileno()
        start = os.fstat(fd).st_size
        try:
            member = memoryview(gzip.compress("".join(self._buffer).encode("utf-8"), mtime=0))
            while member:
                member = member[os.write(fd, member) :]
            os.fsync(fd)
        except BaseException:
            # The disk filled up part-way, say: cut off what was written of this member, so that the next
            # flush, which writes these documents again, leaves each of them in the shard once.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
        self._in_shard += len(self._buffer)
        self.written += len(self._buffer)
        self._buffer = []
        done, self._done = self._done, []
        if self.on_flushed is not None:
            self.on_flushed(done)
        if self._in_shard >= self.shard_docs:
            self._rotate()

    def _rotate(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            tmp = self._tmp_path()
            final = tmp.with_name(tmp.name.removesuffix(".tmp"))
            os.replace(tmp, final)
            self.closed_shards.append(final.name)
            self.index += 1
        self._in_shard = 0

    def close(self) -> None:
        self.flush()
        self._rotate()
