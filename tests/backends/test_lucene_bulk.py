"""The bulk top-k read (backends.lucene.topk) returns Pyserini's hits exactly on a real collection,
at serving depth (k=100), single and batched, on one thread or several."""

from __future__ import annotations

import json

import pytest

from indexer import layout
from backends.lucene.searcher import LuceneSearcher
from tests.conftest import DATA

K = 100


@pytest.fixture(scope="module")
def lucene_dir(scifact_bm25_index):
    return scifact_bm25_index / layout.LUCENE_DIR


@pytest.fixture(scope="module")
def queries() -> list[str]:
    with open(DATA / "scifact" / "queries.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh][:150]


@pytest.fixture(scope="module")
def pyserini_runs(lucene_dir, queries) -> list[list[tuple[str, float]]]:
    LuceneSearcher(lucene_dir).close()  # our JVM bootstrap before Pyserini's import
    from pyserini.search.lucene import LuceneSearcher as PyseriniSearcher

    reference = PyseriniSearcher(str(lucene_dir))
    reference.set_bm25(0.9, 0.4)
    try:
        return [[(d.docid, d.score) for d in reference.search(q, k=K)] for q in queries]
    finally:
        reference.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_is_pyserini_hit_for_hit(lucene_dir, queries, pyserini_runs, threads: int) -> None:
    ours = LuceneSearcher(lucene_dir, threads=threads)
    try:
        assert ours._topk._arrays is not None  # the project's helper is on the JVM's classpath and in use
        batch = ours.search(queries, K)
        assert [[(h.passage_id, h.score) for h in hits] for hits in batch] == pyserini_runs
        assert sum(len(hits) == K for hits in batch) > len(batch) // 2  # serving depth, not a few hits
        assert [[(h.bm25, h.bm25_rank, h.rank) for h in hits] for hits in batch] == [
            [(s, r, r) for r, (_, s) in enumerate(run, 1)] for run in pyserini_runs
        ]
        assert ours.search([queries[7]], K) == [batch[7]]
    finally:
        ours.close()


def test_a_build_is_one_lucene_segment(lucene_dir) -> None:
    """Indexed on two threads, merged into one segment: each search walks one set of postings per term."""
    ours = LuceneSearcher(lucene_dir, threads=2)
    try:
        assert ours._topk._reader.leaves().size() == 1
        assert ours._topk._reader.numDocs() > 5000
    finally:
        ours.close()


def test_scores_with_equal_bm25_keep_anserini_tie_order(pyserini_runs) -> None:
    """The collection has equal-score hits; the parity above covers their order only if some exist."""
    tied = sum(1 for run in pyserini_runs for (_, a), (_, b) in zip(run, run[1:]) if abs(a - b) < 1e-4)
    assert tied > 0


@pytest.fixture(scope="module")
def tied_lucene_dir(tmp_path_factory: pytest.TempPathFactory):
    """Groups of identical documents (equal BM25 scores), added in an order unlike their ids' order."""
    from tests.service.conftest import build_tiny_index

    groups = [("glacier glacier ice", 12), ("glacier ice shelf melt", 30), ("glacier", 25)]
    docs = [{"id": f"{size:02d}-{chr(97 + (i * 7) % 26)}{i:03d}", "title": "", "text": text}
            for text, size in groups for i in range(size)]  # fmt: skip
    docs.reverse()
    docs += [{"id": f"other-{i}", "title": "", "text": f"ice shelf number {i} and a glacier valley"} for i in range(5)]
    root = build_tiny_index(tmp_path_factory.mktemp("tied"), docs, dense=False)
    return root / "current" / layout.LUCENE_DIR


@pytest.mark.parametrize("k", [1, 5, 11, 12, 13, 20, 42, 50, 67, 72, 100])
def test_ties_at_the_cut_rank_as_pyserini(tied_lucene_dir, k: int) -> None:
    # k inside a group of equal scores (the exact sort decides), at a group's edge and past the end
    ours = LuceneSearcher(tied_lucene_dir)
    from pyserini.search.lucene import LuceneSearcher as PyseriniSearcher

    reference = PyseriniSearcher(str(tied_lucene_dir))
    reference.set_bm25(0.9, 0.4)
    try:
        for query in ["glacier", "glacier ice", "ice shelf glacier", "melt"]:
            expected = [(d.docid, d.score) for d in reference.search(query, k=k)]
            assert [(h.passage_id, h.score) for h in ours.search([query], k)[0]] == expected, (query, k)
    finally:
        reference.close()
        ours.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_positions_name_the_same_hits_as_ids(lucene_dir, queries, threads: int) -> None:
    """A build writes lucene/doc_positions.npy; `search_positions` then gives each hit's column
    position (no id string from Java) for exactly the hits and scores `search_raw` gives."""
    from indexer.columns import COLUMNS_DIR, Columns

    assert (lucene_dir / "doc_positions.npy").is_file()
    columns = Columns(lucene_dir.parent / COLUMNS_DIR)
    ours = LuceneSearcher(lucene_dir, threads=threads)
    try:
        raw, positions = ours.search_raw(queries, K), ours.search_positions(queries, K)
        assert positions is not None and len(positions) == len(raw)
        for (ids, scores), (at, scored) in zip(raw, positions):
            assert at.dtype == "int64" and scored.dtype == "float32"
            assert columns.passage_ids(at.tolist()) == list(ids) and scored.tolist() == list(scores)
    finally:
        ours.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_ties_keep_their_order_as_positions(tied_lucene_dir, threads: int) -> None:
    """Alone (one query per Java call) and in a batch (one call for all, on the helper's threads,
    with queries that match nothing packed between them), the same hits in the same order."""
    from indexer.columns import COLUMNS_DIR, Columns

    columns = Columns(tied_lucene_dir.parent / COLUMNS_DIR)
    ours = LuceneSearcher(tied_lucene_dir, threads=threads)
    batch = ["glacier ice", "zyxwvut", "glacier", "qwertyuiop", "glacier ice"]
    try:
        for k in (5, 12, 13, 72):
            (ids, _), = ours.search_raw(["glacier ice"], k)
            (at, _), = ours.search_positions(["glacier ice"], k)
            assert columns.passage_ids(at.tolist()) == list(ids)
            together = ours.search_positions(batch, k)
            alone = [ours.search_positions([q], k)[0] for q in batch]
            assert [len(at) for at, _ in together] == [len(at) for at, _ in alone] and len(together[1][0]) == 0
            for (at, scores), (at_alone, scores_alone) in zip(together, alone):
                assert at.tolist() == at_alone.tolist() and scores.tolist() == scores_alone.tolist()
    finally:
        ours.close()


def test_build_without_the_position_map_searches_by_id(tmp_path, lucene_dir) -> None:
    """Builds made before the map (or whose map does not fit the index) still search: no positions."""
    import shutil

    copy = tmp_path / "lucene"
    shutil.copytree(lucene_dir, copy)
    (copy / "doc_positions.npy").unlink()
    ours = LuceneSearcher(copy)
    try:
        assert ours.search_positions(["tumour cells"], 5) is None and len(ours.search_raw(["tumour cells"], 5)[0][0]) == 5
    finally:
        ours.close()
    import numpy as np

    np.save(copy / "doc_positions.npy", np.arange(3, dtype=np.int32))  # the wrong length for this index
    ours = LuceneSearcher(copy)
    try:
        assert ours.search_positions(["tumour cells"], 5) is None
    finally:
        ours.close()


def test_no_position_map_when_the_columns_lack_the_index_ids(tmp_path, lucene_dir, tied_lucene_dir) -> None:
    import shutil

    from backends.lucene.writer import write_doc_positions
    from indexer.columns import COLUMNS_DIR, Columns

    copy = tmp_path / "lucene"
    shutil.copytree(lucene_dir, copy)
    (copy / "doc_positions.npy").unlink()
    assert write_doc_positions(copy, Columns(tied_lucene_dir.parent / COLUMNS_DIR)) is False
    assert not (copy / "doc_positions.npy").exists() and not (copy / "doc-ids.bin").exists()
    assert write_doc_positions(copy, Columns(lucene_dir.parent / COLUMNS_DIR)) is True
    assert (copy / "doc_positions.npy").read_bytes() == (lucene_dir / "doc_positions.npy").read_bytes()


def _on_threads(work, *args_per_thread) -> list:
    """`work(*args)` on a thread per args, with the GIL switching as often as it can (the race
    below needs a switch between a method's lookup and its call); their results, in order."""
    import sys
    import threading

    results: list = [None] * len(args_per_thread)

    def run(i: int) -> None:
        results[i] = work(*args_per_thread[i])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(args_per_thread))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    return results


