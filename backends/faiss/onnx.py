"""ONNX Runtime encoders for a sentence-transformers model: fp32 and int8 (dynamic quantisation).

The model is exported from its local weights on first use (torch.onnx, no download) as a graph
that gives each token's state; pooling (mean or CLS) and L2 normalisation run per text in numpy,
so a text's vector never depends on the texts run with it (see `OnnxEncoder.encode_each`). The
export is cached as

    $DRSEARCH_CACHE (default $XDG_CACHE_HOME/drsearch, else ~/.cache/drsearch)/onnx/<model key>/model.onnx, model-int8.onnx

written atomically, so concurrent first uses at worst export twice; the temporary file an export
killed before its rename leaves is removed by the next use. Where the default folder cannot be written,
the export goes to a folder of the process under TMPDIR (`exported_model`). `OnnxEncoder` offers the
part of the `SentenceTransformer` interface `backends.faiss.encoder` uses (encode, tokenizer,
max_seq_length, device, dimension), so the embedding cache works as with the torch encoder, and
`encode_each`, with which `backends.faiss.encoder` embeds queries and passages in small runs side
by side, each text's vector as if it ran alone. Nothing heavy is imported at module import.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import math
import os
import shutil
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from backends.faiss.model_files import model_digest
from backends.faiss.onnx_light import RustTokenizer, check_and_describe, read_description, recorded_length
from backends.threads import budget
from indexer.errors import ConfigError
from indexer.layout import remove_stale_temporaries
from indexer.process_dirs import new_process_dir
from indexer.settings import Encoder

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_GRAPH_FORMAT = "token-states"  # part of the cache key: exports that pooled inside the graph are not reused
# Texts of similar length share one run up to this many tokens (padding included): fewer, larger
# steps for short texts (fp32 queries in batches of 16-64: ~20 % less CPU than one text a run),
# while a long passage still runs alone, its activations in cache.
RUN_TOKENS = 128
RUN_OVERHEAD = 8  # a run's fixed cost (~400 graph nodes, each started once) in tokens' worth, measured on 2 cores
_export_lock = threading.Lock()
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """$DRSEARCH_CACHE, else $XDG_CACHE_HOME/drsearch (an absolute XDG_CACHE_HOME, as the XDG spec reads it),
    else ~/.cache/drsearch. Without a home (HOME unset and a user id with no passwd entry, as containers often
    run) a ConfigError asks for DRSEARCH_CACHE."""
    if env := os.environ.get("DRSEARCH_CACHE"):
        return Path(env)
    if (xdg := os.environ.get("XDG_CACHE_HOME")) and os.path.isabs(xdg):
        return Path(xdg) / "drsearch"
    try:
        return Path.home() / ".cache" / "drsearch"
    except RuntimeError:  # Path.home(): "Could not determine home directory."
        raise ConfigError("no home directory for the ONNX export cache (HOME is not set and this user has "
                          "none); set DRSEARCH_CACHE to a writable directory") from None  # fmt: skip


def _export_key(model_dir: Path) -> str:
    torch_version, onnxruntime_version = _versions()
    ident = {"files": model_digest(model_dir), "graph": _GRAPH_FORMAT,
             "torch": torch_version, "onnxruntime": onnxruntime_version}  # fmt: skip
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


@cache
def _versions() -> tuple[str, str]:
    """torch's and ONNX Runtime's versions, from their installed metadata: a query process that runs
    a cached export never imports torch (`OnnxEncoder.from_cache`)."""
    from importlib import metadata

    try:
        return metadata.version("torch"), metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:  # not installed as a distribution: ask the modules
        import onnxruntime
        import torch

        return torch.__version__, onnxruntime.__version__


def outside_pooling_problem(st_model: Any) -> str | None:
    """Why the encoders that pool outside the model (ONNX, bfloat16) would not give this model's
    vectors, or None. They run its transformer on the tokenizer's ids, then mean or CLS pooling and
    an optional L2 normalisation, nothing else: any other module (a Dense projection after pooling,
    as LaBSE, distiluse-* and sentence-t5 have) or pooling mode would be skipped or run wrongly."""
    modules = list(st_model)
    kinds = [type(m).__name__ for m in modules]
    if not kinds or kinds[0] != "Transformer":
        return f"its first module is {kinds[0] if kinds else 'missing'}, not a Transformer"
    if getattr(modules[0], "do_lower_case", False):
        return "its Transformer lower-cases texts before tokenising"
    if len(kinds) < 2 or kinds[1] != "Pooling":
        return "it has no Pooling module after its Transformer"
    if getattr(modules[1], "pooling_mode", None) not in ("mean", "cls"):
        return f"its pooling is {getattr(modules[1], 'pooling_mode', '?')!r} (mean or CLS only)"
    for i, kind in enumerate(kinds[2:], start=2):
        if kind != "Normalize" or i != len(kinds) - 1:
            return f"it has a {kind} module after pooling (module {i})"
    return None


def pooling_mode(st_model: Any, encoder: str) -> str:
    """The model's pooling, mean or CLS; a ConfigError (one line) for a model these encoders cannot
    run exactly (`outside_pooling_problem`)."""
    problem = outside_pooling_problem(st_model)
    if problem:
        raise ConfigError(f"--encoder {encoder} cannot run this model: {problem}; use --encoder st", field="encoder")
    return st_model[1].pooling_mode


def ends_normalized(st_model: Any) -> bool:
    """Whether the model ends in L2 normalisation (a Normalize module), which the encoders that pool
    outside the model apply themselves (`unit_rows`)."""
    return any(type(m).__name__ == "Normalize" for m in st_model)


def unit_rows(out: np.ndarray) -> np.ndarray:
    """`out` with each row L2-normalised in place, row by row: a row's result does not depend on the others."""
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def exported_model(st_model: Any, model_dir: Path, *, int8: bool) -> Path:
    """Path of the model's ONNX export (int8: dynamically quantised), exporting it on first use.

    Where the default cache cannot be used (a home the serving user cannot write, a read-only home, no
    home at all), the export goes to a folder of this process under TMPDIR, removed at exit, with a
    warning: searching still works, at the cost of one export (~1 s of CPU, ~90 MB) per process.
    A DRSEARCH_CACHE that cannot be made or written, or no usable folder at all, is a ConfigError
    (one line) naming the cache folder."""
    name = _export_name(model_dir)
    try:
        folder = cache_root() / "onnx" / name
        return _cached_export(folder, st_model, int8=int8)
    except (ConfigError, OSError) as exc:  # no home at all; a folder that cannot be made or written
        problem = exc if isinstance(exc, ConfigError) else ConfigError(
            f"cannot write the ONNX export cache ({exc.strerror or type(exc).__name__}); set DRSEARCH_CACHE to a "
            "writable directory", where=str(folder))  # fmt: skip
    if os.environ.get("DRSEARCH_CACHE"):  # the user's own choice of folder: say that it cannot be used
        raise problem
    try:
        target = _cached_export(_process_folder() / name, st_model, int8=int8)
    except OSError:
        raise problem from None
    log.warning("%s (exported to a temporary folder for this process meanwhile)", problem)
    return target


