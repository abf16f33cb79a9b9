"""The real `drsearch` CLI on hosts unlike ours: other encodings and locales, closed or full standard
streams, Ctrl-C. Each ends with its results or one line, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, drsearch
from tests.multilingual_texts import DOCS

JAPANESE = "日本銀行"
# what a crawled page may hold: retitle the window (OSC), clear the screen, set the clipboard (OSC 52), overwrite
ESCAPES = "\x1b]0;owned\x07 \x1b[2J \x1b]52;c;ZWNobyBoaQ==\x07 \r\x08\x9b"
PIPE_BUFFER = 65_536  # Linux's default pipe capacity
LONG_TEXT = "\n\n".join(f"Paragraph {i} of a long document." for i in range(PIPE_BUFFER // 16))  # more than fills a pipe


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    base = tmp_path_factory.mktemp("hosts")
    corpus = base / "docs.jsonl"
    docs = [{"id": i, "title": t, "url": u, "text": x, "language": lang} for i, lang, t, u, x in DOCS]
    docs.append({"id": "escapes", "title": f"Zebra {ESCAPES} crossings", "text": f"zebra stripes {ESCAPES} seen"})
    docs.append({"id": "long", "title": "Long", "text": LONG_TEXT})
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    root = base / "idx"
    drsearch("index", "build", "--corpus", corpus, "--out", root, "--no-dense", "--quiet", check=True)
    return corpus, root


def run(*args: str, env: dict | None = None, environ: dict | None = None, **popen) -> subprocess.CompletedProcess:
    """The CLI with bytes out, so that a test reads them in the encoding it asked for; `env` adds to our
    environment, `environ` replaces it."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "service.cli", *map(str, args)], timeout=300, cwd=REPO,
                          env=environ or {**os.environ, **(env or {})}, **popen)  # fmt: skip


def error_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_results_print_in_an_encoding_that_lacks_their_characters(small_index):
    _, root = small_index
    latin1 = {"PYTHONIOENCODING": "latin-1"}
    text = run("search", JAPANESE, "--index", root, "-k", "1", env=latin1)
    assert text.returncode == 0, text.stderr.decode()
    assert "\\u65e5\\u672c\\u9280\\u884c" in text.stdout.decode("latin-1")  # what cannot be shown, escaped
    as_json = run("search", f"{JAPANESE} 🎉", "--index", root, "-k", "1", "--json", env=latin1)
    assert as_json.returncode == 0, as_json.stderr.decode()
    payload = json.loads(as_json.stdout.decode("latin-1"))  # valid JSON, every character kept
    assert payload["query"] == f"{JAPANESE} 🎉" and payload["hits"][0]["doc_id"] == "ja-boj"


def test_a_locale_python_reads_as_ascii_still_reads_the_query_as_utf8(small_index):
    _, root = small_index
    host = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING"))}
    ascii_locale = {**host, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    proc = run("search", JAPANESE, "--index", root, "-k", "1", "--json", environ=ascii_locale)
    assert proc.returncode == 0, proc.stderr.decode()
    payload = json.loads(proc.stdout)
    assert payload["query"] == JAPANESE and payload["hits"][0]["doc_id"] == "ja-boj"


BUFFERING = {"buffered": {}, "PYTHONUNBUFFERED": {"PYTHONUNBUFFERED": "1"}}


def with_buffering(name: str) -> dict[str, str]:
    """Our environment with stdout buffered (Python's default) or unbuffered (PYTHONUNBUFFERED=1, common in containers)."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, **BUFFERING[name]}


@pytest.mark.parametrize("buffering", BUFFERING)
def test_output_that_cannot_be_written_is_one_line(small_index, buffering):
    _, root = small_index
    with open("/dev/full", "wb") as full:
        proc = run("search", JAPANESE, "--index", root, "-k", "1", stdout=full, environ=with_buffering(buffering))
    assert proc.returncode == 1
    assert error_line(proc) == "drsearch: error: cannot write the output: No space left on device"
    closed = run("search", JAPANESE, "--index", root, "-k", "1", preexec_fn=lambda: os.close(1),
                 environ=with_buffering(buffering))  # fmt: skip
    assert closed.returncode == 1  # not 0 with the results dropped
    assert error_line(closed) == "drsearch: error: cannot write the output: standard output is closed"


def into_a_reader_that_stops(*args: object, lines: int, buffering: str = "buffered") -> subprocess.CompletedProcess:
    """The CLI writing into a pipe whose reader reads `lines` lines and closes it, as `| head -N` does."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", *map(str, args)], stdout=write_end,
                            stderr=subprocess.PIPE, cwd=REPO, env=with_buffering(buffering))  # fmt: skip
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        for _ in range(lines):
            reader.readline()
    stderr = proc.stderr.read()
    proc.wait(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, b"", stderr)


