"""SearchPipeline: the one place that composes retrieval, fusion, filters, authority and formatting.

The CLI, the HTTP service and evaluation all call it; none of them re-implements ranking.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from itertools import accumulate, islice
from pathlib import Path
from typing import Any

import numpy as np

from backends import registry
from backends.base import LEXICAL, VECTOR, Leg, LexicalRetriever, VectorRetriever
from backends.heap import freeze_long_lived
from backends.hit import Hit
from backends.manifest import Manifest
from backends.threads import Later, budget
from indexer import layout
from indexer.columns import COLUMNS_DIR, Columns
from indexer.errors import IndexFormatError, QueryError
from indexer.language import ANY, covered, query_languages
from indexer.store import PassageRow, Store
from ranker import budget as deadlines
from ranker import kernels
from ranker.budget import RankedList
from ranker.candidates import Candidates, convex_arrays, convex_positions_many, first_copies, per_run, ties_by_id
from ranker.filters import SourceFilter, SourceMeta, diversify
from ranker.fusion import MIN_SPAN_OF_SCALE, span_floor
from ranker.lifetime import Lifetime
from ranker.options import SearchOptions
from ranker.query import CleanQuery, clean_query, surrogate_at, termless_error
from ranker.settings import Mode, SearchSettings
from ranker.sources import SourceTable

TIER_PRIOR = {1: 1.0, 2: 0.5, 3: 0.25}  # authority score in [0, 1] by tier; unlisted = 0
_PRIOR_BY_TIER = np.array([0.0] + [TIER_PRIOR.get(t, 0.0) for t in range(1, 128)])  # indexed by tier (int8)
_NO_TEXT_KEYS = np.zeros(0, dtype=np.uint64)  # `ranker.kernels`: no collapse by text
_NO_TEXT_KEYS.flags.writeable = False  # read-only, as the memory-mapped column it stands for (one compiled form)


def _spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The normalisation's range per candidate: hi - lo, or the floor of the scores' scale if larger
    (`fusion.span_floor`, as each leg's is before fusion)."""
    with np.errstate(invalid="ignore"):  # infinite scores: nan, treated as unscaled
        return np.maximum(hi - lo, span_floor(lo, hi))


def _reranked(scores: np.ndarray, fused: np.ndarray, prior: np.ndarray, counts: list[int],
              id_of: Callable[[int], str], nearest: np.ndarray | None = None,
              window: int = 0) -> tuple[list[list[int]], np.ndarray]:  # fmt: skip
    """For queries whose candidates lie one after another in the arrays (`counts` each): each
    query's order (indices into its own candidates) by final score = its relevance min-max
    normalised (over at least `MIN_SPAN_OF_SCALE` of the scores' scale) + `prior`, then fused
    score, then passage id (`id_of` of a flat index); and the final scores. `nearest`, given with a
    `window`: each candidate's best position in any leg; those within the first `window` of a leg
    set the normalisation's bounds and rank before the others, which were found deeper only to fill
    a page (collapse and filters thin lists; pages go past the window) and rank by that position:
    so each candidate keeps its place when a list goes deeper."""
    if nearest is not None:
        in_window = nearest <= window
        deeper = ~in_window
        lo = per_query(np.minimum, np.where(in_window, scores, np.inf), counts)
        span = _spans(lo, per_query(np.maximum, np.where(in_window, scores, -np.inf), counts))
        scaled = (span > 0) & np.isfinite(span)
        relevance = np.where(in_window, 1.0, 0.0)  # all equal within the window: 1, deeper 0
        relevance[scaled] = (scores[scaled] - lo[scaled]) / span[scaled]
        return _ordered(relevance + prior, fused, counts, id_of, first=[deeper, np.where(deeper, nearest, 0)])
    if len(counts) == 1:  # a single search (callers pass none empty): the same steps without the per-query bookkeeping
        lo = np.minimum.reduce(scores)
        span = float(_spans(lo, np.maximum.reduce(scores)))
        relevance = (scores - lo) / span if span > 0 and np.isfinite(span) else np.ones(len(scores))
        final = relevance + prior
        by_final, by_fused = -final, -fused
        return [ties_by_id(np.lexsort((by_fused, by_final)), [by_final, by_fused], id_of).tolist()], final
    lo = per_query(np.minimum, scores, counts)
    span = _spans(lo, per_query(np.maximum, scores, counts))
    relevance = np.ones(len(scores))
    scaled = (span > 0) & np.isfinite(span)  # all equal, or infinite scores: relevance 1
    relevance[scaled] = (scores[scaled] - lo[scaled]) / span[scaled]
    return _ordered(relevance + prior, fused, counts, id_of)


def per_query(reduce: np.ufunc, values: np.ndarray, counts: list[int]) -> np.ndarray:
    """`reduce` of `values` over each query's candidates (`counts` each, one after another), repeated to each."""
    sizes = np.asarray(counts)
    return per_run(reduce, values, sizes, np.cumsum(sizes) - sizes)


