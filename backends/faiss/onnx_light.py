"""Running a cached ONNX export for queries without torch, sentence-transformers or transformers.

Importing sentence-transformers takes ~6 s of CPU here (torch and transformers with it), which every
`drsearch search`, `eval`, `mcp` and server worker start paid to encode a handful of queries. The
first load of a model through sentence-transformers (`OnnxEncoder`) writes, next to its export,
what a later process needs to run the export alone: the pooling, the normalisation, the dimension,
the pad token, the model's own maximum length (before any `--max-length`), and whether the model's
tokenizer file, run directly by the `tokenizers` library, gives the very token ids that the
transformers tokenizer gave on a set of probe texts. Only then does a later load
(`read_description`, `RustTokenizer`) skip the heavy imports; anything missing, unreadable or from
another format falls back to the full load. A description written before the maximum length was
recorded, or by another sentence-transformers version, still serves loads given their length
(queries: the build records it), and the next full load records the length anew.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from pathlib import Path
from typing import Any

DESCRIPTION = "runtime.json"
FORMAT = 1
TOKENIZER_FILE = "tokenizer.json"
# Accents, scripts without spaces, emoji, casing, digits, whitespace, special-token text, text past
# the truncation length (one long word, many words): where a normaliser or truncation could differ.
_PROBES = (
    "an example text",
    "Café naïve résumé: ÆØÅ, ß and the Straße",
    "中文查询 和 English mixed 日本語のテキスト 한국어",
    "emoji 😀 👍🏽 flags 🇫🇷🇩🇪 and ∑ math ≤ symbols",
    "UPPER lower MiXeD 123 4.5e-3 COVID-19 p<0.05",
    "tab\tnew\nline  two  spaces\u00a0nbsp\u200bzero-width",
    "[CLS] [SEP] [MASK] [PAD] [UNK] <s> </s> special tokens written in text",
    "don't can't it's O'Neil's \"quoted\" (brackets) {braces}",
    "x" * 300,
    " ".join(["word"] * 400),
    "",
)


def check_and_describe(st_model: Any, model_dir: Path, folder: Path, *, pooling: str, normalize: bool,
                       own_length: int | None) -> None:  # fmt: skip
    """Write `folder`/runtime.json for `st_model` (loaded from `model_dir`) unless it is there with a
    maximum length (`own_length`: the model's as loaded, before any override; None where unknown). The
    tokenizer file is named in it only where it gives the transformers tokenizer's ids on every probe,
    at two truncation lengths. Best effort: a folder that cannot be written is left as it is."""
    target = folder / DESCRIPTION
    if target.is_file() and (own_length is None or recorded_length(_read(target)) is not None):
        return
    tokenizer = st_model.tokenizer
    description = {
        "format": FORMAT,
        "pooling": pooling,
        "normalize": normalize,
        "dimension": int(st_model.get_embedding_dimension()),
        "pad_token_id": int(tokenizer.pad_token_id or 0),
        "max_seq_length": own_length,
        "sentence_transformers": sentence_transformers_version(),  # whose loading gave that length
        "tokenizer": TOKENIZER_FILE if _same_tokens(tokenizer, model_dir / TOKENIZER_FILE) else None,
    }
    tmp = folder / f".{DESCRIPTION}.tmp-{os.getpid()}"
    try:
        tmp.write_text(json.dumps(description, indent=1), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


def read_description(folder: Path, model_dir: Path) -> dict[str, Any] | None:
    """What `check_and_describe` wrote in `folder`, where it allows a load without the heavy imports
    (its format, a tokenizer that passed the check and is still in `model_dir`), else None."""
    description = _read(folder / DESCRIPTION)
    if description is None or description.get("format") != FORMAT:
        return None
    if description.get("tokenizer") != TOKENIZER_FILE or not (model_dir / TOKENIZER_FILE).is_file():
        return None
    if description.get("pooling") not in ("mean", "cls"):
        return None
    return description


def _read(path: Path) -> dict[str, Any] | None:
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return description if isinstance(description, dict) else None


def recorded_length(description: dict[str, Any] | None) -> int | None:
    """The model's own maximum length in tokens that a description records, or None (written before
    it was recorded, not known, or by another sentence-transformers version, which may derive a
    model's length otherwise)."""
    if description is None or description.get("sentence_transformers") != sentence_transformers_version():
        return None
    length = description.get("max_seq_length")
    return length if isinstance(length, int) and not isinstance(length, bool) and length > 0 else None


@functools.cache
def sentence_transformers_version() -> str | None:
    """The installed sentence-transformers' version, from its metadata (no import)."""
    from importlib import metadata

    try:
        return metadata.version("sentence-transformers")
    except metadata.PackageNotFoundError:
        return None


class RustTokenizer:
    """The part of a transformers fast tokenizer the ONNX encoder calls, `tokenizer(texts,
    truncation=True, max_length=n)` and `pad_token_id`, on the model's tokenizer file run by the
    `tokenizers` library as transformers runs it: special tokens added, no padding, longest-first
    truncation to `max_length` tokens, special tokens included."""

    _drsearch_serialised = True  # each call holds the lock below (`backends.faiss.encoder.model_lock`)

    def __init__(self, path: Path, pad_token_id: int):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()  # the file's own padding (often fixed to 128) is not what transformers does
        self._max_length: int | None = -1
        self._lock = threading.Lock()
        self.pad_token_id = pad_token_id

    def __call__(self, texts: list[str], truncation: bool = True, max_length: int | None = None) -> dict[str, list]:
        limit = max_length if truncation else None
        with self._lock:  # the truncation setting lives on the shared Rust object
            if limit != self._max_length:
                if limit is None:
                    self._tokenizer.no_truncation()
                else:
                    self._tokenizer.enable_truncation(limit, stride=0, strategy="longest_first", direction="right")
                self._max_length = limit
            encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        return {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }


def _same_tokens(tokenizer: Any, path: Path) -> bool:
    """Whether `path` run by `RustTokenizer` gives `tokenizer`'s ids, attention masks and token types
    (where it gives them) on every probe, at the model's length and a short one."""
    if not path.is_file() or getattr(tokenizer, "truncation_side", "right") != "right":
        return False
    try:
        rust = RustTokenizer(path, int(tokenizer.pad_token_id or 0))
    except Exception:  # a file this tokenizers version cannot read
        return False
    for length in (8, 512):
        want = tokenizer(list(_PROBES), truncation=True, max_length=length)
        got = rust(list(_PROBES), truncation=True, max_length=length)
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            if name in want and [list(ids) for ids in want[name]] != got[name]:
                return False
    return True
