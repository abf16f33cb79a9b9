"""Per-passage source columns: written while reading, memory-mapped back, id <-> position exact."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.columns import ColumnWriter, Columns, date_token, id_hash, id_hashes, raw_host, text_hash
from indexer.errors import IndexFormatError


def test_round_trip_positions_hosts_and_sorted_dates(tmp_path):
    w = ColumnWriter(tmp_path)
    w.add("https://WWW.Stats.gov.cn/sj/", None, "2021-03-04", ["a#0", "a#1"])
    w.add(None, "who.int", None, ["b#0"])
    w.add("https://data.worldbank.org/x", "worldbank.org", "1999", ["c#0", "c#1", "c#2"])
    w.add(None, None, "2021-03-04T10:00:00Z", ["d#0"])
    w.close()
    cols = Columns(tmp_path)
    assert len(cols) == 7
    ids = ["a#0", "a#1", "b#0", "c#0", "c#1", "c#2", "d#0"]
    assert [cols.passage_id(i) for i in range(7)] == ids
    assert [cols.position(p) for p in ids] == list(range(7))
    assert cols.position("a#2") is None
    assert [cols.hosts[c] for c in cols.host] == ["www.stats.gov.cn"] * 2 + ["who.int"] + ["data.worldbank.org"] * 3 + [""]
    published = [cols.published[c] for c in cols.published_code]
    assert published == ["2021-03-04"] * 2 + [""] + ["1999"] * 3 + ["2021-03-04T10:00:00Z"]
    assert cols.published == sorted(cols.published)  # a date range is a range of codes
    assert isinstance(cols.host.base, np.memmap)  # a plain view of the file's pages, not a copy
    # The bulk forms agree with the one-at-a-time ones.
    assert cols.passage_ids([6, 0, 3]) == ["d#0", "a#0", "c#0"]
    assert cols.positions(ids[::-1] + ["a#2"]).tolist() == list(range(6, -1, -1)) + [-1]


def test_positions_resolve_a_shared_hash_by_comparing_ids(tmp_path, monkeypatch):
    import indexer.columns as columns

    def colliding(pid: str) -> int:
        return 7 if pid in ("x#0", "y#0") else len(pid)

    monkeypatch.setattr(columns, "id_hash", colliding)
    monkeypatch.setattr(columns, "id_hashes", lambda pids: np.array([colliding(p) for p in pids], dtype=np.uint64))
    w = ColumnWriter(tmp_path)
    w.add(None, "a.org", None, ["x#0", "y#0", "longer#0"])
    w.close()
    cols = Columns(tmp_path)
    assert cols.positions(["y#0", "x#0", "longer#0"]).tolist() == [1, 0, 2]


def test_an_id_file_shorter_than_its_offsets_is_refused(tmp_path):
    """Otherwise its last ids read back cut short or empty, and match no filter."""
    w = ColumnWriter(tmp_path)
    w.add(None, "a.org", None, ["first#0", "second#0"])
    w.close()
    with open(tmp_path / "ids.bin", "r+b") as fh:
        fh.truncate(3)
    with pytest.raises(IndexFormatError, match=r"ids\.bin has 3 bytes, its offsets \(ids_off\.npy\) end at 15"):
        Columns(tmp_path)


def test_bulk_id_hashes_equal_the_single_ones():
    ids = ["a#0", "PMID:123#17", "文档#3", "é" * 300 + "#0", "x"]
    assert id_hashes(ids).tolist() == [id_hash(p) for p in ids]
    assert id_hashes([]).dtype == np.uint64 and len(id_hashes([])) == 0


def test_tokens():
    assert raw_host("https://user@Example.ORG.:8080/p", None) == "example.org"
    assert raw_host(None, "Who.int") == "who.int" and raw_host(None, None) == ""
    assert [date_token(d) for d in ("2020-05-12T00:00Z", "2020-05", "2020", "May 2020", None)] == [
        "20200512", "20200500", "20200000", "x", ""]  # fmt: skip


def test_text_hash_column_equal_for_copies_in_other_case_and_spacing(tmp_path):
    """Copies compare casefolded with whitespace collapsed, nothing more; passages added without their
    texts never count as copies; a build without the file reads as None (no collapse)."""
    w = ColumnWriter(tmp_path)
    w.add(None, "imf.org", None, ["a#0", "a#1"], texts=["About the Fund.\nThe IMF works.", "Body of a."])
    w.add(None, "mirror.net", None, ["b#0"], texts=["  ABOUT the   fund. the imf\u00a0works.\n"])
    w.add(None, "other.org", None, ["c#0", "c#1"], texts=["About the Fund. The IMF works!", "Body of a"])
    w.add(None, "old.org", None, ["d#0", "d#1"])
    w.close()
    cols = Columns(tmp_path)
    h = cols.text_hash.tolist()
    assert h[0] == h[2] == text_hash("about the fund. the imf works.")
    assert len(set(h)) == len(h) - 1  # punctuation counts ("!", no final "."); passages without texts are distinct
    assert isinstance(cols.text_hash.base, np.memmap)
    (tmp_path / "text_hash.npy").unlink()
    assert Columns(tmp_path).text_hash is None


def test_a_text_hash_column_of_another_length_is_refused(tmp_path):
    w = ColumnWriter(tmp_path)
    w.add(None, "a.org", None, ["a#0", "a#1"], texts=["one", "two"])
    w.close()
    np.save(tmp_path / "text_hash.npy", np.zeros(3, dtype=np.uint64))
    with pytest.raises(IndexFormatError, match="passage columns disagree in length"):
        Columns(tmp_path)

