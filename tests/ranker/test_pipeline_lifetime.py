"""SearchPipeline as a library in a long-lived process: `with` closes it, close releases its files and
maps, a closed or inherited (forked) pipeline refuses in one line, and misuse says what is wrong."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import pickle
import threading
import time
import weakref

import pytest

from indexer.build import build_index
from indexer.errors import ConfigError, IndexClosed, QueryError
from indexer.settings import BuildSettings, DenseSettings
from ranker.pipeline import SearchOptions, SearchPipeline


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from tests.text_fixtures import DOCS

    tmp = tmp_path_factory.mktemp("lifetime")
    corpus = tmp / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    build_index([corpus], tmp / "idx", BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False)))
    return tmp / "idx"


def mapped_files_under(folder) -> set[str]:
    with open("/proc/self/maps") as maps:
        return {line.split(maxsplit=5)[5].strip() for line in maps if str(folder) in line}


def test_with_block_closes_and_any_later_use_is_index_closed(root):
    with SearchPipeline.open(root) as p:
        assert p.search("lava magma")[0].hit.doc_id == "volcano"
        passage_id = p.search("lava magma")[0].hit.passage_id
    assert p.closed
    for use in (lambda: p.search("lava"), lambda: p.rank(["lava"]), lambda: p.batch_search(["lava", "jazz"]),
                lambda: p.document("volcano"), lambda: p.passage(passage_id)):  # fmt: skip
        with pytest.raises(IndexClosed, match="search pipeline is closed"):
            use()
    p.close()  # a second close does nothing


def test_close_releases_memory_maps_while_the_object_is_still_referenced(root):
    p = SearchPipeline.open(root)
    p.search("glacier ice")  # maps the passage columns
    assert mapped_files_under(p.build_dir)
    p.close()
    assert mapped_files_under(p.build_dir) == set()


def test_what_searches_held_when_a_reload_opened_is_released_when_the_old_pipeline_closes(root):
    """Every open froze the objects alive then (`backends.heap`), those of the searches in flight too: a
    search cut by its deadline during a reload kept, through its exception's traceback, the replaced
    build's memory maps for good (an open file and a mapping per such search, after a prune too)."""
    from ranker.budget import DeadlineExceeded

    def search_cut_by_its_deadline(p: SearchPipeline):
        columns = p.sources.columns  # noqa: F841 - what a search's frame holds
        try:
            raise DeadlineExceeded("the deadline passed")
        except DeadlineExceeded as exc:
            cut = exc  # its traceback holds this frame, which holds it: a cycle only the collector frees
        return cut

    old = SearchPipeline.open(root)
    old.search("glacier ice")  # maps the passage columns
    in_flight = search_cut_by_its_deadline(old)
    reloaded = SearchPipeline.open(root)  # opened while that search is in flight (it freezes what is alive)
    del in_flight  # the search ends
    columns = old.build_dir / "columns"  # the reloaded pipeline (the same build here) maps its Lucene files, not these
    assert mapped_files_under(columns)
    old.close()
    assert mapped_files_under(columns) == set()
    reloaded.close()


