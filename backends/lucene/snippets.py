"""Snippets of many hits in one JVM call (`java/drsearch/Snippets.java`), where a JVM already runs.

ranker/snippets.py holds the reference implementation and decides what to send here; this module
only moves the texts across: their UTF-16LE in one byte array, one byte array out (a length per
hit, then the snippets). A snippet made in Python costs ~33 µs, mostly finding the query's word
starts; in Java ~6 µs a hit on one thread, JNI included, for the 320 hits of a 32-query response.
Java objects stay in this module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np

from backends.lucene import jvm
from backends.threads import budget

_lock = threading.Lock()
_helper = None  # drsearch.Snippets with its character classes set; False where the JVM lacks it


def available() -> bool:
    """Whether a JVM runs in this process (never starts one: a process without Lucene keeps Python's snippets)."""
    return jvm.running() and _helper is not False


def make(texts: list[str], query_of: list[int], stems: list[tuple[str, ...]], max_chars: int,
         classes: Callable[[], tuple[bytes, bytes]], threads: int | None = None) -> list[str | None] | None:  # fmt: skip
    """Per text (of query `query_of[i]`, whose stems are `stems[q]`) its snippet, or None where
    Python must compute it (a text with characters outside the BMP is not sent: Java would count
    its offsets in UTF-16 units); None for all when the JVM lacks the helper or the call fails
    (Python then makes them all, as it would without a JVM). `classes()` returns the character
    classes and lower cases that `Snippets.setClasses` takes, asked for once per process. A response
    of 64 hits or more is cut into parts made side by side on up to `threads` threads (default: the
    process's budget, `backends.threads`), Java helpers at the calling thread's niceness: a 32-query
    response's 320 hits in ~1.4 instead of ~1.9 ms on 2 cores, whose other core sat idle while a
    response was formatted (in a server, `_formatted` 4.3 against 5.1 ms)."""
    from jnius import JavaException

    helper = _snippets_class(classes)
    if helper is None:
        return None
    sent = list(range(len(texts)))
    joined = "".join(texts).encode("utf-16-le", "surrogatepass")
    if len(joined) != 2 * sum(map(len, texts)):  # some text reaches outside the BMP: leave it out
        sent = [i for i, t in enumerate(texts) if len(t.encode("utf-16-le", "surrogatepass")) == 2 * len(t)]
        joined = "".join(texts[i] for i in sent).encode("utf-16-le", "surrogatepass")
    out: list[str | None] = [None] * len(texts)
    if not sent:
        return out
    ends = np.cumsum([len(texts[i]) for i in sent]).tolist()
    flat = [s for per_query in stems for s in per_query]
    stem_ends = np.cumsum([len(per_query) for per_query in stems]).tolist()
    try:
        packed = helper.make(joined, ends, [query_of[i] for i in sent], flat, stem_ends, int(max_chars),
                             budget() if threads is None else int(threads), _niceness()).tostring()  # fmt: skip
    except JavaException:  # e.g. an OutOfMemoryError on a heap filled by other work
        return None
    n = len(sent)
    lengths = np.frombuffer(packed, dtype="<i4", count=n).tolist()
    body = packed[4 * n :].decode("utf-16-le")
    at = 0
    for i, length in zip(sent, lengths):
        if length >= 0:
            out[i] = body[at : at + length]
            at += length
    return out


def _niceness() -> int:
    """The calling thread's niceness (Linux: per thread), which the Java helpers it hands parts to share."""
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):  # pragma: no cover - platforms without per-thread priorities
        return 0


def _snippets_class(classes):
    global _helper
    if _helper is None:
        with _lock:
            if _helper is None:
                from jnius import JavaException

                try:
                    helper = jvm.autoclass("drsearch.Snippets")
                    helper.setClasses(*classes())
                    _helper = helper
                except JavaException:  # the JVM was started before ours, without the helper jar
                    _helper = False
    return _helper or None
