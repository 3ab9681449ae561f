"""A ``kind: page`` source: the video a web page plays, found by yt-dlp.

:func:`resolve` has yt-dlp only turn the page into a media URL (``download=False``); the
file is fetched by :func:`pipeline.sources.fetch.fetch`, with the same retries, size cap,
deadline and sha256 check as a ``kind: url`` source. yt-dlp runs as a boxed-in library:
no cache dir, no plugins, no config files, quiet, its messages on our logger (DEBUG;
warnings at INFO), socket timeout and retries from ``download.timeout`` and
``download.retries``. The page request is retried here on transient failures
(connection errors, timeouts, 408, 429, 5xx) with the fetcher's backoff. Every yt-dlp
failure becomes a :class:`PageError` with a short reason, never another exception.
The video is the page's first (document order); its format, the one yt-dlp ranks best
among :data:`FORMAT`: a single file over http(s) that holds video (HLS and DASH are
left out). Why these choices: docs/NOTES.md.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yt_dlp
import yt_dlp.globals
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import UnsupportedError, YoutubeDLError

from pipeline.sources.fetch import RETRY_STATUS, FetchPolicy, backoff_wait

log = logging.getLogger("inbetweener.download")

# Single-file http(s) formats with a video stream (vcodec unknown counts as video: an
# HTML5 <source> states none). "bv*" = best format that has video, may have audio.
FORMAT = "bv*[protocol^=http][protocol!*=dash][protocol!*=m3u8]"
MAX_REASON = 200  # chars of a yt-dlp message kept in sources.parquet


class PageError(Exception):
    """A page that gave no usable video; ``reason`` is short and goes into the table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MediaLink:
    """What a page resolved to: the media file's URL and yt-dlp's view of it."""

    url: str
    ext: str
    format_id: str


class _YtdlpLog:
    """yt-dlp's ``logger`` interface onto ours: its chatter is DEBUG, its warnings INFO
    (the generic extractor always warns that it is the fallback), its errors DEBUG too
    (the error comes back as an exception and is recorded with the source)."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)


def ydl_options(policy: FetchPolicy) -> dict[str, Any]:
    """YoutubeDL options: resolve only, bounded, quiet, nothing written to disk."""
    return {
        "quiet": True,
        "noprogress": True,
        "logger": _YtdlpLog(),
        "cachedir": False,
        "socket_timeout": policy.timeout,
        "retries": policy.retries,
        "extractor_retries": policy.retries,
        "fragment_retries": policy.retries,
        "format": FORMAT,
        "playlist_items": "1",   # several videos on the page: the first
        "check_formats": False,  # no extra requests to probe formats
        "skip_download": True,
    }


def resolve(page_url: str, policy: FetchPolicy,
            sleep: Callable[[float], object] = time.sleep) -> MediaLink:
    """The media URL of the video ``page_url`` shows; PageError with a reason if none."""
    deadline = time.monotonic() + policy.max_seconds
    for attempt in range(policy.retries + 1):
        try:
            return _resolve_once(page_url, policy)
        except YoutubeDLError as exc:
            if not _transient(exc) or attempt == policy.retries:
                raise PageError(reason_of(exc)) from exc
            wait = backoff_wait(policy, attempt)
            if time.monotonic() + wait >= deadline:
                raise PageError(f"deadline: over max_seconds {policy.max_seconds:g} "
                                f"(last error: {reason_of(exc)})") from exc
            log.warning("%s: %s; retry %d/%d in %.1f s", page_url, reason_of(exc),
                        attempt + 1, policy.retries, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def _resolve_once(page_url: str, policy: FetchPolicy) -> MediaLink:
    """One yt-dlp extraction; an unexpected non-yt-dlp exception (a yt-dlp bug on an odd
    page) is wrapped so that the caller records it instead of crashing the stage."""
    _no_plugins()
    try:
        with yt_dlp.YoutubeDL(ydl_options(policy)) as ydl:
            info = ydl.extract_info(page_url, download=False)
    except YoutubeDLError:
        raise
    except Exception as exc:  # noqa: BLE001 - third-party code on untrusted pages
        log.warning("yt-dlp failed on %s", page_url, exc_info=True)
        raise YoutubeDLError(f"yt-dlp failed: {type(exc).__name__}: {exc}") from exc
    return _media(info)


def _no_plugins() -> None:
    """Never load yt-dlp plugins from the user's directories: resolving must not depend
    on what happens to be installed in ~/.yt-dlp-plugins (the CLI's --no-plugin-dirs)."""
    yt_dlp.globals.plugin_dirs.value = []


def _media(info: dict[str, Any] | None) -> MediaLink:
    """The selected format of the (first) video in yt-dlp's processed info dict."""
    entries = list(info.get("entries") or []) if info else []
    video = entries[0] if entries else info
    if not video or not video.get("url"):
        raise YoutubeDLError("no video found on the page")
    return MediaLink(url=video["url"], ext=str(video.get("ext") or ""),
                     format_id=str(video.get("format_id") or ""))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (DownloadError.exc_info, ExtractorError.cause, __cause__)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        info = getattr(err, "exc_info", None)
        todo += [info[1] if info else None, getattr(err, "cause", None), err.__cause__,
                 err.__context__]


def _transient(exc: BaseException) -> bool:
    """Worth asking again: a network failure, or an HTTP status the fetcher retries."""
    for err in _causes(exc):
        if isinstance(err, HTTPError):
            return err.status in RETRY_STATUS or err.status >= 500
        if isinstance(err, TransportError):
            return True
    return False


def reason_of(exc: BaseException) -> str:
    """A short, stable reason: yt-dlp's message without its prefix, hints and causes."""
    if any(isinstance(err, UnsupportedError) for err in _causes(exc)):
        return "no video found on the page"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[\w:]+\]\s*[^:]*:\s*", "", text)  # "[generic] page-id: "
    text = re.sub(r"\s*\(caused by .*$", "", text)
    text = re.sub(r";?\s*please report this issue.*$", "", text, flags=re.IGNORECASE)
    if text.startswith("Requested format is not available"):
        return "no single-file http(s) video format on the page"
    return text[:MAX_REASON]
