"""Nothing happens at import time: importing any of the project's modules starts no JVM, no thread and
loads no model runtime (only `backends.lucene.jvm.start_jvm` starts the JVM, when called). Each check
runs in a fresh interpreter, so that what earlier tests loaded cannot hide a module that loads it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PACKAGES = ("indexer", "crawler", "ranker", "service", "backends", "authority_lists")
RUNTIMES = ("jnius", "torch", "onnxruntime", "faiss", "sentence_transformers", "ray", "elasticsearch")

IMPORT_ALL = """
import importlib, json, pkgutil, sys, threading
names = []
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    names.append(package)
    names += [info.name for info in pkgutil.walk_packages(getattr(module, "__path__", []), package + ".")]
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = repr(exc)
print(json.dumps({"modules": len(names), "failed": failed, "threads": [t.name for t in threading.enumerate()],
                  "loaded": sorted(m.split(".")[0] for m in sys.modules)}))
"""


def _loaded_after(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_every_module_imports_without_starting_a_jvm_a_thread_or_a_model_runtime():
    seen = _loaded_after(IMPORT_ALL, *PACKAGES)
    assert seen["modules"] > 100 and seen["failed"] == {}
    assert seen["threads"] == ["MainThread"]
    assert not set(RUNTIMES) & set(seen["loaded"]), set(RUNTIMES) & set(seen["loaded"])


def test_the_command_line_loads_no_numpy_before_a_command_needs_it():
    """`drsearch --help`, a mistyped option and every command start by importing `service.cli`:
    numpy alone added ~0.12 s to each (backends.base imported it for one helper)."""
    code = "import json, sys, service.cli; print(json.dumps({'loaded': sorted(m.split('.')[0] for m in sys.modules)}))"
    loaded = set(_loaded_after(code)["loaded"])
    assert "service" in loaded and not {"numpy", *RUNTIMES} & loaded, {"numpy", *RUNTIMES} & loaded