def _ordered(final: np.ndarray, fused: np.ndarray, counts: list[int], id_of: Callable[[int], str],
             first: Sequence[np.ndarray] = ()) -> tuple[list[list[int]], np.ndarray]:  # fmt: skip
    """`_reranked`'s orders by the keys `first` (most significant first), then final score, then
    fused score, then passage id; and `final`."""
    firsts = (np.cumsum(counts) - counts).tolist()
    keys = [*first, -final, -fused]
    # A small sort per query: 3x faster than one sort of the whole batch by (query, final, fused).
    orders = [np.lexsort([key[a:a + n] for key in reversed(keys)]) for a, n in zip(firsts, counts)]
    order = np.concatenate([o + a for o, a in zip(orders, firsts)])
    order = ties_by_id(order, [np.repeat(np.arange(len(counts)), counts), *keys], id_of)
    return [(order[a:a + n] - a).tolist() for a, n in zip(firsts, counts)], final


def _rebuilt(candidates: list[Hit], order: list[int], final: np.ndarray, prior: np.ndarray, fused: list) -> Iterator[Hit]:
    """The candidates' `Hit`s in `order`, ranked 1.., with their final score, prior and fused score,
    each built only when taken (lean `Candidates` build theirs with `Candidates.hits`)."""
    for rank, i in enumerate(order, 1):
        h = candidates[i]
        f = fused[i]
        yield Hit(h.passage_id, h.doc_id, float(final[i]), rank, h.bm25, h.dense, None if f is None else float(f),
                  float(prior[i]), h.bm25_rank, h.dense_rank)  # fmt: skip


Collapse = Callable[[list[int], np.ndarray], list[int]]  # (order, the candidates' positions) -> order


@dataclass(frozen=True)
class TextCollapse:
    """A `Collapse`: `order` with each text once, at its best-ranked copy (`first_copies`), the
    candidates' texts known by their column positions (`text_keys`: `SearchPipeline.text_hashes`);
    unchanged if a position is unknown (never in a consistent build). `passing` (with source filters):
    the exact filter at positions; a candidate it drops (a leg may return some: the post-filter's) is
    dropped here, so that it cannot stand for a copy that passes."""

    text_keys: np.ndarray
    passing: Callable[[np.ndarray], np.ndarray] | None = None

    def __call__(self, order: list[int], positions: np.ndarray) -> list[int]:
        if len(positions) and np.minimum.reduce(positions) < 0:
            return order
        if self.passing is not None:
            order = np.asarray(order, dtype=np.int64)
            order = order[self.passing(positions[order])].tolist()
        return first_copies(order, self.text_keys[positions])


# A search mode is the set of legs it fuses.
MODE_LEGS: dict[str, tuple[Leg, ...]] = {"bm25": (LEXICAL,), "dense": (VECTOR,), "hybrid": (LEXICAL, VECTOR)}
MODES: tuple[str, ...] = tuple(MODE_LEGS)
NO_VECTOR_LEG = "index was built without the dense leg: use mode bm25, or rebuild it with dense vectors (index build without --no-dense)"


def _query_texts(queries: list[str]) -> list[str]:
    """Each query's text as the legs search it, or QueryError naming the query. Options were checked when
    constructed; query text is checked here unless the edge already did. Backends get plain `str`
    (pyjnius refuses str subclasses)."""
    if isinstance(queries, str):  # a str is a sequence too: each character would be searched
        raise QueryError("queries must be a list of strings, not one string (search() takes one query)", field="queries")
    return [str(q if type(q) is CleanQuery else clean_query(q, field=f"queries[{i}]" if len(queries) > 1 else "query"))
            for i, q in enumerate(queries)]  # fmt: skip


def _storable_id(value: object, name: str) -> bool:
    """Whether `value` could name something in the store (ids are UTF-8 text: a lone surrogate names
    nothing); TypeError for a value that is no id at all."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return surrogate_at(value) is None


def _has_lexical(candidates) -> bool:
    """Whether the lexical leg contributed any candidate (none: the query may have no searchable term)."""
    return candidates.has_lexical if isinstance(candidates, Candidates) else any(h.bm25 for h in candidates)


@dataclass(frozen=True)
class Result:
    """A hit with what a caller shows: the passage, its document's fields and authority."""

    hit: Hit
    passage: PassageRow
    authority: Any | None  # ranker.authority.AuthorityEntry


def _check_store_extent(manifest: Manifest, store: Store, where: Path) -> None:
    """Refuse a store whose document or passage count is not the manifest's (e.g. one copied from
    another build: its passage ids are not the ones the legs return). `Store.extent` is cheap."""
    from indexer.damage import LegError

    for name, found in zip(("documents", "passages"), store.extent):
        expected = manifest.counts.get(name)
        if isinstance(expected, int) and not isinstance(expected, bool) and expected != found:
            raise LegError("store", f"has {found} {name}, the manifest says {expected} (a store from another build?)", str(where))


def _close_parts(legs: dict[Leg, Any], store: Store) -> None:
    for leg in legs.values():
        leg.close()
    store.close()


