"""fetch(): every fault of the test server ends in the right file or the right reason."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.http_server import FaultServer, serve
from support.videos import write_truncated, write_video

from pipeline.media.probe import ProbeError, probe
from pipeline.sources.fetch import (
    FetchError,
    FetchPolicy,
    FetchResult,
    fetch,
    sha256_file,
)

# Short timeouts and a fake sleep keep the whole file at a couple of seconds.
FAST = FetchPolicy(timeout=0.3, retries=2, backoff=0.5)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The served files: a small mp4 and the same mp4 cut at 60%."""
    tmp = tmp_path_factory.mktemp("served")
    clip = write_video(tmp / "clip.mp4", frames=24, size=(64, 48))
    cut = write_truncated(clip, tmp / "cut.mp4", 0.6)
    return {"clip.mp4": clip.read_bytes(), "cut.mp4": cut.read_bytes()}


@pytest.fixture()
def server(files: dict[str, bytes]) -> Iterator[FaultServer]:
    with serve(files) as srv:
        yield srv


@pytest.fixture()
def session() -> Iterator[requests.Session]:
    """No proxies from the environment: requests must go straight to 127.0.0.1."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


class Sleeps(list):
    """Records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture()
def get(server: FaultServer, session: requests.Session, sleeps: Sleeps,
        tmp_path: Path) -> Callable[..., FetchResult]:
    """fetch(route) into tmp_path/out/clip.mp4 with the FAST policy unless overridden."""

    def _get(route: str, policy: FetchPolicy = FAST, **kw) -> FetchResult:
        return fetch(server.url(route), tmp_path / "out" / "clip.mp4", policy,
                     session=session, sleep=sleeps, **kw)

    return _get


def _ranges(server: FaultServer, route: str) -> list[str | None]:
    return [r.range for r in server.requests(route)]


def _leftovers(tmp_path: Path) -> list[str]:
    out = tmp_path / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_ok(get, server, files, tmp_path):
    got = get("/ok/clip.mp4")
    data = files["clip.mp4"]
    assert got.path.read_bytes() == data and got.bytes == len(data)
    assert got.sha256 == hashlib.sha256(data).hexdigest() == sha256_file(got.path)
    assert (got.attempts, got.resumed) == (1, False)
    assert _leftovers(tmp_path) == ["clip.mp4"], "partial or temp file left behind"
    assert server.requests("/ok/clip.mp4")[0].user_agent == "inbetweener/0.1"


def test_dropped_connection_resumes_with_range(get, server, files, sleeps):
    got = get("/drop/clip.mp4")
    data = files["clip.mp4"]
    assert got.path.read_bytes() == data
    assert got.sha256 == hashlib.sha256(data).hexdigest(), "hash must cover the resumed prefix"
    assert (got.attempts, got.resumed) == (2, True)
    assert _ranges(server, "/drop/clip.mp4") == [None, f"bytes={len(data) // 2}-"]
    assert sleeps == [0.5]


def test_500_once_then_ok(get, server, files, sleeps):
    got = get("/flaky/clip.mp4")
    assert got.path.read_bytes() == files["clip.mp4"] and got.attempts == 2
    assert sleeps == [0.5]


def test_429_waits_as_the_server_asks(get, files, sleeps):
    assert get("/busy/clip.mp4").path.read_bytes() == files["clip.mp4"]
    assert sleeps == [1.0]


def test_backoff_is_exponential_and_capped(get, server, sleeps):
    with pytest.raises(FetchError) as exc:
        get("/error500", FetchPolicy(retries=4, backoff=10.0))
    assert exc.value.reason == "http 500" and exc.value.attempts == 5
    assert sleeps == [10.0, 20.0, 30.0, 30.0]
    assert len(server.requests("/error500")) == 5


def test_404_fails_at_once(get, server, sleeps, tmp_path):
    with pytest.raises(FetchError) as exc:
        get("/missing")
    assert exc.value.reason == "http 404"
    assert len(server.requests("/missing")) == 1 and sleeps == []
    assert _leftovers(tmp_path) == []


def test_slow_server_times_out_after_retries(get, server):
    start = time.monotonic()
    with pytest.raises(FetchError) as exc:
        get("/slow/clip.mp4", FetchPolicy(timeout=0.3, retries=1, backoff=0.0))
    assert exc.value.reason == "timeout"
    assert len(server.requests("/slow/clip.mp4")) == 2
    assert time.monotonic() - start < 1.5, "client timeout was not applied"


@pytest.mark.parametrize("route", ["/html", "/html-as-video"])
def test_html_page_is_not_a_video(get, server, sleeps, tmp_path, route):
    with pytest.raises(FetchError) as exc:
        get(route)
    assert exc.value.reason == "html page, not a video"
    assert len(server.requests(route)) == 1 and _leftovers(tmp_path) == []


def test_empty_body(get, tmp_path):
    with pytest.raises(FetchError) as exc:
        get("/empty")
    assert exc.value.reason == "empty body" and _leftovers(tmp_path) == []


