"""Per-passage source columns: compact numpy arrays in the build folder, memory-mapped at open.

Serving memory must not grow by a Python object per passage, so what filters and the authority
prior need about a passage's source lives here, one small integer per passage:

    columns/
      hosts.json        host table, code -> host as the corpus gave it (lower case; "" = none, code 0)
      published.json    distinct published strings, sorted ("" = none, code 0)
      host.npy          int32[N]   host code of passage N (N = store idx = FAISS id)
      published.npy     int32[N]   published code (sorted table, so date ranges are code ranges)
      languages.json    language table, code -> ISO 639 code of the document ("" = unknown, code 0)
      language.npy      int16[N]   language code of passage N (the document's `metadata.language`)
      ids.bin, ids_off.npy         passage ids (utf-8, concatenated) and int64[N+1] offsets
      ids_hash.npy, ids_pos.npy    sorted 64-bit hashes of the ids and their positions (id -> position)
      text_hash.npy     uint64[N]  `text_hash` of passage N's text: equal for copies of one text, so a result
                                   list can show each text once (builds before it lack the file: no collapse)

Tier and category are not stored: they come from the authority list, which may change without a
re-index, and are mapped per host code (a small table) when a build is opened.
"""

from __future__ import annotations

import hashlib
import json
import re
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from indexer.domains import host_of
from indexer.errors import IndexFormatError
from indexer.language import normalise as normalise_language

COLUMNS_DIR = "columns"
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def id_hash(passage_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(passage_id.encode("utf-8"), digest_size=8).digest(), "little")


def id_hashes(passage_ids: Sequence[str]) -> np.ndarray:
    """`id_hash` of many ids as uint64, the digests joined and read in one numpy call (~20% less per id)."""
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(p.encode("utf-8"), digest_size=8).digest() for p in passage_ids])
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def text_hash(text: str) -> int:
    """64-bit hash of a passage's text as copies of it compare: casefolded, runs of whitespace (line
    breaks, indentation, Unicode spaces) as one space, leading and trailing whitespace dropped. Nothing
    else is normalised (punctuation, digits, Unicode forms stay as they are), so two texts that
    hash alike read alike; two different texts hash alike with odds of 1 in 2^64 a pair."""
    normalised = " ".join(text.casefold().split())
    return int.from_bytes(hashlib.blake2b(normalised.encode("utf-8"), digest_size=8).digest(), "little")


def raw_host(url: str | None, domain: str | None) -> str:
    """The most specific host a document names (its URL's over its domain); "" = none."""
    value = url or domain
    return (host_of(value) or "") if value else ""


def date_token(published: str | None) -> str:
    """8-digit YYYYMMDD (00 for a missing month/day) for the Lucene date field; "x" if not ISO."""
    if not published:
        return ""
    m = _ISO.match(published)
    if not m:
        return "x"
    return m.group(1) + (m.group(2) or "00") + (m.group(3) or "00")


class ColumnWriter:
    """Streams per-passage columns while a build reads its corpus (a few bytes per passage)."""

    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._hosts: dict[str, int] = {"": 0}
        self._dates: dict[str, int] = {"": 0}
        self._host = array("i")
        self._published = array("i")
        self._languages: dict[str, int] = {"": 0}
        self._language = array("h")
        self._hash = array("Q")
        self._text_hash = array("Q")
        self._offsets = array("q", [0])
        self._ids: IO[bytes] = open(directory / "ids.bin", "wb")

    def add(self, url: str | None, domain: str | None, published: str | None, passage_ids: list[str],
            language: object = None, texts: Sequence[str] | None = None) -> None:  # fmt: skip
        """Record one document's passages, in store order (`language`: its `metadata.language`; `texts`:
        the passages' texts, one per id; None: each hashed as a text of its own, never a copy)."""
        host = self._hosts.setdefault(raw_host(url, domain), len(self._hosts))
        date = self._dates.setdefault(published or "", len(self._dates))
        lang = self._languages.setdefault(normalise_language(language) or "", len(self._languages))
        for pid in passage_ids:
            data = pid.encode("utf-8")
            self._ids.write(data)
            self._offsets.append(self._offsets[-1] + len(data))
            self._hash.append(id_hash(pid))
        self._host.extend([host] * len(passage_ids))
        self._published.extend([date] * len(passage_ids))
        self._language.extend([lang] * len(passage_ids))
        if texts is None:  # no text given: distinct per passage (the id's hash), so nothing collapses
            self._text_hash.extend(self._hash[len(self._hash) - len(passage_ids) :])
        else:
            if len(texts) != len(passage_ids):
                raise ValueError(f"{len(texts)} passage texts for {len(passage_ids)} passage ids")
            self._text_hash.extend([text_hash(t) for t in texts])

    def close(self) -> None:
        self._ids.close()
        d = self.dir
        (d / "hosts.json").write_text(json.dumps(list(self._hosts), ensure_ascii=False), encoding="utf-8")
        # Re-code dates in sorted order so "published between" is a contiguous code range.
        dates = sorted(self._dates)
        new_code = {value: code for code, value in enumerate(dates)}  # "" sorts first: stays code 0
        rank = np.array([new_code[value] for value in self._dates], dtype=np.int32)  # old code -> new
        (d / "published.json").write_text(json.dumps(dates, ensure_ascii=False), encoding="utf-8")
        np.save(d / "host.npy", np.frombuffer(self._host, dtype=np.int32))
        np.save(d / "published.npy", rank[np.frombuffer(self._published, dtype=np.int32)])
        (d / "languages.json").write_text(json.dumps(list(self._languages), ensure_ascii=False), encoding="utf-8")
        np.save(d / "language.npy", np.frombuffer(self._language, dtype=np.int16))
        np.save(d / "ids_off.npy", np.frombuffer(self._offsets, dtype=np.int64))
        np.save(d / "text_hash.npy", np.frombuffer(self._text_hash, dtype=np.uint64))
        hashes = np.frombuffer(self._hash, dtype=np.uint64)
        order = np.argsort(hashes, kind="stable")
        np.save(d / "ids_hash.npy", hashes[order])
        np.save(d / "ids_pos.npy", order.astype(np.int32 if len(order) < 2**31 else np.int64))


