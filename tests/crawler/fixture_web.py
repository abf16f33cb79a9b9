"""A tiny fixture web: several fake "domains", each a threaded http.server on 127.0.0.1, reached by the
crawler through --host-map. Every request is recorded server-side (host, path with query, User-Agent,
arrival time and the time its response started)."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PARA = (
    "The national statistics office publishes monthly figures on consumer prices, "
    "household income and regional employment so that researchers can compare trends over time."
)


def article(title: str, paragraphs: list[str], extra_head: str = "", links: list[str] = (), lang: str = "en") -> bytes:
    links_html = "".join(f'<li><a href="{u}">link {i}</a></li>' for i, u in enumerate(links))
    paras = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>{extra_head}</head>'
        f"<body><nav><ul>{links_html}</ul></nav><main><article><h1>{title}</h1>{paras}</article></main>"
        f"<footer>Copyright footer text</footer></body></html>"
    ).encode("utf-8")


def minimal_pdf(lines: list[str], *, info: bytes = b"<< /Title (Annual Report 2023) /CreationDate (D:20230415120000Z) >>",
                pages: int = 1, to_unicode: bytes | None = None) -> bytes:  # fmt: skip
    """A valid PDF whose text pypdf can extract (Helvetica, one line per Td): `pages` pages all showing
    the same content stream, `info` as its document info, the font's ToUnicode CMap if given."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({safe}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica%s >>" % (b" /ToUnicode 7 0 R" if to_unicode else b"")
    kids = b" ".join(b"%d 0 R" % (8 + i) for i in range(pages))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"null",  # (the page objects follow the fixed ones)
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        font,
        info,
        b"<< /Length %d >>\nstream\n" % len(to_unicode or b"") + (to_unicode or b"") + b"\nendstream",
        *(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
          b"/Resources << /Font << /F1 5 0 R >> >> >>" for _ in range(pages)),
    ]  # fmt: skip
    return _pdf_file(objs, info_ref=6)


def _pdf_file(objs: list[bytes], *, info_ref: int) -> bytes:
    """A PDF file of the objects `objs` (numbered from 1; the first is the catalog) with its xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objs) + 1, info_ref)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


# Ligatures a PDF font draws as one glyph (character codes 1-4 of `report_pdf`'s font); pypdf reads them as U+FB0x.
_LIGATURE_CODES = {"\ufb01": b"\x01", "\ufb02": b"\x02", "\ufb00": b"\x03", "\ufb03": b"\x04"}


def report_pdf(pages: list[list[str]], *, info: bytes = b"<< /Title (Annual Report 2023) >>") -> bytes:
    """A PDF of several pages, each its own content stream with one text line per entry of `pages[i]`
    (top to bottom, 12 points apart; "" leaves a line free). Helvetica, WinAnsi encoding, except the
    ligatures fi, fl, ff and ffi (written as U+FB01, U+FB02, U+FB00, U+FB03), drawn as the font's glyphs."""
    streams = []
    for lines in pages:
        ops = [b"BT", b"/F1 10 Tf"]
        for n, line in enumerate(lines):
            if line:
                raw = b"".join(_LIGATURE_CODES.get(c) or c.encode("cp1252") for c in line)
                safe = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
                ops.append(b"1 0 0 1 72 %d Tm (%s) Tj" % (760 - 12 * n, safe))
        streams.append(b"\n".join([*ops, b"ET"]))
    font = (b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Type /Encoding "
            b"/BaseEncoding /WinAnsiEncoding /Differences [1 /fi /fl /ff /ffi] >> >>")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % (5 + 2 * i) for i in range(len(pages))),
                                                      len(pages)),
        font,
        info,
    ]  # fmt: skip
    for i, stream in enumerate(streams):
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 3 0 R >> >> >>" % (6 + 2 * i))  # fmt: skip
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return _pdf_file(objs, info_ref=4)


@dataclass
class Resp:
    status: int = 200
    body: bytes = b""
    ctype: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[int], Resp]  # called with the 1-based count of requests for this path


@dataclass
class Hit:
    host: str
    path: str
    t: float  # request arrived
    user_agent: str = ""
    answered: float = 0.0  # response about to be written (after any delay)


class FixtureWeb:
    def __init__(self) -> None:
        self.sites: dict[str, dict[str, Resp | Handler]] = {}
        self.log: list[Hit] = []
        self._lock = threading.Lock()
        self._servers: list[http.server.ThreadingHTTPServer] = []
        self.ports: dict[str, int] = {}
        self.map_addresses: dict[str, str] = {}

    def site(self, host: str, pages: dict[str, Resp | Handler], *, map_address: str = "127.0.0.1") -> None:
        """Serve `pages` for `host` (on 127.0.0.1); `map_address` is the address the host map names for it."""
        self.sites[host] = pages
        self.map_addresses[host] = map_address

    def count(self, host: str, path: str) -> int:
        return sum(1 for h in self.log if h.host == host and h.path == path)

    def requested(self) -> set[tuple[str, str]]:
        return {(h.host, h.path) for h in self.log}

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        web = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                target = self.path
                if target.startswith("http://"):  # proxied (host-mapped) request: absolute URI
                    parts = urlsplit(target)
                    host, path = parts.hostname or "", parts.path + (f"?{parts.query}" if parts.query else "")
                else:
                    host, path = (self.headers.get("Host") or "").split(":")[0], target
                hit = Hit(host, path, time.monotonic(), self.headers.get("User-Agent") or "")
                with web._lock:
                    web.log.append(hit)
                    n = sum(1 for h in web.log if h.host == host and h.path == path)
                entry = web.sites.get(host, {}).get(path)
                if entry is None:
                    entry = web.sites.get(host, {}).get(path.split("?")[0])
                resp = entry(n) if callable(entry) else entry
                if resp is None:
                    resp = Resp(404, b"<html><body>not found</body></html>")
                if resp.delay:
                    time.sleep(min(resp.delay, 5.0))
                hit.answered = time.monotonic()
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.ctype)
                    self.send_header("Content-Length", str(len(resp.body)))
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        return H

    def start(self) -> None:
        for host in self.sites:
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
            srv.daemon_threads = True
            self.ports[host] = srv.server_address[1]
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
            self._servers.append(srv)

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()

    def host_map_text(self) -> str:
        return "".join(f"{h} {self.map_addresses[h]}:{p}\n" for h, p in self.ports.items())


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