def _export_name(model_dir: Path) -> str:
    """The export's folder name under the cache: the model folder's name and `_export_key`."""
    return f"{model_dir.name}-{_export_key(model_dir)}"


def _export_file(folder: Path, *, int8: bool) -> Path:
    return folder / ("model-int8.onnx" if int8 else "model.onnx")


def _cached_export(folder: Path, st_model: Any, *, int8: bool) -> Path:
    fp32, q8 = _export_file(folder, int8=False), _export_file(folder, int8=True)
    target = q8 if int8 else fp32
    remove_stale_temporaries(folder)  # of exports killed before their rename
    if target.is_file():
        return target
    with _export_lock:
        folder.mkdir(parents=True, exist_ok=True)
        if not fp32.is_file():
            _export(st_model, fp32)
        if int8 and not q8.is_file():
            _quantize(fp32, q8)
    return target


PROCESS_FOLDER_PREFIX = "drsearch-onnx-"


@cache
def _process_folder() -> Path:
    """A folder of this process for exports (~90 MB), under TMPDIR, removed at exit; a process that
    ended without exit handlers (a stopped server, a killed one) leaves its own to the next one's start
    (`indexer.process_dirs`)."""
    folder = new_process_dir(PROCESS_FOLDER_PREFIX)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def remove_process_folder() -> None:
    """This process's export folder, if it made one, removed now: a server ends its lifespan with this,
    since it exits by the SIGTERM uvicorn raises again, which runs no exit handler."""
    if _process_folder.cache_info().currsize:
        shutil.rmtree(_process_folder(), ignore_errors=True)