class Columns:
    """Read side: the arrays memory-mapped (pages load on touch), the two small tables in memory."""

    def __init__(self, directory: Path):
        self.dir = directory
        try:
            self.hosts: list[str] = json.loads((directory / "hosts.json").read_text(encoding="utf-8"))
            self.published: list[str] = json.loads((directory / "published.json").read_text(encoding="utf-8"))
            # Plain ndarray views of the memory maps: numpy.memmap's own indexing costs ~5x more per access.
            load = lambda name: np.load(directory / name, mmap_mode="r").view(np.ndarray)  # noqa: E731
            self.host, self.published_code = load("host.npy"), load("published.npy")
            self._off, self._hash, self._pos = load("ids_off.npy"), load("ids_hash.npy"), load("ids_pos.npy")
            if (directory / "language.npy").exists():
                self.languages: list[str] = json.loads((directory / "languages.json").read_text(encoding="utf-8"))
                self.language = load("language.npy")
            else:  # built before the language column: every passage's language is unknown
                self.languages, self.language = [""], np.zeros(len(self.host), dtype=np.int16)
            # Builds before the text hash column: None, result lists are not collapsed by text.
            self.text_hash = load("text_hash.npy") if (directory / "text_hash.npy").exists() else None
            self._ids = memoryview(np.memmap(directory / "ids.bin", dtype=np.uint8, mode="r")) if self._off[-1] else None
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"unreadable passage columns: {exc}", where=str(directory)) from None
        lengths = {len(self.host), len(self.published_code), len(self.language), len(self._hash), len(self._off) - 1}
        if self.text_hash is not None:
            lengths.add(len(self.text_hash))
        if len(lengths) != 1:
            raise IndexFormatError("passage columns disagree in length", where=str(directory))
        # A short ids.bin cuts its last ids off, which then match no filter. The map's length is the file's
        # size: nothing is read.
        if self._ids is not None and len(self._ids) != self._off[-1]:
            raise IndexFormatError(f"passage columns disagree: ids.bin has {len(self._ids)} bytes, its offsets "
                                   f"(ids_off.npy) end at {int(self._off[-1])}", where=str(directory))  # fmt: skip

    def __len__(self) -> int:
        return len(self.host)

    def passage_id(self, position: int) -> str:
        lo, hi = int(self._off[position]), int(self._off[position + 1])
        return str(self._ids[lo:hi], "utf-8") if self._ids is not None else ""

    @property
    def id_bytes(self) -> np.ndarray | None:
        """The passage ids' UTF-8 bytes, concatenated (ids.bin; None if empty), between `id_offsets`."""
        return None if self._ids is None else np.frombuffer(self._ids, dtype=np.uint8)

    @property
    def id_offsets(self) -> np.ndarray:
        """int64[N+1]: passage N's id is `id_bytes[id_offsets[N]:id_offsets[N + 1]]`."""
        return self._off

    def passage_ids(self, positions: Sequence[int]) -> list[str]:
        """`passage_id` of each position, the offsets read in one numpy call."""
        if self._ids is None:
            return [""] * len(positions)
        at = np.asarray(positions, dtype=np.int64)
        ids = self._ids
        return [str(ids[lo:hi], "utf-8") for lo, hi in zip(self._off[at].tolist(), self._off[at + 1].tolist())]

    def positions(self, passage_ids: Sequence[str]) -> np.ndarray:
        """Positions of many passage ids that came from this build (its retrievers' hits), at once:
        int64, -1 for an id whose hash the build does not have.

        One searchsorted over all hashes; an id is compared with the stored ones only when its hash
        occurs more than once in the table (a 64-bit collision between two of the build's ids).
        For ids from outside (a user's input), use `position`, which compares every id."""
        n = len(passage_ids)
        if n == 0 or len(self._hash) == 0:
            return np.full(n, -1, dtype=np.int64)
        wanted = id_hashes(passage_ids)
        at = np.minimum(np.searchsorted(self._hash, wanted), len(self._hash) - 1)
        found = self._hash[at] == wanted
        out = np.where(found, self._pos[at], -1).astype(np.int64)
        nxt = np.minimum(at + 1, len(self._hash) - 1)
        shared = found & (nxt != at) & (self._hash[nxt] == wanted)
        for i in np.flatnonzero(shared).tolist():
            pos = self.position(passage_ids[i])
            out[i] = -1 if pos is None else pos
        return out

    def position(self, passage_id: str) -> int | None:
        """Position (store idx, FAISS id) of a passage id; None if the build has no such passage."""
        h = np.uint64(id_hash(passage_id))
        i = int(np.searchsorted(self._hash, h))
        while i < len(self._hash) and self._hash[i] == h:  # 64-bit collisions are checked, not assumed away
            pos = int(self._pos[i])
            if self.passage_id(pos) == passage_id:
                return pos
            i += 1
        return None