def helper_threads() -> int:
    """Native threads of the project's Java helper (its pool ends them soon after close, not at once)."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                count += comm.read().startswith("drsearch")
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return count


def our_counts() -> tuple[int, int, int]:
    """Open files, Python threads (the Lucene leg's pool among them) and, once they have ended, the
    Java helper's threads (other native threads, such as the JVM's compiler threads, come and go)."""
    for _ in range(200):
        if not helper_threads():
            break
        time.sleep(0.05)
    return len(os.listdir("/proc/self/fd")), threading.active_count(), helper_threads()


def test_open_and_close_many_times_leaves_no_files_or_threads_behind(root):
    with SearchPipeline.open(root) as p:  # the JVM and its own threads start with the first open
        p.search("tides")
    before = our_counts()
    for _ in range(30):
        with SearchPipeline.open(root) as p:
            p.batch_search(["tides moon", "bread yeast", "chess opening"])
    assert our_counts() == before


def test_a_pipeline_dropped_without_close_releases_its_files_and_threads(root):
    with SearchPipeline.open(root) as p:
        p.search("tides")
        build_dir = p.build_dir
    before = our_counts()
    with pytest.warns(ResourceWarning, match="unclosed SearchPipeline"):
        for _ in range(5):
            SearchPipeline.open(root).batch_search(["tides moon", "bread yeast"])
            gc.collect()
    assert our_counts() == before
    assert mapped_files_under(build_dir) == set()


def test_an_open_refused_for_its_authority_list_leaves_nothing_open(root, tmp_path):
    from ranker.settings import SearchSettings

    (tmp_path / "domains.csv").write_text("not a header\n")
    with SearchPipeline.open(root) as p:
        p.search("tides")
        build_dir = p.build_dir
    before = our_counts()
    for _ in range(3):
        with pytest.raises(ConfigError, match="domains.csv:1"):
            SearchPipeline.open(root, SearchSettings(authority_list=str(tmp_path)))
    assert our_counts() == before
    assert mapped_files_under(build_dir) == set()


def test_close_releases_the_query_encoder(tmp_path):
    from tests.text_fixtures import DOCS

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    build_index([corpus], tmp_path / "idx", BuildSettings(chunk_words=0, quiet=True))
    p = SearchPipeline.open(tmp_path / "idx")
    assert p.search("lava erupting from a vent", SearchOptions(mode="dense"))[0].hit.doc_id == "volcano"
    encoder = weakref.ref(p.vector._model)
    p.close()
    gc.collect()
    assert encoder() is None


def test_two_indexes_searched_from_several_threads_at_once_each_give_their_own_hits(root, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from tests.multilingual_texts import DOCS as MULTILINGUAL

    corpus = tmp_path / "multilingual.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "language": lang, "title": t, "url": u, "text": x}, ensure_ascii=False) + "\n"
                              for i, lang, t, u, x in MULTILINGUAL))  # fmt: skip
    build_index([corpus], tmp_path / "idx", BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False)))
    with SearchPipeline.open(root) as english, SearchPipeline.open(tmp_path / "idx") as multilingual:
        jobs = [(english, q) for q in ("lava magma", "yeast dough", "moon tides", "chess defence")]
        jobs += [(multilingual, title) for _, _, title, _, _ in MULTILINGUAL]

        def ids(job):
            pipeline, query = job
            return [r.hit.passage_id for r in pipeline.search(query, SearchOptions(k=3))]

        alone = [ids(job) for job in jobs]
        assert all(alone)
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(ids, jobs * 5))
        assert together == alone * 5


def test_close_while_other_threads_search_gives_them_results_or_index_closed(root):
    p = SearchPipeline.open(root)
    outcomes: list[object] = []
    started = threading.Barrier(5)

    def search_until_closed() -> None:
        started.wait(timeout=30)
        for _ in range(2000):
            try:
                assert p.batch_search(["volcano lava", "jazz swing"])[0]
            except Exception as exc:  # noqa: BLE001 - the kind of error is what is checked
                outcomes.append(exc)
                return
        outcomes.append("never closed")

    threads = [threading.Thread(target=search_until_closed) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait(timeout=30)
    p.close()
    for t in threads:
        t.join(timeout=60)
    assert [type(o).__name__ for o in outcomes] == ["IndexClosed"] * 4


def test_batch_search_refuses_one_string(root):
    with SearchPipeline.open(root) as p:
        for call in (p.batch_search, p.rank):
            with pytest.raises(QueryError, match="list of strings") as err:
                call("tides")  # type: ignore[arg-type]
            assert err.value.field == "queries"


def test_pickling_says_to_open_in_each_process(root):
    with SearchPipeline.open(root) as p:
        with pytest.raises(TypeError, match="SearchPipeline.open in each process"):
            pickle.dumps(p)


def _in_forked_child(work, timeout: float = 30) -> str:
    """What `work` raised in a forked child, as 'Type: message' (or 'ok'); fails if the child hangs."""
    reader, writer = multiprocessing.Pipe(duplex=False)

    def child() -> None:
        try:
            work()
            writer.send("ok")
        except Exception as exc:  # noqa: BLE001
            writer.send(f"{type(exc).__name__}: {exc}")

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail("the forked child hung")
    return reader.recv()


def test_forked_child_is_refused_in_one_line_instead_of_hanging(root):
    with SearchPipeline.open(root) as p:
        p.search("sleep memory")  # the JVM runs in this process
        inherited = _in_forked_child(lambda: p.batch_search(["sleep memory", "bitcoin ledger", "tennis set"]))
        assert inherited.startswith(f"{IndexClosed.__name__}: ") and "'spawn'" in inherited and "\n" not in inherited
        reopened = _in_forked_child(lambda: SearchPipeline.open(root).search("sleep"))
        assert reopened.startswith(f"{ConfigError.__name__}: ") and "'spawn'" in reopened and "\n" not in reopened
        assert p.search("sleep memory", SearchOptions(k=1))[0].hit.doc_id == "sleep"  # the parent searches on


def test_a_leg_held_past_close_refuses_and_opens_nothing_again(scifact_flat_index):
    p = SearchPipeline.open(scifact_flat_index)
    vectors = p.encode(["statins and heart disease"])
    lexical, dense = p.lexical, p.dense
    p.close()
    assert mapped_files_under(p.build_dir) == set()
    for use in (lambda: dense.search_vectors(vectors, 2), lambda: dense.encode(["statins"]),
                lambda: lexical.search(["statins"], 3), lambda: lexical.doc_freqs(["statin"])):  # fmt: skip
        with pytest.raises(IndexClosed, match="leg was closed"):
            use()
    assert mapped_files_under(p.build_dir) == set()  # the vector leg reloaded its index and kept it mapped


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_partial_results_at_a_deadline_passed_before_anything_ran_are_empty_flagged_lists(scifact_flat_index, mode):
    with SearchPipeline.open(scifact_flat_index) as p:
        options = SearchOptions(mode=mode, deadline=time.monotonic() - 1, partial=True)
        assert [(len(r), r.partial) for r in p.batch_search(["statins", "vitamin D"], options)] == [(0, True), (0, True)]


def test_encode_reads_the_query_as_rank_does(scifact_flat_index):
    query = "  eﬃcacy of statins\u00ad and heart disease "  # a ligature, a soft hyphen and spaces: cleaned before encoding
    with SearchPipeline.open(scifact_flat_index) as p:
        assert p.rank([query], SearchOptions(mode="dense"), vectors=p.encode([query])) == p.rank([query], SearchOptions(mode="dense"))
        with pytest.raises(QueryError, match="not one string"):
            p.encode(query)
        with pytest.raises(QueryError, match="must be a string") as caught:
            p.encode(["statins", None])
        assert caught.value.field == "queries[1]"


def test_arguments_of_the_wrong_type_are_type_errors(root):
    from ranker.settings import SearchSettings

    with pytest.raises(TypeError, match="settings must be a SearchSettings, not dict"):
        SearchPipeline.open(root, {"bm25_threads": 1})
    with SearchPipeline.open(root) as p:
        with pytest.raises(TypeError, match="options must be a SearchOptions, not NoneType"):
            p.rank(["lava"], None)
        for fetch, name in ((p.document, "doc_id"), (p.passage, "passage_id")):
            with pytest.raises(TypeError, match=f"{name} must be a string, not int"):
                fetch(4983)
            assert fetch("volcano\ud800") is None  # no stored id holds a lone surrogate
    assert SearchSettings(fusion="rrf").fusion == "rrf"


@pytest.mark.parametrize("make", [
    lambda: __import__("ranker.settings", fromlist=["SearchSettings"]).SearchSettings(fusoin="rrf"),
    lambda: DenseSettings(enable=False),
    lambda: BuildSettings(chunk_word=0),
    lambda: DenseSettings(batch_size=0),
    lambda: DenseSettings(max_length=-1),
    lambda: DenseSettings(device="tpu"),  # failed inside the model's loading, reported as a bad model folder
], ids=["search-typo", "dense-typo", "build-typo", "batch-size", "max-length", "device"])  # fmt: skip
def test_a_misspelt_or_impossible_setting_fails_where_it_is_made(make):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make()


def test_build_index_given_one_path_says_it_wants_a_list(tmp_path):
    from indexer.errors import CorpusError

    with pytest.raises(CorpusError, match="must be a list of paths, not one path"):
        build_index(str(tmp_path / "docs.jsonl"), tmp_path / "idx", BuildSettings(quiet=True))
    assert not (tmp_path / "idx").exists()
