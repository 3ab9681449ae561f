"""``kind: page``: yt-dlp finds the page's video offline, our fetcher downloads it.

Every page and file is served by the fault-injecting server on 127.0.0.1; the video is
a real small clip (``support.videos``), so the probe after the fetch is real too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.http_server import serve
from support.videos import write_video

from pipeline.core.config import parse_params
from pipeline.sources import download, page
from pipeline.sources.fetch import FetchPolicy, sha256_file


def _page(*sources: str, title: str = "A cartoon") -> bytes:
    """An HTML page with one <video> per item; an item is one or more <source> srcs."""
    videos = "".join(
        "<video controls>" + "".join(f'<source src="{s}" type="video/mp4">' for s in item.split("|"))
        + "</video>" for item in sources)
    return (f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f"{videos}<p>Some text.</p></body></html>").encode()


@pytest.fixture()
def clip(tmp_path: Path) -> bytes:
    return write_video(tmp_path / "clip.mp4", frames=12, size=(64, 48)).read_bytes()


def _run(tmp_path: Path, sources: list[dict], **download_params) -> dict[str, dict]:
    params = parse_params({"sources": sources, "download": {
        "timeout": 2.0, "retries": 2, "backoff": 0.0} | download_params})
    result = download.run_download(params, tmp_path / "raw", root=tmp_path,
                                   partial_dir=tmp_path / "part")
    return {r.name: r.__dict__ for r in result.rows}


def _policy(**kw) -> FetchPolicy:
    return FetchPolicy(**({"timeout": 2.0, "retries": 2, "backoff": 0.0} | kw))


def test_page_video_is_resolved_and_fetched(tmp_path: Path, clip: bytes):
    files = {"v.mp4": clip, "watch.html": _page("/ok/v.mp4")}
    with serve(files) as srv:
        url = srv.url("/page/watch.html")
        rows = _run(tmp_path, [{"kind": "page", "name": "toon", "url": url,
                                "sha256": sha256_file(tmp_path / "clip.mp4"),
                                "license": "CC BY 4.0", "attribution": "A. Nimator",
                                "split": "test"}])
        media = srv.requests("/ok/v.mp4")
    row = rows["toon"]
    assert row["status"] == "ok", row["error"]
    assert (row["origin"], row["kind"], row["uri"]) == ("toon", "page", url)
    assert (row["license"], row["attribution"], row["split"]) == ("CC BY 4.0", "A. Nimator", "test")
    assert (row["frames"], row["width"], row["codec"]) == (12, 64, "h264")
    assert (tmp_path / "raw" / "toon.mp4").read_bytes() == clip
    assert len(media) == 1 and media[0].user_agent.startswith("inbetweener/"), \
        "the media file must come through our fetcher, not yt-dlp"


def test_first_video_of_the_page_is_chosen(clip: bytes):
    files = {"a.mp4": clip, "b.mp4": clip, "two.html": _page("/ok/a.mp4", "/ok/b.mp4")}
    with serve(files) as srv:
        links = [page.resolve(srv.url("/page/two.html"), _policy()) for _ in range(2)]
    assert links[0] == links[1] and links[0].url == srv.url("/ok/a.mp4")


def test_page_without_video_is_an_error_row(tmp_path: Path, clip: bytes):
    with serve({"blank.html": _page()}) as srv:
        rows = _run(tmp_path, [{"kind": "page", "name": "nothing", "url": srv.url("/page/blank.html")},
                               {"kind": "page", "name": "login", "url": srv.url("/html")}])
    for name in ("nothing", "login"):
        assert rows[name]["status"] == "error"
        assert rows[name]["error"] == "page: no video found on the page"
    assert not list((tmp_path / "raw").glob("nothing*"))


def test_page_that_is_gone_or_unreachable_is_an_error_row(tmp_path: Path, caplog):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with serve({}) as srv:
        rows = _run(tmp_path, [{"kind": "page", "name": "gone", "url": srv.url("/missing")},
                               {"kind": "page", "name": "down", "url": f"http://127.0.0.1:{port}/p"}],
                    retries=1)
        gone = srv.requests("/missing")
    assert rows["gone"]["error"].startswith("page: ") and "404" in rows["gone"]["error"]
    assert len(gone) == 1, "a 404 page is permanent: not asked again"
    assert rows["down"]["status"] == "error" and "Connection refused" in rows["down"]["error"]
    retried = [r.getMessage() for r in caplog.records if "retry 1/1" in r.getMessage()]
    assert len(retried) == 1 and f":{port}/p" in retried[0], "a refused connection is transient"


def test_page_request_is_retried_on_a_transient_error(clip: bytes):
    sleeps: list[float] = []
    with serve({"v.mp4": clip, "p.html": _page("/ok/v.mp4")}) as srv:
        link = page.resolve(srv.url("/flakypage/p.html"), _policy(backoff=0.5), sleep=sleeps.append)
        asked = len(srv.requests("/flakypage/p.html"))
    assert link.url == srv.url("/ok/v.mp4") and asked == 2 and sleeps == [0.5]


def test_media_url_retried_like_a_url_source(tmp_path: Path, clip: bytes):
    """500 then 200: retried and fetched; 404 then 200: permanent, as for ``kind: url``."""
    files = {"v.mp4": clip, "flaky.html": _page("/flaky/v.mp4"), "gone.html": _page("/once404/v.mp4")}
    with serve(files) as srv:
        rows = _run(tmp_path, [{"kind": "page", "name": "flaky", "url": srv.url("/page/flaky.html")},
                               {"kind": "page", "name": "gone", "url": srv.url("/page/gone.html")}])
        flaky, gone = len(srv.requests("/flaky/v.mp4")), len(srv.requests("/once404/v.mp4"))
    assert rows["flaky"]["status"] == "ok" and flaky == 2
    assert (tmp_path / "raw" / "flaky.mp4").read_bytes() == clip
    assert rows["gone"]["error"] == "http 404" and gone == 1


def test_media_over_max_bytes_is_refused(tmp_path: Path, clip: bytes):
    with serve({"v.mp4": clip, "p.html": _page("/ok/v.mp4")}) as srv:
        rows = _run(tmp_path, [{"kind": "page", "name": "big", "url": srv.url("/page/p.html")}],
                    max_bytes=len(clip) - 1)
    assert rows["big"]["status"] == "error" and rows["big"]["error"].startswith("too large")
    assert not list((tmp_path / "raw").glob("big*"))


def test_media_with_wrong_sha256_is_refused(tmp_path: Path, clip: bytes):
    with serve({"v.mp4": clip, "p.html": _page("/ok/v.mp4")}) as srv:
        rows = _run(tmp_path, [{"kind": "page", "name": "pinned", "url": srv.url("/page/p.html"),
                                "sha256": "0" * 64}])
    assert rows["pinned"]["error"].startswith("sha256 mismatch: expected 0000")
    assert not list((tmp_path / "raw").glob("pinned*"))
    assert not list((tmp_path / "part").glob("*")), "a refused download left its partial"


def test_stream_only_page_has_no_usable_format(clip: bytes):
    """An HLS-only page gives no single file to fetch: a reason, not a crash."""
    body = (b'<!DOCTYPE html><html><head><title>t</title></head><body><video>'
            b'<source src="/ok/s.m3u8" type="application/x-mpegURL"></video></body></html>')
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n/ok/v.mp4\n#EXT-X-ENDLIST\n"
    with serve({"p.html": body, "s.m3u8": playlist, "v.mp4": clip}) as srv:
        with pytest.raises(page.PageError) as info:
            page.resolve(srv.url("/page/p.html"), _policy())
    assert info.value.reason == "no single-file http(s) video format on the page"
    assert not srv.requests("/ok/v.mp4"), "a segment was downloaded"


def test_ytdlp_is_boxed_in(tmp_path: Path, clip: bytes, monkeypatch, caplog):
    """Bounded by our params, nothing cached on disk, and its messages in our logger."""
    opts = page.ydl_options(FetchPolicy(timeout=7.0, retries=3))
    assert (opts["socket_timeout"], opts["retries"], opts["extractor_retries"]) == (7.0, 3, 3)
    assert opts["cachedir"] is False and opts["quiet"] is True and opts["format"] == page.FORMAT
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with serve({"v.mp4": clip, "p.html": _page("/ok/v.mp4")}) as srv:
        page.resolve(srv.url("/page/p.html"), _policy())
    assert not (tmp_path / "cache").exists() and not (tmp_path / "home").exists()
    assert any(r.getMessage().startswith("yt-dlp: ") for r in caplog.records)


@pytest.mark.parametrize(
    ("message", "reason"),
    [("ERROR: [generic] p: Unable to download webpage: HTTP Error 500: Internal Server Error "
      "(caused by <HTTPError 500: Internal Server Error>)",
      "Unable to download webpage: HTTP Error 500: Internal Server Error"),
     ("ERROR: Requested format is not available. Use --list-formats for a list of available formats",
      "no single-file http(s) video format on the page")],
)
def test_reasons_are_short(message: str, reason: str):
    from yt_dlp.utils import DownloadError

    assert page.reason_of(DownloadError(message)) == reason
