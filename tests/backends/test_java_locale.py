"""Under the C locale (`LC_ALL=C`, as cron, containers and systemd units often run), Python names files in UTF-8
(its UTF-8 mode) and Java must read them the same way: an index under a non-ASCII path builds (the Java
indexing subprocess) and opens (the JVM in the searching process)."""

from __future__ import annotations

import json

from tests.conftest import drsearch

C_LOCALE = {"LANG": "C", "LC_ALL": "C"}


def test_an_index_under_a_non_ascii_path_builds_and_searches_in_the_c_locale(tmp_path):
    corpus = tmp_path / "文档.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "title": "港口", "text": "harbour tariffs rose 港口关税上涨"}) + "\n",
                      encoding="utf-8")  # fmt: skip
    root = tmp_path / "索引"
    build = drsearch("index", "build", "--corpus", corpus, "--out", root, "--no-dense", "-q", env=C_LOCALE, timeout=120)
    assert build.returncode == 0, build.stderr
    search = drsearch("search", "港口关税", "--index", root, "--json", env=C_LOCALE, timeout=120)
    assert search.returncode == 0, search.stderr
    assert [h["doc_id"] for h in json.loads(search.stdout)["hits"]] == ["d1"]
