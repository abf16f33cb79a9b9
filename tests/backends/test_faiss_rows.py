"""RowFile: rows of an .npy file read with pread equal the array's rows, with runs of neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from backends.faiss.rows import RowFile


def test_rows_equal_the_arrays_rows(tmp_path):
    x = np.random.default_rng(3).standard_normal((1000, 24)).astype(np.float32)
    np.save(tmp_path / "v.npy", x)
    rows = RowFile(tmp_path / "v.npy")
    assert rows.shape == (1000, 24) and len(rows) == 1000
    for positions in ([0], [999], [3, 4, 5, 9, 500, 501, 999], list(range(1000)), sorted({7, 70, 700})):
        assert np.array_equal(rows.rows(np.array(positions)), x[positions])
    assert rows.rows(np.array([], dtype=np.int64)).shape == (0, 24)
    with pytest.raises(IndexError, match="outside 0..999"):
        rows.rows(np.array([5, 1000]))
    rows.close()


def test_only_two_dimensional_c_arrays(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(8, dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        RowFile(tmp_path / "v.npy")


def test_row_writer_puts_rows_at_their_positions_in_any_order(tmp_path):
    from backends.faiss.rows import RowWriter

    x = np.random.default_rng(4).standard_normal((50, 6)).astype(np.float32)
    writer = RowWriter(tmp_path / "w.npy", 50, 6)
    order = np.random.default_rng(5).permutation(50)
    for chunk in np.array_split(order, 7):  # scattered and partly consecutive positions
        writer.write(chunk, x[chunk])
    writer.close()
    assert writer.written == 50
    assert np.array_equal(np.load(tmp_path / "w.npy"), x)
    assert np.array_equal(RowFile(tmp_path / "w.npy").rows(np.arange(50)), x)
