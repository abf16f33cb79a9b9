"""Rows of a 2-D `.npy` file read on demand with `pread` (IVF-PQ's exact re-score, the embedding
cache's shards), and written at their positions with `pwrite` (a build's passage vectors).

A memory map of the exact vectors (1.5 KB per passage) would be the simpler reader, but every query
reads a few hundred scattered rows and the kernel's readahead and fault-around map their
neighbours too: after ~50 queries the whole file (1.5 GB at 1M passages) counted in the serving
process's RSS. Read with `pread`, the pages stay in the shared page cache and the process holds only
the rows it asked for (docs/BENCHMARKS.md, issue 10).
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np


def runs(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of consecutive positions starts (an index into `positions`) and its length."""
    starts = np.flatnonzero(np.diff(positions, prepend=-2) != 1)
    return starts, np.diff(starts, append=len(positions))


class RowFile:
    """Read-only rows of a C-ordered 2-D .npy array; safe to share between threads."""

    _fd = -1  # until the file is open (a header that fails to parse leaves nothing to close)

    def __init__(self, path: Path, start: int = 0):
        """`start`: where the .npy data begins in the file (0, or a member's offset in an .npz)."""
        with open(path, "rb") as f:
            f.seek(start)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            self._offset = f.tell()
        if len(shape) != 2 or fortran:
            raise ValueError(f"expected a C-ordered 2-D array, got shape {shape}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        if start == 0 and (size := os.path.getsize(path)) < self._offset + self.shape[0] * self._row_bytes:
            raise ValueError(f"{path.name} is cut short: {size} bytes, its header says {self._offset + self.shape[0] * self._row_bytes}")
        self._fd = os.open(path, os.O_RDONLY)

    @classmethod
    def in_npz(cls, path: Path, name: str) -> "RowFile":
        """The array `name` of an uncompressed .npz (`np.savez`), read in place."""
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{name} is compressed in {path}")
        with open(path, "rb") as f:  # the data follows the member's local header, whose lengths can differ from the central one
            f.seek(info.header_offset)
            local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"no local header for {name} in {path}")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        return cls(path, start=info.header_offset + 30 + name_length + extra_length)

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The rows at `positions` (ascending, read-only), one read per run of consecutive positions."""
        positions = np.asarray(positions, dtype=np.int64)
        if not len(positions):
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        if positions[0] < 0 or positions[-1] >= self.shape[0]:
            raise IndexError(f"row positions outside 0..{self.shape[0] - 1}")
        starts, counts = runs(positions)
        offsets = self._offset + positions[starts] * self._row_bytes
        data = b"".join([os.pread(self._fd, n, offset)
                         for offset, n in zip(offsets.tolist(), (counts * self._row_bytes).tolist())])  # fmt: skip
        if len(data) != len(positions) * self._row_bytes:
            raise OSError(f"short read of the exact vectors: {len(data)} of {len(positions) * self._row_bytes} bytes")
        return np.frombuffer(data, dtype=self.dtype).reshape(len(positions), self.shape[1])

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()


class RowWriter:
    """Writes rows of a new (n, d) float32 .npy file at their positions (`pwrite`: nothing is mapped)."""

    def __init__(self, path: Path, n: int, d: int):
        header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))  # sparse file + header
        self._offset, self._row_bytes = int(header.offset), d * 4
        del header
        self._fd = os.open(path, os.O_WRONLY)
        self.written = 0

    def write(self, positions: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(positions, kind="stable")
        positions, rows = positions[order], np.ascontiguousarray(rows[order], dtype=np.float32)
        starts, counts = runs(positions)
        for start, count in zip(starts.tolist(), counts.tolist()):
            os.pwrite(self._fd, rows[start : start + count].tobytes(), self._offset + int(positions[start]) * self._row_bytes)
        self.written += len(positions)

    def close(self) -> None:
        os.close(self._fd)
