"""Process start-up with and without the JVM's class-data-sharing archive (backends/lucene/class_archive.py),
side by side, in turns: the wall time of whole `drsearch` commands, as a user or a test runs them.

  search-bm25   drsearch search QUERY --index IDX --mode bm25 -k 3   (JVM start, index open, search, snippets)
  search-hybrid the same in hybrid mode, where IDX has a dense leg (adds the encoder's start)
  build         drsearch index build of a three-document corpus --no-dense (the build's two Java passes)
  jvm           python -c: start the JVM alone

Each command runs --runs times with the archive and as often with DRSEARCH_JVM_CLASS_ARCHIVE=0, in turns;
the medians are reported with their ratio. Makes the environment's archive first if it is missing.

    python bench/jvm_start.py --index /tmp/sf-onnxb --runs 15
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO

sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="an index ROOT (with a dense leg for search-hybrid)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    from backends.lucene import class_archive

    path = class_archive.archive_path()
    if path is None:
        sys.exit(f"archives are off ({class_archive.ENV}=0)")
    if not path.is_file() and class_archive.main([]) != 0:
        sys.exit("no archive could be made")
    with tempfile.TemporaryDirectory(prefix="drsearch-jvm-start-") as folder:
        work = Path(folder)
        corpus = work / "docs.jsonl"
        corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in
                                  [("a", "Volcanic ash over the region."), ("b", "Consumer prices rose."), ("c", "Ash clouds.")]))  # fmt: skip
        cli = [sys.executable, "-m", "service.cli"]
        query = "coronary heart disease risk from smoking"
        commands = {
            "jvm": [sys.executable, "-c", "from backends.lucene import jvm; jvm.start_jvm()"],
            "search-bm25": [*cli, "search", query, "--index", str(args.index), "--mode", "bm25", "-k", "3"],
            "search-hybrid": [*cli, "search", query, "--index", str(args.index), "--mode", "hybrid", "-k", "3"],
            "build": [*cli, "index", "build", "--corpus", str(corpus), "--out", str(work / "idx"), "--no-dense", "-q"],
        }
        sides = {"archive": {**os.environ}, "none": {**os.environ, class_archive.ENV: "0"}}
        times: dict[tuple[str, str], list[float]] = {(c, s): [] for c in commands for s in sides}
        for name, cmd in commands.items():
            for side, env in sides.items():
                timed(cmd, env)  # once untimed: files in the page cache for both sides
            for _ in range(args.runs):
                for side, env in sides.items():
                    times[name, side].append(timed(cmd, env))
    print(f"| command | with the archive, s | without, s | ratio |  ({args.runs} runs each, medians; {path.name})")
    print("|---|---|---|---|")
    for name in commands:
        on, off = statistics.median(times[name, "archive"]), statistics.median(times[name, "none"])
        print(f"| {name} | {on:.3f} | {off:.3f} | {off / on:.2f}x |")


if __name__ == "__main__":
    main()