def _as_lists(runs) -> list:
    return [(at.tolist(), scores.tolist()) for at, scores in runs]


def test_restricted_searches_on_several_threads_are_those_of_one(lucene_dir, queries) -> None:
    """Each thread builds its own restricted queries (BooleanQuery builders, term lists): pyjnius
    keeps an instance call's object on the method shared by all instances, so unguarded, a clause
    could land in another thread's query (an empty or doubly filtered result)."""
    from backends.base import Restriction

    ours = LuceneSearcher(lucene_dir, threads=2, filter_fields=("host", "date"))
    restriction = Restriction(exclude_hosts=(987654,))  # a host no passage has: the hits stay the same
    few = queries[:50]
    try:
        alone = _as_lists(ours.search_positions([q], 20, restriction)[0] for q in few)
        assert alone == _as_lists(ours.search_positions(few, 20))

        def each_alone(rounds: int) -> list:
            return [_as_lists(ours.search_positions([q], 20, restriction)[0] for q in few) for _ in range(rounds)]

        for per_thread in _on_threads(each_alone, *[(3,)] * 4):
            assert per_thread == [alone] * 3
    finally:
        ours.close()


def test_two_indexes_searched_at_once_each_give_their_own_hits(lucene_dir, tied_lucene_dir, queries) -> None:
    """Two open indexes (one swapped in while the other still serves), searched from several
    threads at once: every hit comes from the index asked."""
    big, small = LuceneSearcher(lucene_dir, threads=2), LuceneSearcher(tied_lucene_dir, threads=2)
    few = queries[:30] + ["glacier ice", "ice shelf glacier"]
    try:
        expected = {id(s): _as_lists(s.search_positions([q], 10)[0] for q in few) for s in (big, small)}
        assert expected[id(big)] != expected[id(small)]

        def each_alone(searcher) -> list:
            return [_as_lists(searcher.search_positions([q], 10)[0] for q in few) for _ in range(3)]

        pairs = [(big,), (small,), (big,), (small,)]
        for (searcher,), runs in zip(pairs, _on_threads(each_alone, *pairs)):
            assert runs == [expected[id(searcher)]] * 3
    finally:
        big.close()
        small.close()


