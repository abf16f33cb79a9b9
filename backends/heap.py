"""Keep Python's cyclic garbage collector off the objects a serving process holds for its lifetime.

A process that has loaded the query encoder tracks ~500,000 container objects (torch, transformers,
the tokenizer, the JVM bridge's classes). Every full collection walks all of them, and a hybrid query
allocates enough small objects (hits, id lists, tokenizer output) to trigger one every few queries:
on SciFact that was ~1 ms of a ~3 ms query (docs/BENCHMARKS.md, issue 14). `gc.freeze()` moves the
objects alive now to a permanent generation that collections skip; objects created later are
collected as before. Called once the long-lived state exists: after an encoder loads and after a
pipeline opens. Cyclic garbage that exists at the moment of the call is collected first.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect what is garbage now, then exclude every surviving object from future collections."""
    gc.collect()
    gc.freeze()
