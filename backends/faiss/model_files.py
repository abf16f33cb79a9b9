"""The contents of a sentence-transformers model directory as one digest.

The embedding cache and the ONNX export are keyed by it, and a build records it, so that a model
changed in place (a fine-tune saved into the same folder, another pooling or tokenizer) is
encoded afresh and a search notices it. It covers what sentence-transformers loads: the files at
the top of the folder (weights, configs, tokenizer) and every file under the folders of the
modules in `modules.json` (`1_Pooling`, `2_Dense`, ...). Files torch never reads (other
frameworks' weights, ONNX exports, model cards) and hidden files are left out.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

# Not read by torch sentence-transformers: TensorFlow, Flax and Rust weights, ONNX exports, the card.
_UNREAD_SUFFIXES = (".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".md")

# sha256 of a file by (path, size, mtime, ctime, inode): a process (a search server) hashes each file
# once, and a file rewritten in place, even with the same size and mtime, changes its ctime.
_file_digests: dict[tuple[str, int, int, int, int], str] = {}
_lock = threading.Lock()


def model_digest(model_dir: Path) -> str:
    """sha256 over the relative names and contents of the model's files (`model_files`)."""
    model_dir = Path(model_dir)
    total = hashlib.sha256()
    for path in model_files(model_dir):
        total.update(f"{path.relative_to(model_dir).as_posix()}\0{file_digest(path)}\n".encode())
    return total.hexdigest()


def model_files(model_dir: Path) -> list[Path]:
    """The files sentence-transformers reads from `model_dir`, sorted."""
    files = [p for p in model_dir.iterdir() if p.is_file() and _read_by_torch(p)]
    for folder in _module_folders(model_dir):
        files.extend(p for p in folder.rglob("*") if p.is_file() and _read_by_torch(p))
    return sorted(set(files))


def _read_by_torch(path: Path) -> bool:
    return not path.name.startswith(".") and not path.name.endswith(_UNREAD_SUFFIXES)


def _module_folders(model_dir: Path) -> list[Path]:
    """The module folders named in modules.json (the top folder's own module has path "")."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        paths = [m.get("path") or "" for m in modules]
    except (OSError, ValueError, AttributeError, TypeError):  # not loadable anyway; the loader says why
        return []
    return [model_dir / p for p in paths if p and (model_dir / p).is_dir()]


def file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _lock:
        known = _file_digests.get(key)
    if known is not None:
        return known
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()  # streamed
    with _lock:
        _file_digests[key] = digest
    return digest