def _quantize(fp32: Path, q8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = q8.with_name(f".{q8.name}.tmp-{os.getpid()}")
    with _without_quantizer_advice():
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    os.replace(tmp, q8)


_QUANTIZER_ADVICE = "Please consider to run pre-processing before quantization"


class _DropQuantizerAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_QUANTIZER_ADVICE)


@contextmanager
def _without_quantizer_advice() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice to pre-process the model (shape inference for static
    quantisation) on the root logger, which reached a user's `index build -q`; dynamic quantisation
    of this model needs none. Other log records pass."""
    root, advice = logging.getLogger(), _DropQuantizerAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def _export(st_model: Any, out: Path) -> None:
    """The transformer as a graph from token ids to token states (batch x tokens x dimension). Its
    inputs are those the tokenizer gives: XLM-R and RoBERTa tokenizers (multilingual-e5, bge-m3,
    paraphrase-multilingual-*) and DistilBERT's give no token_type_ids."""
    import torch

    sample = st_model.tokenizer(["an example text", "two"], padding=True, return_tensors="pt")
    names = [name for name in _INPUTS if name in sample]

    class TokenStates(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module):
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(names, inputs))).last_hidden_state

    module = TokenStates(st_model[0].auto_model.to("cpu")).eval()
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "token_states"]}
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about the model's Python branches: not the user's concern
        torch.onnx.export(module, tuple(sample[n] for n in names), str(tmp), input_names=names,
                          output_names=["token_states"], dynamic_axes=axes, opset_version=17, dynamo=False)  # fmt: skip
    os.replace(tmp, out)