def test_a_reader_that_stops_early_ends_the_command_quietly(small_index):
    """`drsearch ... | head -1`: no message and 141 (128 + SIGPIPE, as a shell reports `git log | head`
    under `set -o pipefail`), not 1, which `index verify` and `fetch` give to real failures. A document
    longer than a pipe holds makes `fetch` write after its reader left; the others meet a reader gone
    before their first line (`| true`)."""
    _, root = small_index
    for args in (("fetch", "long", "--index", root), ("fetch", "long", "--index", root, "--json")):
        for buffering in BUFFERING:  # unbuffered, a write cut short by the signal had lost the rest with exit 0
            proc = into_a_reader_that_stops(*args, lines=1, buffering=buffering)
            assert (proc.returncode, proc.stderr.decode()) == (128 + signal.SIGPIPE, ""), (args, buffering)
    for args in (("search", "zebra", "--index", root), ("search", "zebra", "--index", root, "--json"),
                 ("index", "list", root, "--json"), ("--help",)):  # fmt: skip
        proc = into_a_reader_that_stops(*args, lines=0)
        assert (proc.returncode, proc.stderr.decode()) == (128 + signal.SIGPIPE, ""), args


def test_a_build_with_stderr_closed_completes(small_index, tmp_path):
    corpus, _ = small_index
    root = tmp_path / "idx"
    proc = run("index", "build", "--corpus", corpus, "--out", root, "--no-dense", preexec_fn=lambda: os.close(2))
    assert proc.returncode == 0  # its progress bars had nowhere to go, and stopped the build
    assert (root / "current" / "manifest.json").is_file()
    assert drsearch("search", JAPANESE, "--index", root, "-k", "1", "--json", check=True).stdout


def ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's foreground process has it: a test run started in the background (`cmd &`
    in a non-interactive shell) passes SIGINT on ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_command_says_so(small_index):
    _, root = small_index
    # SIGINT delivered to the process while the command runs (as it opens the index)
    code = ("import os, signal, sys; import service.cli as cli; opened = cli._pipeline\n"
            "cli._pipeline = lambda *a, **k: (os.kill(os.getpid(), signal.SIGINT), opened(*a, **k))[1]\n"
            "sys.argv = ['drsearch', *sys.argv[1:]]; cli.main()")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, "search", JAPANESE, "--index", str(root)],
                          capture_output=True, timeout=300, cwd=REPO, preexec_fn=ctrl_c_as_in_a_terminal)  # fmt: skip
    assert proc.returncode == 128 + signal.SIGINT
    assert error_line(proc) == "drsearch: interrupted"
    assert proc.stdout == b""


def test_a_path_whose_name_is_not_utf8_is_refused_in_one_line(small_index, tmp_path):
    corpus, root = small_index
    not_utf8 = tmp_path / os.fsdecode(b"idx \xff")  # bytes Java, which names files in Unicode, cannot open
    build = run("index", "build", "--corpus", corpus, "--out", not_utf8, "--no-dense", "--quiet")
    assert build.returncode == 2
    assert "cannot open a path whose name is not valid UTF-8: rename it" in error_line(build)
    assert not (not_utf8 / "current").exists() and list((not_utf8 / "builds").iterdir()) == []
    copied = tmp_path / os.fsdecode(b"copy \xfe")
    shutil.copytree(root, copied, symlinks=True)
    search = run("search", JAPANESE, "--index", copied)
    assert search.returncode == 2
    assert "cannot open a path whose name is not valid UTF-8: rename it" in error_line(search)


