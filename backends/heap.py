"""Keep Python's cyclic garbage collector off the objects a serving process holds for its lifetime.

A process that has loaded the query encoder tracks ~500,000 container objects (torch, transformers,
the tokenizer, the JVM bridge's classes). Every full collection walks all of them, and a hybrid query
allocates enough small objects (hits, id lists, tokenizer output) to trigger one every few queries:
on SciFact that was ~1 ms of a ~3 ms query (docs/BENCHMARKS.md, issue 14). `gc.freeze()` moves the
objects alive now to a permanent generation that collections skip; objects created later are
collected as before. Called once the long-lived state exists: after an encoder loads and after a
pipeline opens; and after a pipeline closes.

Cyclic garbage that exists at the moment of the call is collected first, the objects frozen by
earlier calls included. A pipeline opened by a reload froze what the searches in flight then held (a
deadline's exception and its traceback, holding memory maps of the build being replaced), and that was
never collected: an open file and a mapping per such search and reload, kept after a prune removed the
build. Once the old pipeline has closed its searches have ended, and the call after its close collects
what they held.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect what is garbage now (frozen earlier or not), then exclude every surviving object from
    future collections."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
