"""A crawl removes the temporary files of report.json and counters.json that a killed crawl left in its
--out (killed between writing one and renaming it into place); a running process's are kept. The
leftovers are made by the real atomic write in a process killed with SIGKILL."""

from __future__ import annotations

import os
from pathlib import Path

from tests.crawler.conftest import page, paras, run_crawl
from tests.crawler.fixture_web import FixtureWeb, Resp, article
from tests.indexer.test_leftovers import killed_while_writing


def test_the_next_crawl_removes_a_killed_crawl_s_temporary_files(tmp_path: Path) -> None:
    web = FixtureWeb()
    web.site("www.small.org", {"/": page("small home", ["/a"]), "/a": Resp(body=article("A page", paras("a page")))})
    out = tmp_path / "out"
    (out / "job").mkdir(parents=True)
    killed = [killed_while_writing(out / "report.json"), killed_while_writing(out / "job" / "counters.json")]
    running = out / "job" / f".counters.json.tmp-{os.getpid()}-abcdef"  # a process writing it now
    running.write_bytes(b"x")
    (tmp_path / "domains.txt").write_text("http://www.small.org/\n")
    (tmp_path / "hosts.txt").write_text(web.host_map_text())
    web.start()
    try:
        proc = run_crawl(out, tmp_path / "domains.txt", tmp_path / "hosts.txt", "--resume")  # after a killed crawl
    finally:
        web.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(path.exists() for path in killed) and running.exists()
    assert (out / "report.json").is_file()