def test_one_query_searched_ahead_on_a_java_thread(lucene_dir, tied_lucene_dir, queries) -> None:
    """`search_positions_later` of one query searches on the helper's Java thread: the hits of
    `search_positions`, ties included; started only by the thread that asked for it (a thread that
    calls Java stays attached to the JVM), else by `result`; follow-ups run after the search, a
    failing one failing only its own result; a search queued when the index closes fails rather
    than waiting for ever."""
    import threading

    from backends.lucene.topk import JavaLater

    ours, tied = LuceneSearcher(lucene_dir, threads=2), LuceneSearcher(tied_lucene_dir, threads=2)
    try:
        for searcher, few, k in ((ours, queries[:40], 100), (tied, ["glacier ice", "glacier", "zyxwvut"], 13)):
            for q in few:
                later = searcher.search_positions_later([q], k)
                assert isinstance(later, JavaLater)
                later.start()
                assert _as_lists(later.result()) == _as_lists(searcher.search_positions([q], k))

        later = ours.search_positions_later(queries[:1], 10)
        events: list[str] = []
        checked = later.also(lambda: events.append("follow-up") or "checked")
        failing = later.also(lambda: 1 / 0)
        stranger = threading.Thread(target=later.start)
        stranger.start()
        stranger.join(timeout=60)
        assert later._started is None and not events  # another thread's start leaves it unstarted
        assert checked.result() == "checked" and events == ["follow-up"]  # asking for a result starts it
        assert _as_lists(later.result()) == _as_lists(ours.search_positions(queries[:1], 10))
        with pytest.raises(ZeroDivisionError):
            failing.result()
        with pytest.raises(RuntimeError, match="after the search was started"):
            later.also(lambda: None)
        assert ours.search_positions_later(queries[:2], 10).__class__.__name__ == "Later"  # a batch: the Python pool
        single = LuceneSearcher(lucene_dir, threads=1)
        assert single.search_positions_later(queries[:1], 10) is None  # one thread: nothing to overlap
        single.close()

        queued = [ours.search_positions_later([q], 1000) for q in queries[:300]]
        for later in queued:
            later.start()
        ours._topk._helper_class.close(ours._topk._arrays)  # as closing the index does, searches still queued
        outcomes: list = []

        def collect() -> None:
            for later in queued:
                try:
                    outcomes.append(_as_lists(later.result()))
                except Exception as exc:  # noqa: BLE001 - the cancelled ones
                    outcomes.append(type(exc).__name__)

        waiter = threading.Thread(target=collect, daemon=True)
        waiter.start()
        waiter.join(timeout=120)
        assert len(outcomes) == len(queued)  # none waits for ever
        assert any(isinstance(o, str) for o in outcomes)  # some were still queued, and failed
    finally:
        ours.close()
        tied.close()