def _close_collected(legs: dict[Leg, Any], store: Store, where: str) -> None:
    warnings.warn(f"unclosed SearchPipeline over {where}: close it, or open it in a with block", ResourceWarning, stacklevel=1)
    _close_parts(legs, store)


class SearchPipeline:
    """Receives its legs (a lexical retriever, optionally a vector retriever) and the build's store.

    Thread-safe: one open pipeline serves searches from many threads. `close()` (or leaving a `with`
    block) waits for the searches in flight, then releases the JVM-side readers, the SQLite connection
    and the memory maps; any use afterwards, or in a process forked from the one that opened it,
    raises `IndexClosed`."""

    # Hybrid convex fusion on the legs' raw (ids, scores) lists (`ranker.candidates`) where both legs
    # offer them; False runs the same ranking through a `Hit` per candidate (`fusion.convex`).
    lean_fusion: bool = True
    # A single ASCII hybrid query's language checked once it is encoded, after its BM25 leg
    # (False: before it is encoded, as every other query's).
    speculate_language: bool = True

    def __init__(
        self,
        build_dir: Path,
        manifest: Manifest,
        store: Store,
        legs: dict[Leg, Any],
        settings: SearchSettings | None = None,
        *,
        authority=None,
    ):
        from ranker.authority import AuthorityList

        if LEXICAL not in legs:
            raise IndexFormatError("build has no lexical leg", where=str(build_dir))
        self.settings = settings or SearchSettings()
        self.build_dir = build_dir
        self.manifest = manifest
        # The list is loaded (and validated) before anything else so a bad list refuses to start.
        self.authority = authority or AuthorityList.load(self.settings.authority_list)
        self.store = store
        self.legs = legs
        self.lexical: LexicalRetriever = legs[LEXICAL]
        self.vector: VectorRetriever | None = legs.get(VECTOR)
        self._lock = threading.Lock()
        self._sources: SourceTable | None = None
        self._lifetime = Lifetime(str(build_dir))
        # A pipeline dropped without close() still releases its readers, threads and files.
        self._collected = weakref.finalize(self, _close_collected, legs, store, str(build_dir))
        self._collected.atexit = False  # at exit the JVM and the process go anyway

    @classmethod
    def open(cls, index: str | Path, settings: SearchSettings | None = None, **kwargs: Any) -> "SearchPipeline":
        """The pipeline over an index ROOT or build directory, with the legs its manifest names.

        A damaged build (a file truncated or overwritten, a store copied from another build) is refused
        with a one-line `IndexFormatError` naming the leg, the file and the first line of the cause
        (`indexer.damage`), as `serve` refuses it."""
        from indexer.damage import read_leg
        from indexer.errors import DrsearchError

        settings = settings or SearchSettings()
        if not isinstance(settings, SearchSettings):  # read inside the legs' opening, it would read as damage
            raise TypeError(f"settings must be a SearchSettings, not {type(settings).__name__}")
        build_dir = layout.resolve_build(index)
        manifest = Manifest.read(build_dir)
        store_path = build_dir / layout.STORE
        store = read_leg("store", store_path, lambda: Store(store_path), keep=(DrsearchError,))
        try:
            _check_store_extent(manifest, store, store_path)
            backends = "+".join(str(getattr(manifest.section(leg), "backend", leg)) for leg in manifest.legs)
            legs = read_leg(
                backends, build_dir, lambda: registry.open_legs(build_dir, manifest, threads=settings.bm25_threads or budget()),
                keep=(DrsearchError,),
            )  # fmt: skip
        except BaseException:
            store.close()
            raise
        try:
            pipeline = cls(build_dir, manifest, store, legs, settings, **kwargs)
        except BaseException:  # e.g. a bad authority list: what was opened is closed
            _close_parts(legs, store)
            raise
        freeze_long_lived()  # the open pipeline lives as long as its process (backends.heap)
        return pipeline

    # ---- lifetime --------------------------------------------------------------------
    def __enter__(self) -> "SearchPipeline":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self):
        raise TypeError("a SearchPipeline holds open files and Java readers and cannot be pickled: "
                        "pass the index path and call SearchPipeline.open in each process")  # fmt: skip

    @property
    def closed(self) -> bool:
        return self._lifetime.closed

    def close(self) -> None:
        """Close the legs, the store and the passage columns once the searches in flight have ended.
        Closing again does nothing."""
        if not self._lifetime.end():
            return
        self._collected.detach()
        _close_parts(self.legs, self.store)
        with self._lock:
            self._sources = None  # its memory maps are released with the arrays
        freeze_long_lived()  # what its searches held when a later pipeline opened and froze it is garbage now

    # ---- properties ------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def has_dense(self) -> bool:
        return self.vector is not None

    @property
    def default_mode(self) -> Mode:
        return self.settings.mode if self.has_dense else "bm25"

    @property
    def dense(self) -> VectorRetriever:
        """The vector leg, or the one-line "built without the dense leg" error."""
        if self.vector is None:
            raise IndexFormatError(NO_VECTOR_LEG, where=str(self.build_dir), field="mode")
        return self.vector

    def needs_vectors(self, mode: str | None) -> bool:
        """Whether searching in `mode` (None: the default) runs the vector leg."""
        return VECTOR in MODE_LEGS.get(mode or self.default_mode, ())

    def encode(self, queries: list[str]) -> Any:
        """Query vectors for `rank(..., vectors=)`, so a caller can encode many calls' queries at once:
        of the query text as `rank` reads it (`clean_query`), so that the vectors are the ones it would make."""
        texts = _query_texts(queries)
        with self._lifetime.use():
            return self.dense.encode(texts)

    @property
    def sources(self) -> SourceTable:
        """Per-passage source facts from the build's memory-mapped columns (opened on first use)."""
        if self._sources is None:
            self._lifetime.check()
            with self._lock:
                if self._sources is None:
                    directory = self.build_dir / COLUMNS_DIR
                    if not directory.is_dir():
                        hint = layout.rebuild_hint(self.build_dir, layout.read_manifest(self.build_dir))
                        message = f"index was built by an older drsearch (no passage columns); {hint}"
                        raise IndexFormatError(message, where=str(self.build_dir))
                    self._sources = SourceTable(Columns(directory), self.authority)
        return self._sources

    @property
    def text_hashes(self) -> np.ndarray | None:
        """Per passage position, the hash of its normalised text (`indexer.columns.text_hash`), by which
        result lists show each text once; None for a build made before that column (or before the
        columns): its lists are not collapsed by text."""
        if self._sources is None and not (self.build_dir / COLUMNS_DIR).is_dir():
            return None
        return self.sources.columns.text_hash

    def source_meta(self, passage_id: str) -> SourceMeta | None:
        return self.sources.meta_of(passage_id)

    def authority_of(self, passage_id: str):
        meta = self.source_meta(passage_id)
        return self.authority.lookup(meta.host) if meta and meta.host else None

    # ---- ranking ---------------------------------------------------------------------
    def resolve_mode(self, mode: str | None) -> Mode:
        mode = mode or self.default_mode
        if mode not in MODE_LEGS:
            raise QueryError(f"unknown mode '{mode}' (expected one of: {', '.join(MODES)})", field="mode")
        for leg in MODE_LEGS[mode]:
            if leg not in self.legs:
                raise IndexFormatError(NO_VECTOR_LEG, where=str(self.build_dir), field="mode")
        return mode  # type: ignore[return-value]

    def rank(self, queries: list[str], options: SearchOptions = SearchOptions(), vectors=None,
             undated: list[int] | None = None) -> list[list[Hit]]:  # fmt: skip
        """Ranked hits per query, after fusion, authority, filters and diversity; no store reads.

        `vectors` (one row per query, from `encode`) lets a caller encode the queries
        of many calls in one batch; without it they are encoded here, once. `undated`, when given,
        receives per query how many candidate documents a date filter dropped for having no date.
        """
        if not isinstance(options, SearchOptions):
            raise TypeError(f"options must be a SearchOptions, not {type(options).__name__}")
        texts = _query_texts(queries)
        with self._lifetime.use():
            return self._rank(texts, options, vectors, undated)

    def _rank(self, texts: list[str], options: SearchOptions, vectors, undated: list[int] | None) -> list[list[Hit]]:
        mode = self.resolve_mode(options.mode)
        legs = MODE_LEGS[mode]
        if LEXICAL not in legs:  # no lexical run to tell us; ask the analyzer (one call per query)
            self._refuse_termless(texts, range(len(texts)))
        filters = options.filters
        if vectors is not None and len(vectors) != len(texts):
            raise ValueError(f"{len(vectors)} query vectors for {len(texts)} queries")
        # A single ASCII query is taken to be in a language the dense model covers (nearly always so)
        # and checked after its BM25 leg, which thus starts beside the encode without waiting (below).
        speculative = self.speculate_language and mode == "hybrid" and len(texts) == 1 and texts[0].isascii() and vectors is None
        modes = [mode] if speculative else [self.mode_used(t, mode) for t in texts]
        # A caller who names the domains wants results from them, however many per domain.
        max_per_domain = None if filters.include_domains else options.max_per_domain
        per_doc = self.settings.per_doc if options.per_doc is None else options.per_doc
        weight = self.settings.authority_weight if options.authority_weight is None else options.authority_weight
        fusion_name = options.fusion or self.settings.fusion
        # Copies of one text (a site's boilerplate under every page, a report mirrored) shown once.
        text_keys = self.text_hashes if options.dedupe_text else None
        collapse: Collapse | None = None
        if text_keys is not None:
            collapse = TextCollapse(text_keys, self.sources.passing(filters) if filters.active else None)
        size = self.lexical.size
        cap = max(options.k, options.max_candidates or self.settings.max_candidates)  # hard bound on work per query
        k0 = options.k0 or self.settings.k0
        thinned = bool(filters.active or max_per_domain or per_doc or collapse)  # lists searched 3k deep to fill k

        def depth_for(k: int) -> int:
            return min(size, cap, max(k0, k * 3 if thinned else k))

        depth = depth_for(options.k)
        # Only each leg's first `window` hits score, as deep as the page's own first page searches:
        # what a page's offset, or a refill, adds ranks after them, so pages never repeat or skip a hit.
        window = depth_for(options.page_size or options.k)
        results: list[list[Hit] | None] = [None] * len(texts)
        first_depth = depth
        pending = list(range(len(texts)))
        so_far: dict[int, RankedList] = {}  # best list of each pending query yet (returned if the deadline passes)
        lexical_ahead = checked = None
        encode = vectors is None and any(VECTOR in MODE_LEGS[m] for m in modes)  # once, not again when a list is deepened
        if encode and options.partial and deadlines.passed(options.deadline):  # nothing ranked in time: flagged empty lists
            results, pending, encode = [RankedList.of([], examined=0, exhausted=False, partial=True) for _ in texts], [], False
        if encode:
            deadlines.check(options.deadline, "before encoding the queries")
            if len(set(modes)) == 1 and not filters.active and self._lean(MODE_LEGS[modes[0]], fusion_name) and budget() > 1:
                # Queries are encoded on threads that leave gaps (a single query's many short steps, the
                # last runs of a batch's): their BM25 leg runs there, started by the encoder (`on_idle`).
                lexical_ahead = getattr(self.lexical, "search_positions_later", lambda *_: None)(texts, depth)
            if speculative and lexical_ahead is not None:
                # One query's leg searches on a Java thread, and the check follows on this thread once
                # the leg is done: on a Python thread beside the encode it cost new queries more
                # (docs/BENCHMARKS.md, issue 14).
                checked = lexical_ahead.also(partial(self.mode_used, texts[0], mode))
            elif speculative:  # no thread beside the encode: checked first, as every other query
                modes = [self.mode_used(texts[0], mode)]
            vectors = self._encode_some(texts, [i for i, m in enumerate(modes) if VECTOR in MODE_LEGS[m]],
                                        None if lexical_ahead is None else lexical_ahead.start)  # fmt: skip
        while pending:
            if deadlines.passed(options.deadline):
                if not options.partial:
                    deadlines.check(options.deadline, f"before candidates of depth {depth}")
                for i in pending:
                    results[i] = so_far.get(i) or RankedList.of([], examined=0, exhausted=False, partial=True)
                break
            runs: dict[int, tuple[list[Hit], bool]] = {}
            deeper = window if depth > window else None  # the window, where the lists go past it
            for m in dict.fromkeys(modes[i] for i in pending):  # one batch per mode used, usually one
                group = [i for i in pending if modes[i] == m]
                runs.update(zip(group, self._retrieve([texts[i] for i in group], MODE_LEGS[m], depth, fusion_name,
                                                      None if vectors is None else vectors[group], filters,
                                                      lexical_ahead, deeper)))  # fmt: skip
            lexical_ahead = None  # for the first depth only
            still: list[int] = []
            # An empty lexical run may mean the query has no searchable term at all.
            self._refuse_termless(texts, [i for i in pending if LEXICAL in MODE_LEGS[modes[i]] and not _has_lexical(runs[i][0])])
            lean = [i for i in pending if isinstance(runs[i][0], Candidates)]  # reranked together, as arrays
            reranked = dict(zip(lean, self._authority_rerank_many([runs[i][0] for i in lean], weight, deeper,
                                                                  collapse)))  # fmt: skip
            for i in pending:
                candidates, exhausted = runs[i]
                if not options.partial:  # reranking 64 deep lists takes seconds: stop between queries too
                    deadlines.check(options.deadline, "while ranking")
                ranked = reranked[i] if i in reranked else self._authority_rerank(
                    candidates, weight, fused_by_score=len(MODE_LEGS[modes[i]]) > 1, window=deeper, collapse=collapse)
                if filters.active:
                    accepts, meta = filters.accepts, self.source_meta
                    ranked = (h for h in ranked if accepts(h.passage_id, meta(h.passage_id)))
                if per_doc or max_per_domain:
                    ranked = diversify(ranked, self.source_meta, per_doc=per_doc, max_per_domain=max_per_domain)
                top = list(islice(ranked, options.k))  # hits after the first k that survive are never built
                if any(h.rank != r for r, h in enumerate(top, 1)):
                    top = [h._replace(rank=r) for r, h in enumerate(top, 1)]  # filters or caps left gaps
                complete = len(top) >= options.k or exhausted or depth >= size
                if complete or depth >= cap:
                    results[i] = RankedList.of(top, examined=len(candidates), exhausted=complete)
                else:
                    so_far[i] = RankedList.of(top, examined=len(candidates), exhausted=False, partial=True)
                    still.append(i)
            pending = still
            depth = min(size, cap, depth * 4)
        if checked is not None and checked.result() != mode:  # not covered after all: BM25 alone, as if checked first
            # (the encode was wasted: rare, a long ASCII query in a language the dense model lacks)
            return self.rank(texts, options.model_copy(update={"mode": "bm25"}), undated=undated)
        results = [r if r is not None else RankedList() for r in results]
        if undated is not None:
            undated[:] = [0] * len(texts)
            if filters.published_after or filters.published_before:
                if not deadlines.passed(options.deadline):
                    undated[:] = self._undated_dropped(texts, modes, first_depth, fusion_name, vectors, filters)
                else:  # ranked in time (allow_partial), but the lists' count of dropped undated documents is missing
                    for ranked in results:
                        ranked.partial = True
        return results

    def _undated_dropped(self, texts: list[str], modes: list[Mode], depth: int, fusion_name: str, vectors,
                         filters: SourceFilter) -> list[int]:  # fmt: skip
        """Per query, how many candidate documents the date bound drops for having no date: undated
        documents among the candidates the legs give with undated passages allowed. Searched apart
        from the ranking, whose legs never see an undated passage, so that counting cannot change it
        (undated candidates in the legs' lists would move every score's normalisation)."""
        undated_too, meta = replace(filters, include_undated=True), self.source_meta
        counts = [0] * len(texts)
        for m in dict.fromkeys(modes):
            group = [i for i, used in enumerate(modes) if used == m]
            runs = self._retrieve([texts[i] for i in group], MODE_LEGS[m], depth, fusion_name,
                                  None if vectors is None else vectors[group], undated_too)  # fmt: skip
            for i, (candidates, _) in zip(group, runs):
                counts[i] = len({h.doc_id for h in candidates if filters.drops_undated(meta(h.passage_id))})
        return counts

    @property
    def dense_languages(self) -> tuple[str, ...]:
        """Languages the vector leg's model covers (builds before they were recorded: any)."""
        section = self.manifest.dense
        return tuple(getattr(section, "languages", None) or [ANY])

    def mode_used(self, query: str, mode: Mode) -> Mode:
        """The mode a query runs in: hybrid falls back to BM25 alone for a query in a language the
        dense model does not cover (its vectors would only add noise)."""
        model = self.dense_languages
        if mode == "hybrid" and ANY not in model and not covered(query_languages(query), model):
            return "bm25"
        return mode

    def _encode_some(self, texts: list[str], which: list[int], on_idle: Callable[[], None] | None = None):
        """Query vectors, one row per text; only the rows in `which` are encoded (the rest stay zero).
        `on_idle`: for the encoder to call when it first leaves a core free (`VectorRetriever.encode`)."""
        encoded = self.dense.encode([texts[i] for i in which], on_idle=on_idle)
        if len(which) == len(texts):
            return encoded
        vectors = np.zeros((len(texts), encoded.shape[1]), dtype=encoded.dtype)
        vectors[which] = encoded
        return vectors

    def _refuse_termless(self, texts: list[str], which) -> None:
        """QueryError for the first query the analyzer leaves without terms (stopwords, operators, symbols)."""
        for i in which:
            if not self.lexical.terms(texts[i]):
                raise termless_error(f"queries[{i}]" if len(texts) > 1 else "query")

    def _lean(self, legs: tuple[Leg, ...], fusion_name: str) -> bool:
        """Whether these legs fuse on the lean path (`ranker.candidates`): hybrid, convex fusion."""
        return (self.lean_fusion and legs == (LEXICAL, VECTOR) and fusion_name not in ("rrf", "rescore")
                and hasattr(self.lexical, "search_raw") and hasattr(self.dense, "search_vectors_positions"))  # fmt: skip

    def _retrieve(self, queries: list[str], legs: tuple[Leg, ...], depth: int, fusion_name: str, vectors,
                  filters: SourceFilter, lexical_ahead: Later | None = None,
                  window: int | None = None) -> list[tuple[list[Hit], bool]]:  # fmt: skip
        """Per query: (fused candidates best first, whether every leg ran out before `depth`).
        Active filters reach the legs resolved against the build's columns, so they search only
        passages that can pass them (the post-filter in `rank` stays the exact check).
        `lexical_ahead`: these queries' unfiltered lexical positions at `depth`, computed beside the encoding.
        `window`: only each leg's first `window` hits score in the fusion (`ranker.fusion`)."""
        rescore = fusion_name == "rescore" and len(legs) > 1
        lexical_filter = vector_filter = filters if filters.active else None
        if filters.active:  # legs that take a Restriction get one; others (Elasticsearch) the filters
            restricts = [getattr(self.lexical, "restricts", False), getattr(self.vector, "restricts", False)]
            if any(restricts):
                positions = restricts[1] and VECTOR in legs and not rescore
                restriction = self.sources.restriction(filters, positions=positions)
                lexical_filter = restriction if restricts[0] else filters
                vector_filter = restriction if restricts[1] else filters
        if rescore:
            lexical = self.lexical.search(queries, depth, lexical_filter)
            return [(self._rescore(v, run), len(run) < depth) for v, run in zip(vectors, lexical)]
        if self._lean(legs, fusion_name):
            w = self.settings.dense_weight
            # The vector leg first: a lexical leg still running beside the encoding finishes meanwhile.
            dense_runs = self.dense.search_vectors_positions(vectors, depth, vector_filter)
            # (positions, scores) where the build has the doc-position map (None otherwise), else (ids, scores)
            if lexical_ahead is not None:
                lexical_runs = lexical_ahead.result()
            elif hasattr(self.lexical, "search_positions"):
                lexical_runs = self.lexical.search_positions(queries, depth, lexical_filter)
            else:
                lexical_runs = None
            if lexical_runs is None:
                lexical_runs = self.lexical.search_raw(queries, depth, lexical_filter)
            fused = self._fuse_positions(lexical_runs, dense_runs, [1.0 - w, w], window)
            return [(candidates, len(lex[0]) < depth and len(den[0]) < depth)
                    for candidates, lex, den in zip(fused, lexical_runs, dense_runs)]  # fmt: skip
        runs = [
            self.lexical.search(queries, depth, lexical_filter) if leg == LEXICAL
            else self.dense.search_vectors(vectors, depth, vector_filter)
            for leg in legs
        ]  # fmt: skip
        if len(runs) == 1:
            return [(run, len(run) < depth) for run in runs[0]]
        from ranker import fusion

        out = []
        for per_leg in zip(*runs):
            if fusion_name == "rrf":
                fused = fusion.rrf(list(per_leg), k=self.settings.rrf_k, window=window)
            else:
                w = self.settings.dense_weight
                fused = fusion.convex(list(per_leg), weights=[1.0 - w, w], window=window)
            out.append((fused, all(len(run) < depth for run in per_leg)))
        return out

    def _fuse_positions(self, lexical_runs: list, dense_runs: list, weights: list[float],
                        window: int | None = None) -> list[Candidates]:  # fmt: skip
        """Convex fusion of each query's Lucene run, (positions, scores) or (ids, scores), and FAISS run
        (positions, scores), keyed by column position, for the whole batch at once."""
        columns = self.sources.columns
        keyed, by_id = [], {}
        for i, (lexical, dense) in enumerate(zip(lexical_runs, dense_runs)):
            if not isinstance(lexical[0], np.ndarray):  # ids: looked up in the columns once
                positions = columns.positions(lexical[0])
                if len(positions) and positions.min() < 0:  # an id the columns lack (never for a consistent build)
                    by_id[i] = convex_arrays(lexical, (columns.passage_ids(dense[0].tolist()), dense[1]), weights, window)
                    positions = positions[:0]
                lexical = (positions, lexical[1][: len(positions)])
            keyed.append(lexical)
        fused = convex_positions_many(keyed, dense_runs, weights, columns.passage_id, window)
        return [by_id.get(i, candidates) for i, candidates in enumerate(fused)]

    def _rescore(self, vector, run: list[Hit]) -> list[Hit]:
        """Lexical candidates reordered by the vector leg's score for the query's `vector`."""
        if not run:
            return []
        scores = self.dense.scores_for(vector[None, :], [[h.passage_id for h in run]])[0]
        rescored = [h.with_(dense=float(s), fused=float(s), score=float(s)) for h, s in zip(run, scores)]
        rescored.sort(key=lambda h: (-h.score, h.bm25_rank or 0))
        return [h.with_(rank=r) for r, h in enumerate(rescored, 1)]

    def _authority_rerank(self, candidates: list[Hit], weight: float, *, fused_by_score: bool,
                          window: int | None = None, collapse: Collapse | None = None) -> Iterator[Hit]:  # fmt: skip
        """final = relevance normalised to [0, 1] over the candidates + weight x authority prior,
        ranked 1..n by final score (ties: fused score, then passage id). With a `window`, the
        normalisation's bounds are those of the candidates within the first `window` hits of a leg.
        `collapse` (`TextCollapse`) leaves out a candidate whose text a better-ranked one has.

        The prior is bounded by `weight`, so it reorders only hits whose relevance differs by
        less than `weight` (near-ties); weight 0 keeps the relevance order exactly.
        Scores, priors and the order are computed on arrays; a `Hit` is built only for each hit the
        caller takes from the returned iterator (usually the first k).
        """
        n = len(candidates)
        if not n:
            return iter(())
        scores = np.fromiter((h.score for h in candidates), dtype=np.float64, count=n)
        ids = [h.passage_id for h in candidates]
        fused = [h.fused if h.fused is not None else (h.score if fused_by_score else None) for h in candidates]
        fused_key = np.fromiter((0.0 if f is None else f for f in fused), dtype=np.float64, count=n)
        positions = self.sources.columns.positions(ids) if weight > 0 or collapse is not None else None
        prior = weight * _PRIOR_BY_TIER[self.sources.tiers_at(positions)] if weight > 0 else np.zeros(n)
        nearest = None
        if window is not None:
            missed = np.iinfo(np.int64).max
            nearest = np.fromiter((min(h.bm25_rank or missed, h.dense_rank or missed) for h in candidates), dtype=np.int64, count=n)
        (order,), final = _reranked(scores, fused_key, prior, [n], ids.__getitem__, nearest, window or 0)
        if collapse is not None:
            order = collapse(order, positions)
        return _rebuilt(candidates, order, final, prior, fused)

    def _authority_rerank_many(self, lists: list[Candidates], weight: float, window: int | None = None,
                               collapse: Collapse | None = None) -> list[Iterator[Hit]]:  # fmt: skip
        """`_authority_rerank` of each query's lean candidates, computed for the whole batch at once."""
        if len(lists) == 1 and window is None:
            ranked = self._rerank_compiled(lists[0], weight, collapse)
            if ranked is not None:
                return [ranked]
        counts = [len(c) for c in lists]
        if not sum(counts):
            return [iter(()) for _ in lists]
        scores = np.concatenate([c.score for c in lists])  # fused = score on this path
        positions = None
        if weight > 0 or collapse is not None:
            columns = self.sources.columns  # ids (rarely: lists not keyed by position) looked up once
            positions = np.concatenate([c.positions if c.positions is not None else columns.positions(c.ids)
                                        for c in lists])  # fmt: skip
        prior = weight * _PRIOR_BY_TIER[self.sources.tiers_at(positions)] if weight > 0 else np.zeros(len(scores))
        starts = [0, *accumulate(counts)][:-1]

        def id_of(j: int) -> str:  # read only for ties, rarely: the query found by bisection
            q = bisect_right(starts, j) - 1
            return lists[q].passage_id(j - starts[q])

        nearest = None if window is None else np.concatenate([c.nearest for c in lists])
        orders, final = _reranked(scores, scores, prior, counts, id_of, nearest, window or 0)
        if collapse is not None:
            orders = [collapse(order, positions[a:a + n]) for order, a, n in zip(orders, starts, counts)]
        return [c.hits(order, final[a:a + len(c)], prior[a:a + len(c)]) for c, order, a in zip(lists, orders, starts)]

    def _rerank_compiled(self, candidates: Candidates, weight: float, collapse: Collapse | None) -> Iterator[Hit] | None:
        """`_authority_rerank_many` of one search's candidates in one compiled call (`ranker.kernels`),
        where the kernels are on and the candidates keyed by column position and collapsed by text alone
        if at all; None otherwise."""
        compiled = kernels.active()
        if compiled is None:
            return None
        columns = self.sources.columns
        positions, id_bytes = candidates.positions, columns.id_bytes
        if positions is None or not len(positions) or id_bytes is None:
            return None
        if collapse is not None and not (isinstance(collapse, TextCollapse) and collapse.passing is None):
            return None
        text_keys = _NO_TEXT_KEYS if collapse is None else collapse.text_keys
        ok, final, prior, order = compiled.rerank_positions(
            np.ascontiguousarray(candidates.score, dtype=np.float64), np.ascontiguousarray(positions, dtype=np.int64),
            columns.host, self.sources.host_tiers, _PRIOR_BY_TIER, float(weight), MIN_SPAN_OF_SCALE, id_bytes,
            columns.id_offsets, text_keys)  # fmt: skip
        return candidates.hits(order.tolist(), final, prior) if ok else None

    # ---- results with content ----------------------------------------------------------
    def search(self, query: str, options: SearchOptions = SearchOptions()) -> list[Result]:
        return self.batch_search([query], options)[0]

    def batch_search(self, queries: list[str], options: SearchOptions = SearchOptions(), vectors=None,
                     undated: list[int] | None = None) -> list[list[Result]]:  # fmt: skip
        with self._lifetime.use():
            return self._with_content(self.rank(queries, options, vectors, undated), options)

    def _with_content(self, ranked: list[list[Hit]], options: SearchOptions) -> list[list[Result]]:
        if not options.partial:
            deadlines.check(options.deadline, "before reading the passages")
        ids = [h.passage_id for hits in ranked for h in hits]
        rows = self.store.passages_by_id(ids)
        authority = dict(zip(ids, self.sources.entries(ids)))
        return [
            hits.like(Result(hit=h, passage=rows[h.passage_id], authority=authority[h.passage_id]) for h in hits)
            for hits in ranked
        ]

    # ---- fetch by id (what the service shows besides search results) --------------------------
    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document's fields, full text and passages with offsets, and its authority entry; None if unknown."""
        if not _storable_id(doc_id, "doc_id"):
            return None
        with self._lifetime.use():
            doc = self.store.document(doc_id)
        if doc is not None:
            doc["authority"] = self._authority_dict(doc.get("url") or doc.get("domain"))
        return doc

    def passage(self, passage_id: str) -> dict[str, Any] | None:
        """One passage with its document's display fields and authority entry; None if unknown."""
        if not _storable_id(passage_id, "passage_id"):
            return None
        with self._lifetime.use():
            row = self.store.passage(passage_id)
        if row is None:
            return None
        out = row._asdict()
        out.pop("idx", None)
        out["authority"] = self._authority_dict(row.url or row.domain)
        return out

    def _authority_dict(self, host: str | None) -> dict[str, Any] | None:
        from ranker.format import authority_dict

        return authority_dict(self.authority.lookup(host)) if host else None

    @property
    def authority_info(self) -> dict[str, Any]:
        """The authority list this pipeline ranks with: content hash and number of entries."""
        return {"content_hash": getattr(self.authority, "content_hash", None), "entries": len(self.authority)}
