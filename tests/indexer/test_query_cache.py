"""The caches keyed by query text hold a bounded amount of memory, however many distinct long queries
a serving process sees. Each kept its last 1,024 or 4,096 queries with what it computed from them: a
10,000-character query is 40 KB as a Python string once one character is outside the BMP, and its
snippet stems as much again, ~240 MB per worker after a few thousand distinct long queries."""

from __future__ import annotations

import gc
import random
import tracemalloc

from indexer.language import query_languages
from ranker import snippets

WORDS = "statin therapy reduces cardiovascular events in patients with elevated cholesterol levels".split()


def long_queries(n: int, seed: int = 1):
    """`n` distinct ~10,000-character queries, made one at a time (only the caches keep them)."""
    rnd = random.Random(seed)
    for i in range(n):
        words = [f"{rnd.choice(WORDS)}{rnd.randrange(10**6)}" for _ in range(1200)]
        yield f"𝔮{i} " + " ".join(words)[:9990]


def retained_bytes(call, n: int = 600) -> int:
    """Bytes still allocated after `call` ran over `n` distinct long queries (after one to warm it up)."""
    call(next(long_queries(1, seed=99)))  # loads what the function loads once (the language classifier)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for query in long_queries(n):
            call(query)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_snippet_stems_of_long_queries_are_not_kept_per_query():
    snippets._sorted_stems.cache_clear()
    # ~75 KB a query: 45 MB for 600 queries when each is kept
    assert retained_bytes(snippets._sorted_stems) < 20 << 20


def test_query_languages_of_long_queries_are_not_kept_per_query():
    query_languages.cache_clear()
    # ~40 KB a query: 24 MB for 600 queries when each is kept
    assert retained_bytes(query_languages) < 12 << 20


def test_a_long_query_is_still_answered_from_the_cache_within_a_request():
    query = next(long_queries(1, seed=2))
    assert snippets._sorted_stems(query) is snippets._sorted_stems(query)
    assert snippets._matcher(query, ignore_case=True) is snippets._matcher(query, ignore_case=True)
    assert query_languages(query) is query_languages(query)