def test_sha256_match_and_mismatch(get, files, tmp_path):
    real = hashlib.sha256(files["clip.mp4"]).hexdigest()
    assert get("/ok/clip.mp4", sha256=real.upper()).sha256 == real
    (tmp_path / "out" / "clip.mp4").unlink()
    with pytest.raises(FetchError) as exc:
        get("/ok/clip.mp4", sha256="0" * 64)
    assert exc.value.reason == f"sha256 mismatch: expected {'0' * 64}, got {real}"
    assert _leftovers(tmp_path) == [], "a file that failed its checksum must be removed"


def test_too_large_by_content_length(get, server, tmp_path):
    with pytest.raises(FetchError) as exc:
        get("/ok/clip.mp4", FetchPolicy(max_bytes=1000))
    assert exc.value.reason.startswith("too large: ")
    assert len(server.requests("/ok/clip.mp4")) == 1 and _leftovers(tmp_path) == []


def test_too_large_while_streaming_without_length(get, files, tmp_path):
    with pytest.raises(FetchError) as exc:
        get("/nolength/clip.mp4", FetchPolicy(max_bytes=1000))
    assert exc.value.reason.startswith("too large: ") and _leftovers(tmp_path) == []
    assert get("/nolength/clip.mp4").path.read_bytes() == files["clip.mp4"]


def test_max_seconds_stops_a_trickling_server_and_keeps_the_partial(get, tmp_path):
    start = time.monotonic()
    with pytest.raises(FetchError) as exc:
        get("/drip/clip.mp4", FetchPolicy(timeout=1.0, max_seconds=0.3))
    assert exc.value.reason.startswith("deadline: ")
    assert time.monotonic() - start < 1.5
    part = tmp_path / "out" / "clip.mp4.part"
    assert part.stat().st_size > 0, "a deadline is transient: keep the bytes for a re-run"


def test_max_seconds_cuts_the_backoff_short(get, sleeps):
    with pytest.raises(FetchError) as exc:
        get("/error500", FetchPolicy(retries=4, backoff=100.0, max_seconds=5.0))
    assert exc.value.reason.startswith("deadline: ") and "http 500" in exc.value.reason
    assert sleeps == []


def test_server_ignoring_range_restarts_from_zero(get, server, files):
    got = get("/norange/clip.mp4")
    data = files["clip.mp4"]
    assert got.path.read_bytes() == data and got.resumed is False
    assert _ranges(server, "/norange/clip.mp4") == [None, f"bytes={len(data) // 2}-"]


def test_416_on_resume_restarts_from_zero(get, server, files):
    got = get("/range416/clip.mp4")
    data = files["clip.mp4"]
    assert got.path.read_bytes() == data and got.resumed is False
    assert _ranges(server, "/range416/clip.mp4") == [None, f"bytes={len(data) // 2}-", None]


def test_exhausted_retries_keep_the_partial_and_a_rerun_resumes(get, server, files, tmp_path):
    with pytest.raises(FetchError) as exc:
        get("/dropall/clip.mp4")
    assert exc.value.reason.startswith("incomplete body") and exc.value.attempts == 3
    part = tmp_path / "out" / "clip.mp4.part"
    kept = part.stat().st_size
    assert 0 < kept < len(files["clip.mp4"])
    got = get("/ok/clip.mp4")
    assert got.resumed and got.attempts == 1 and got.path.read_bytes() == files["clip.mp4"]
    assert _ranges(server, "/ok/clip.mp4") == [f"bytes={kept}-"]
    assert _leftovers(tmp_path) == ["clip.mp4"]


def test_complete_partial_finishes_on_416(get, server, files, tmp_path):
    part = tmp_path / "part" / "clip.part"
    part.parent.mkdir()
    part.write_bytes(files["clip.mp4"])
    got = get("/ok/clip.mp4", partial=part)
    assert got.path.read_bytes() == files["clip.mp4"] and not part.exists()
    assert _ranges(server, "/ok/clip.mp4") == [f"bytes={len(files['clip.mp4'])}-"]


def test_connection_refused(get, session, sleeps, tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError) as exc:
        fetch(f"http://127.0.0.1:{port}/x.mp4", tmp_path / "x.mp4", FAST, session=session,
              sleep=sleeps)
    assert exc.value.reason == "connection error" and len(sleeps) == FAST.retries


def test_only_http_urls(tmp_path):
    with pytest.raises(FetchError) as exc:
        fetch("ftp://127.0.0.1/clip.mp4", tmp_path / "clip.mp4", FAST)
    assert exc.value.reason == "unsupported url scheme: ftp"


def test_truncated_mp4_downloads_whole_but_fails_the_probe(get, files):
    got = get("/ok/cut.mp4")
    assert got.path.read_bytes() == files["cut.mp4"]
    with pytest.raises(ProbeError, match="truncated"):
        probe(got.path)