def test_dense_search_works_for_a_user_whose_home_cannot_be_written(tiny_root, tmp_path):
    """The ONNX export cache defaults to ~/.cache: a service user's read-only home failed every hybrid search."""
    root = tmp_path / "dense"
    shutil.copytree(tiny_root, root, symlinks=True)  # the session's BM25 + dense index, not a build of its own
    (tmp_path / "a-file").write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    host = {k: v for k, v in os.environ.items() if k not in ("DRSEARCH_CACHE", "XDG_CACHE_HOME")}
    proc = run("search", JAPANESE, "--index", root, "-k", "1", "--mode", "dense", "--json",
               environ={**host, "HOME": str(tmp_path / "a-file" / "home"), "TMPDIR": str(tmp)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["hits"]
    # onnxruntime's own warning that it cannot keep its telemetry id under that home is not ours to silence
    (notice,) = [line for line in proc.stderr.decode().splitlines() if "telemetry" not in line]
    assert "cannot write the ONNX export cache" in notice and "exported to a temporary folder" in notice
    assert not list(tmp.glob("drsearch-onnx-*"))  # removed at exit


def test_a_server_stopped_by_sigterm_removes_its_export_folder(tiny_root, tmp_path):
    """The folder (~90 MB) was removed by an exit handler, which a server never runs: it ends by the
    SIGTERM uvicorn raises again after its graceful shutdown (systemd, docker and Kubernetes stop it so)."""
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.service.test_serve_recovery import free_port, healthy, stop, wait_until

    root = tmp_path / "dense"
    shutil.copytree(tiny_root, root, symlinks=True)
    (tmp_path / "a-file").write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    host = {k: v for k, v in os.environ.items() if k not in ("DRSEARCH_CACHE", "XDG_CACHE_HOME")}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--index", str(root), "--port", str(port)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**host, "HOME": str(tmp_path / "a-file" / "home"), "TMPDIR": str(tmp)})  # fmt: skip
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), 120, "server did not start")
        assert list(tmp.glob("drsearch-onnx-*"))  # its export, made at start
    finally:
        stop(server)
    assert server.returncode in (0, -signal.SIGTERM)
    assert not list(tmp.glob("drsearch-onnx-*"))


def signals_as_in_a_terminal() -> None:
    """SIGTERM and SIGHUP at their defaults, as a terminal's process has them (not as under `nohup`)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_a_build_stopped_by_a_signal_says_so_and_takes_its_indexer_with_it(small_index, tmp_path, stop_signal):
    """A `kill` or a closed terminal while Anserini indexes: one line and 128 + the signal (it ended with no
    word), `current` not switched, the Java indexer gone; the next build removes the partial folder."""
    corpus, _ = small_index
    root, child = tmp_path / "idx", tmp_path / "indexer.pid"
    code = ("import os, sys; import backends.lucene.writer as w; started, pid_file = w.subprocess.Popen, sys.argv[1]\n"
            "def popen(*a, **k):\n"
            "    proc = started(*a, **k); open(pid_file, 'w').write(str(proc.pid))\n"
            f"    os.kill(os.getpid(), {int(stop_signal)}); return proc\n"
            "w.subprocess.Popen = popen\n"
            "import service.cli as cli; sys.argv = ['drsearch', *sys.argv[2:]]; cli.main()")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, child, "index", "build", "--corpus", corpus, "--out", root,
                           "--no-dense", "--quiet"], capture_output=True, timeout=300, cwd=REPO,
                          preexec_fn=signals_as_in_a_terminal)  # fmt: skip
    assert proc.returncode == 128 + stop_signal
    assert error_line(proc) == f"drsearch: terminated by {stop_signal.name}"
    assert not (root / "current").exists() and len(list((root / "builds").iterdir())) == 1
    indexer = f"/proc/{int(child.read_text())}/stat"

    def running() -> bool:  # a zombie left for a container's init to reap does not count
        try:
            return open(indexer).read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running()  # it died with the build
    assert run("index", "build", "--corpus", corpus, "--out", root, "--no-dense", "--quiet").returncode == 0
    assert [p.name for p in (root / "builds").iterdir()] == [(root / "current").resolve().name]


@pytest.mark.parametrize("start", ["from service.entry import main; main()",  # the console script
                                   "import runpy; runpy.run_module('service.cli', run_name='__main__', alter_sys=True)"])  # python -m service.cli
def test_ctrl_c_while_the_cli_loads_says_so(start):
    """`drsearch` and `python -m service.cli` with SIGINT delivered as they start importing the CLI."""
    code = ("import importlib.abc, os, signal, sys\n"
            "class Interrupt(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'typer':\n"
            "            os.kill(os.getpid(), signal.SIGINT)\n"
            f"sys.meta_path.insert(0, Interrupt())\n{start}")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, timeout=120, cwd=REPO,
                          preexec_fn=ctrl_c_as_in_a_terminal)  # fmt: skip
    assert proc.returncode == 128 + signal.SIGINT
    assert error_line(proc) == "drsearch: interrupted"


def test_text_output_shows_control_characters_instead_of_sending_them_to_the_terminal(small_index):
    _, root = small_index
    for args in (("search", "zebra", "--index", root, "-k", "1"), ("fetch", "escapes", "--index", root)):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr.decode()
        out = proc.stdout.decode()
        assert "Zebra" in out and "\\x1b]0;owned\\x07" in out and "\\x1b]52;c;" in out and "\\x0d\\x08\\x9b" in out
        assert not [c for c in out if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F], out
    as_json = run("search", "zebra", "--index", root, "-k", "1", "--json")
    assert ESCAPES in json.loads(as_json.stdout)["hits"][0]["title"]  # JSON keeps the text as stored


def test_progress_bars_into_a_log_file_are_not_redrawn_many_times_a_second(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "title": f"t{i}", "text": f"word{i} " * 50}) + "\n"
                              for i in range(3000)))  # fmt: skip
    log = tmp_path / "build.log"
    with log.open("wb") as err:
        proc = run("index", "build", "--corpus", corpus, "--out", tmp_path / "idx", "--no-dense", stderr=err)
    assert proc.returncode == 0, log.read_text()
    draws = [d for d in log.read_text().replace("\n", "\r").split("\r") if d.startswith("read+chunk+store")]
    assert len(draws) <= 3, draws  # the first, the last, perhaps one between; not one per 0.1 s


def test_an_error_naming_a_path_with_a_newline_stays_one_line(tmp_path):
    missing = tmp_path / "no such\ncorpus\x1b[2J.jsonl"
    proc = run("index", "build", "--corpus", missing, "--out", tmp_path / "idx", "--no-dense")
    assert proc.returncode == 2
    assert error_line(proc).endswith("no such\\ncorpus\\x1b[2J.jsonl: corpus path does not exist")


@pytest.fixture
def read_only_view(tmp_path):
    """A function that bind-mounts a folder read-only (as a Kubernetes `readOnly` volume) and returns
    where; root only, skipped where bind mounts cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    mounted = []

    def view(folder):
        where = tmp_path / f"ro{len(mounted)}"
        where.mkdir()
        if subprocess.run(["mount", "--bind", str(folder), str(where)], capture_output=True).returncode != 0:
            pytest.skip("cannot bind-mount here")
        mounted.append(where)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
        return where

    yield view
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=False)


