"""A fault-injecting HTTP server on 127.0.0.1 for the download tests.

Every route serves one of the registered files (``/<route>/<name>``) or a fixed body,
and injects one fault. Each request is logged (method, path, Range header) so tests
can assert that a retry resumed instead of starting over. Faults that take time are
bounded and also end as soon as the server stops, so a test can never hang on them.

Routes (``name`` is a key of the ``files`` mapping):
    /ok/<name>        200, or 206 + Content-Range for a Range request; 416 if out of range
    /drop/<name>      first request: promises the full length, sends half, closes
    /dropall/<name>   every request sends half of what it promises (never completes)
    /flaky/<name>     first request 500, then like /ok
    /busy/<name>      first request 429 with Retry-After: 1, then like /ok
    /error500         always 500
    /missing          always 404
    /slow/<name>      waits SLOW_SECONDS before answering, then like /ok
    /drip/<name>      sends DRIP_BYTES every DRIP_SECONDS (bounded by the file size)
    /html             an HTML page with Content-Type text/html
    /html-as-video    an HTML page with Content-Type video/mp4 (only sniffing finds it)
    /empty            200 with an empty body
    /norange/<name>   first request drops mid-body like /drop; ignores Range (always 200)
    /nolength/<name>  200 without Content-Length (body ends when the connection closes)
    /range416/<name>  first request drops mid-body; answers any Range request with 416
    /page/<name>      the registered bytes as an HTML page (text/html): video pages for yt-dlp
    /flakypage/<name> first request 500, then like /page
    /once404/<name>   first request 404, then like /ok (a 404 is permanent for the fetcher)
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_SECONDS = 2.0
DRIP_SECONDS = 0.05
DRIP_BYTES = 64
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Log in</body></html>\n"


@dataclass(frozen=True)
class Request:
    """One logged request."""

    method: str
    path: str
    range: str | None
    user_agent: str | None


class FaultServer(ThreadingHTTPServer):
    """The server plus the state the handlers share: files, request log, stop flag."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.log: list[Request] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"

    def record(self, request: Request) -> int:
        """Log a request; return how many requests this path had before it."""
        with self._lock:
            seen = sum(1 for r in self.log if r.path == request.path)
            self.log.append(request)
            return seen

    def requests(self, path: str) -> list[Request]:
        """The logged requests for ``path``, oldest first."""
        with self._lock:
            return [r for r in self.log if r.path == path]


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=N-`` / ``bytes=N-M`` range, else None."""
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
    if not match:
        return None
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    return start, min(end, size - 1)


class _Handler(BaseHTTPRequestHandler):
    """Dispatches ``/<route>/<name>`` to ``route_<route>``."""

    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep pytest output clean; the request log is in ``server.log``."""

    def do_GET(self) -> None:  # noqa: N802
        seen = self.server.record(
            Request("GET", self.path, self.headers.get("Range"), self.headers.get("User-Agent"))
        )
        route, _, name = self.path.lstrip("/").partition("/")
        handler = getattr(self, "route_" + route.replace("-", "_"), None)
        if handler is None or (name and name not in self.server.files):
            self.send_body(404, b"not found", "text/plain")
            return
        handler(self.server.files.get(name, b""), seen)

    # -- building blocks ------------------------------------------------------------

    def send_body(self, status: int, body: bytes, ctype: str = "video/mp4",
                  headers: dict[str, str] | None = None) -> None:
        """A complete response with Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def send_half(self, data: bytes) -> None:
        """Promise all of ``data``, send half, and drop the connection."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def send_file(self, data: bytes, ranges: bool = True) -> None:
        """200 with the file, or 206/416 for a Range request when ``ranges``."""
        header = self.headers.get("Range")
        if not ranges or header is None:
            self.send_body(200, data, headers={"Accept-Ranges": "bytes"} if ranges else None)
            return
        span = _parse_range(header, len(data))
        if span is None or span[0] >= len(data):
            self.send_body(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
            return
        start, end = span
        self.send_body(206, data[start : end + 1],
                       headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"})

    # -- routes ---------------------------------------------------------------------

    def route_ok(self, data: bytes, seen: int) -> None:
        self.send_file(data)

    def route_drop(self, data: bytes, seen: int) -> None:
        self.send_half(data) if seen == 0 else self.send_file(data)

    def route_dropall(self, data: bytes, seen: int) -> None:
        span = _parse_range(self.headers.get("Range"), len(data)) or (0, len(data) - 1)
        start, end = span
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(end + 1 - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        self.wfile.write(data[start : start + (end + 1 - start) // 2])
        self.close_connection = True

    def route_flaky(self, data: bytes, seen: int) -> None:
        if seen == 0:
            self.send_body(500, b"internal error", "text/plain")
        else:
            self.send_file(data)

    def route_busy(self, data: bytes, seen: int) -> None:
        if seen == 0:
            self.send_body(429, b"slow down", "text/plain", {"Retry-After": "1"})
        else:
            self.send_file(data)

    def route_error500(self, data: bytes, seen: int) -> None:
        self.send_body(500, b"internal error", "text/plain")

    def route_missing(self, data: bytes, seen: int) -> None:
        self.send_body(404, b"not found", "text/plain")

    def route_slow(self, data: bytes, seen: int) -> None:
        if self.server.stopping.wait(SLOW_SECONDS):
            return
        with contextlib.suppress(OSError):  # the client gave up long ago
            self.send_file(data)

    def route_drip(self, data: bytes, seen: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client hung up: stop
            for i in range(0, len(data), DRIP_BYTES):
                if self.server.stopping.wait(DRIP_SECONDS):
                    break
                self.wfile.write(data[i : i + DRIP_BYTES])
                self.wfile.flush()
        self.close_connection = True

    def route_html(self, data: bytes, seen: int) -> None:
        self.send_body(200, HTML, "text/html; charset=utf-8")

    def route_html_as_video(self, data: bytes, seen: int) -> None:
        self.send_body(200, HTML, "video/mp4")

    def route_empty(self, data: bytes, seen: int) -> None:
        self.send_body(200, b"")

    def route_norange(self, data: bytes, seen: int) -> None:
        self.send_half(data) if seen == 0 else self.send_file(data, ranges=False)

    def route_nolength(self, data: bytes, seen: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def route_range416(self, data: bytes, seen: int) -> None:
        if seen == 0:
            self.send_half(data)
        elif self.headers.get("Range"):
            self.send_body(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
        else:
            self.send_file(data)

    def route_page(self, data: bytes, seen: int) -> None:
        self.send_body(200, data, "text/html; charset=utf-8")

    def route_flakypage(self, data: bytes, seen: int) -> None:
        if seen == 0:
            self.send_body(500, b"internal error", "text/plain")
        else:
            self.route_page(data, seen)

    def route_once404(self, data: bytes, seen: int) -> None:
        if seen == 0:
            self.send_body(404, b"not found", "text/plain")
        else:
            self.send_file(data)


@contextlib.contextmanager
def serve(files: dict[str, bytes]) -> Iterator[FaultServer]:
    """Run a FaultServer on an ephemeral 127.0.0.1 port for the duration of the block."""
    server = FaultServer(files)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