class OnnxEncoder:
    """A sentence-transformers model run by ONNX Runtime on the CPU (one session, `threads` intra-op)."""

    def __init__(self, st_model: Any, model_dir: Path, *, int8: bool, threads: int | None = None,
                 own_length: int | None = None):  # fmt: skip
        """`own_length`: the model's maximum length as sentence-transformers loaded it, before any
        --max-length, recorded for later loads without a length (None: not recorded)."""
        kind: Encoder = "onnx-int8" if int8 else "onnx"
        pooling = pooling_mode(st_model, kind)
        path = exported_model(st_model, model_dir, int8=int8)
        normalize = ends_normalized(st_model)
        check_and_describe(st_model, model_dir, path.parent, pooling=pooling, normalize=normalize,
                           own_length=own_length)  # fmt: skip
        self._start(kind, path, st_model.tokenizer, pooling=pooling, normalize=normalize, threads=threads,
                    max_seq_length=int(st_model.max_seq_length), dimension=int(st_model.get_embedding_dimension()))  # fmt: skip

    @classmethod
    def from_cache(cls, model_dir: Path, *, int8: bool, max_seq_length: int | None,
                   threads: int | None = None) -> "OnnxEncoder | None":  # fmt: skip
        """The encoder from its cached export alone, without importing torch, sentence-transformers or
        transformers (`backends.faiss.onnx_light`), where an earlier full load described it; else None.
        `max_seq_length` None: the model's own, where the description records it."""
        try:  # anything amiss (no home, an unreadable model file or tokenizer): the full load says what
            folder = cache_root() / "onnx" / _export_name(model_dir)
            path = _export_file(folder, int8=int8)
            described = read_description(folder, model_dir)
            if described is None or not path.is_file():
                return None
            max_seq_length = max_seq_length or recorded_length(described)
            if max_seq_length is None:
                return None
            tokenizer = RustTokenizer(model_dir / described["tokenizer"], int(described["pad_token_id"]))
        except Exception:
            return None
        encoder = cls.__new__(cls)
        encoder._start("onnx-int8" if int8 else "onnx", path, tokenizer, pooling=described["pooling"],
                       normalize=bool(described["normalize"]), threads=threads, max_seq_length=int(max_seq_length),
                       dimension=int(described["dimension"]))  # fmt: skip
        return encoder

    def _start(self, kind: Encoder, path: Path, tokenizer: Any, *, pooling: str, normalize: bool, max_seq_length: int,
               dimension: int, threads: int | None) -> None:  # fmt: skip
        self.kind = kind
        self.pooling = pooling
        self.path = path
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.device = "cpu"
        self._dimension = dimension
        self._normalize = normalize
        # fp32: padding leaves a text's token states bit for bit as they are alone (tested), so texts
        # may share a run. int8 quantises activations with one scale per run: each text runs alone.
        self._run_tokens = 1 if kind == "onnx-int8" else RUN_TOKENS
        self._threads = int(threads or budget())
        self._session = self._new_session(self._threads)
        self._inputs = [i.name for i in self._session.get_inputs()]  # token_type_ids only where the tokenizer gives them
        self._single_threaded: Any = None  # made on first `encode_each` of many texts
        self._session_lock = threading.Lock()

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Intra-op threads spin while a run is in progress (a batch of one is many short parallel
        # steps) but stop when it ends: spinning on, they took the cores the BM25 and FAISS legs need
        # right after the query is encoded (hybrid single-query p50 1.9 -> 1.8 ms, int8 on 2 cores).
        options.add_session_config_entry("session.force_spinning_stop", "1")
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64, convert_to_numpy: bool = True,
               normalize_embeddings: bool = False, show_progress_bar: bool = False) -> np.ndarray:  # fmt: skip
        """Embeddings of `texts` in order, `batch_size` texts a run, each run padded to its longest
        text (callers sort by length so that runs pad little)."""
        texts = [t.strip() for t in texts]
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        if not texts:
            return out
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)
        step = max(1, batch_size)
        for start in range(0, len(texts), step):
            self._run(self._session, enc, range(start, min(start + step, len(texts))), out)
        return self._normalized(out, normalize_embeddings)

    def _run(self, session: Any, enc: Any, rows: Sequence[int], out: np.ndarray) -> None:
        """One session run over the tokenised texts `rows` (padded to the longest); their vectors
        go to `out[rows]`, each pooled over its own tokens only."""
        lengths = [len(enc["input_ids"][i]) for i in rows]
        feed, pad_id = {}, self.tokenizer.pad_token_id or 0
        for name in self._inputs:
            padded = np.full((len(rows), max(lengths)), pad_id if name == "input_ids" else 0, dtype=np.int64)
            if name in enc:
                for j, i in enumerate(rows):
                    padded[j, : lengths[j]] = enc[name][i]
            feed[name] = padded
        states = session.run(None, feed)[0]
        for j, (i, n) in enumerate(zip(rows, lengths)):
            # Row by row, the sum runs over tokens in order: what ONNX Runtime's ReduceSum gave for a
            # text alone when pooling was part of the graph, bit for bit.
            out[i] = states[j, 0] if self.pooling == "cls" else states[j, :n].sum(axis=0) / np.float32(n)

    def _normalized(self, out: np.ndarray, normalize: bool) -> np.ndarray:
        return unit_rows(out) if normalize or self._normalize else out

    def encode_each(self, texts: Sequence[str], normalize_embeddings: bool = False,
                    on_idle: Callable[[], None] | None = None) -> np.ndarray:  # fmt: skip
        """Each text's vector bit for bit what `encode([text])` gives, whatever it is encoded with,
        the texts spread over the thread budget: one thread per core, each running a single-threaded
        session. fp32 packs texts of similar length into runs of at most `RUN_TOKENS` padded tokens
        (a long passage runs alone, its activations in cache), at least one run a thread; int8 runs
        each text alone. A budget of one thread runs the runs one after another. For one
        short text, intra-op threads are the faster way to use the cores (int8 on 2 cores: 1.0 ms
        with two, 1.4 ms with one); for many, side-by-side runs use them better (int8: 1,250-1,330
        vs 740-890 queries/s), since a small run parallelises poorly. Threads are started per call,
        so they run at the caller's priority (`service.priority`).

        `on_idle`, if given, is called once, when a core is first free for other work: by the first
        thread to run out of runs (the others still running theirs), or at once where the encoding
        keeps no thread of its own busy to the end (one text: its intra-op threads leave gaps
        throughout; a budget of one thread). The pipeline starts a batch's BM25 leg there: batches of
        16-32 queries came ~1-2 % closer to a batch of 1,000's time per query than with the leg
        beside the whole encoding (docs/BENCHMARKS.md, issue 14)."""
        texts = [t.strip() for t in texts]
        if on_idle is not None and (len(texts) <= 1 or self._threads <= 1):
            on_idle()
            on_idle = None
        if len(texts) <= 1:
            return self.encode(texts, batch_size=1, normalize_embeddings=normalize_embeddings)
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)  # unpadded
        # At least as many runs as threads, so that a few texts still keep every core busy.
        runs = _runs([len(ids) for ids in enc["input_ids"]], self._run_tokens, -(-len(texts) // self._threads))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        workers = min(self._threads, len(runs))
        if workers <= 1:  # a budget of one thread: the runs one after another
            for rows in runs:
                self._run(self._session, enc, rows, out)
            return self._normalized(out, normalize_embeddings)
        session = self._single_threaded_session()
        failures: list[BaseException] = []
        # Largest run first, each thread taking the next run when it is free: the threads finish
        # within about one run of each other (a fixed share each left one idle for several).
        todo = iter(runs)
        idle = iter([on_idle] if on_idle is not None else [])

        def run_share() -> None:
            try:
                for rows in todo:  # next() on a shared iterator hands each run to one thread (the GIL)
                    self._run(session, enc, rows, out)
                for call in idle:  # the first thread out of runs takes it
                    call()
            except BaseException as exc:  # re-raised in the calling thread
                failures.append(exc)

        helpers = [threading.Thread(target=run_share, name="drsearch-onnx", daemon=True) for _ in range(1, workers)]
        for thread in helpers:
            thread.start()
        run_share()
        for thread in helpers:
            thread.join()
        if failures:
            raise failures[0]
        return self._normalized(out, normalize_embeddings)

    def _single_threaded_session(self) -> Any:
        with self._session_lock:
            if self._single_threaded is None:
                self._single_threaded = self._new_session(1)
            return self._single_threaded


def _runs(lengths: Sequence[int], run_tokens: int, max_texts: int | None = None) -> list[list[int]]:
    """Indexes of texts grouped into runs, largest run (padded tokens) first. Texts sorted by length
    are cut into consecutive runs of at most `run_tokens` padded tokens each (a longer text runs
    alone) and at most `max_texts` texts, so that the runs cost least: a run costs `RUN_OVERHEAD`
    tokens' worth of fixed work plus its padded tokens (its size times its longest text). Packing
    greedily instead padded short texts to a much longer one's length to save a run: in batches of
    32 SciFact queries, 7 % padded tokens against 3 % this way."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    cost = [0.0] + [math.inf] * len(order)  # cost[j]: least cost of the j shortest texts
    start = [0] * (len(order) + 1)  # start[j]: where the last run of that best cut begins
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        for first in range(end - 1, -1, -1):
            padded = (end - first) * longest
            if first < end - 1 and (padded > run_tokens or (max_texts is not None and end - first > max_texts)):
                break
            if cost[first] + RUN_OVERHEAD + padded < cost[end]:
                cost[end], start[end] = cost[first] + RUN_OVERHEAD + padded, first
    runs, end = [], len(order)
    while end:
        runs.append(order[start[end] : end])
        end = start[end]
    return sorted(runs, key=lambda rows: -len(rows) * lengths[rows[-1]])