def test_a_read_only_root_serves_every_mode_and_refuses_a_build_in_one_line(tiny_root, read_only_view):
    from tests.service.conftest import start_server

    root = read_only_view(tiny_root)
    before = sorted(p.name for p in (root / "builds").iterdir())
    server = start_server(index=root, threads=1)
    try:
        with server.client() as client:
            for mode in ("hybrid", "dense", "bm25"):
                r = client.post("/v1/search", json={"query": "magma lava", "k": 1, "mode": mode})
                assert r.status_code == 200, r.text
                assert r.json()["results"][0]["hits"][0]["doc_id"] == "volcano"
    finally:
        server.stop()
    corpus = tiny_root.parent / f"{tiny_root.name}-docs.jsonl"
    build = run("index", "build", "--corpus", corpus, "--out", root, "--no-dense", "--quiet")
    assert build.returncode == 2
    assert error_line(build) == f"drsearch: error: {root}: cannot write the index: Read-only file system"
    assert sorted(p.name for p in (root / "builds").iterdir()) == before


def test_a_root_whose_folders_the_serving_user_cannot_enter_is_one_line(small_index, tmp_path):
    """Built by another user under umask 077: `current` cannot be followed by the serving user. Root here
    loses the capabilities that bypass file permissions, so the files' owner and modes decide."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as a user without access")
    root = tmp_path / "idx"
    shutil.copytree(small_index[1], root, symlinks=True)
    os.chown(root / "builds", 65534, 65534)  # nobody's
    (root / "builds").chmod(0o700)
    as_other_user = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--", sys.executable]
    for args in (("search", "zebra", "--index", root), ("index", "info", root), ("index", "list", root),
                 ("index", "verify", root), ("index", "prune", root)):  # fmt: skip
        proc = subprocess.run([*as_other_user, "-m", "service.cli", *map(str, args)],
                              capture_output=True, timeout=120, cwd=REPO)  # fmt: skip
        assert proc.returncode == 2, proc.stderr.decode()
        assert error_line(proc).startswith(f"drsearch: error: {root}/"), args
        assert error_line(proc).endswith(": cannot read the index: Permission denied"), args
    (root / "builds").chmod(0o755)
    store = (root / "current" / "store.sqlite").resolve()
    os.chown(store, 65534, 65534)
    store.chmod(0o600)
    proc = subprocess.run([*as_other_user, "-m", "service.cli", "search", "zebra", "--index", root],
                          capture_output=True, timeout=120, cwd=REPO)  # fmt: skip
    assert proc.returncode == 2 and error_line(proc).startswith(f"drsearch: error: {store}: ")
    assert "Permission denied" in error_line(proc)  # SQLite alone says "unable to open database file"
