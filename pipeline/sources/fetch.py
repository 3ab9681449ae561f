"""Robust HTTP download of one source video: retry, resume, verify, publish atomically.

Sources are large files on servers we do not control, so everything that can go wrong
on the way is expected: dropped connections, 5xx/429, servers that ignore Range,
login walls that answer 200 with an HTML page, empty bodies, files that changed since
their sha256 was pinned. ``fetch`` turns each of these into either a complete, verified
file at ``dest`` or a FetchError with a short ``reason`` for sources.parquet.

Partial-file policy: the body streams into a ``.part`` sibling. Transient failures that
exhaust the retries (timeouts, dropped connections, 5xx) and the ``max_seconds``
deadline KEEP it, so the next run resumes a big download with ``Range`` instead of
starting over. Permanent failures (4xx, HTML, empty, too large, sha256 mismatch)
DELETE it: the bytes are known to be wrong and resuming them would only build a wrong
file. Two processes must not fetch to the same ``dest`` at the same time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3

from pipeline.core.atomic import atomic_path

log = logging.getLogger("inbetweener.download")

USER_AGENT = "inbetweener/0.1"
CHUNK = 1 << 20  # bytes per read; reads return early with what has arrived
MAX_BACKOFF = 30.0  # seconds; cap on one wait between attempts
RETRY_STATUS = frozenset({408, 429})  # plus every 5xx
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one URL (params.yaml: ``download``)."""

    timeout: float = 30.0  # seconds: connect and per-read timeout
    retries: int = 4  # extra attempts after the first on retryable errors
    backoff: float = 1.0  # seconds; retry k (0-based) waits backoff * 2**k, capped
    max_bytes: int = 2 * 1024**3  # size cap
    max_seconds: float = 3600.0  # total deadline for one URL including retries


@dataclass(frozen=True)
class FetchResult:
    """A complete, verified download."""

    path: Path
    bytes: int
    sha256: str
    attempts: int  # requests made, including the successful one
    resumed: bool  # the successful request appended to an existing partial file


class FetchError(Exception):
    """A download that failed for good; ``reason`` is short and goes into the table."""

    def __init__(self, reason: str, url: str = "", attempts: int = 0) -> None:
        detail = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"{url}: {reason}{detail}" if url else reason)
        self.reason = reason
        self.url = url
        self.attempts = attempts


class _Retry(Exception):
    """A transient failure: try again (resuming), after ``wait`` seconds if given."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _Deadline(Exception):
    """``max_seconds`` ran out; like an exhausted retry, the partial file is kept."""


def _file_digest(path: str | os.PathLike[str]) -> hashlib._Hash:
    """A sha256 object fed with the whole file, chunk by chunk (flat memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file of any size."""
    return _file_digest(path).hexdigest()


def _check_url(url: str) -> None:
    """Only http(s): file://, ftp:// etc. are not handled here (local paths are)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"unsupported url scheme: {scheme or 'none'}", url)


def _headers(offset: int) -> dict[str, str]:
    """Identity encoding so byte counts and ranges refer to the file itself."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return headers


def _timeout(policy: FetchPolicy, deadline: float) -> tuple[float, float]:
    """(connect, read) timeouts, never beyond the deadline."""
    left = max(deadline - time.monotonic(), 0.001)
    return min(policy.timeout, left), min(policy.timeout, left)


def _retry_after(resp: requests.Response) -> float | None:
    """Seconds from a numeric Retry-After header (the HTTP-date form is ignored)."""
    value = resp.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _int_header(resp: requests.Response, name: str) -> int | None:
    """An integer header, or None when absent or malformed."""
    value = resp.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _content_range(resp: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``Content-Range: bytes a-b/total`` or ``bytes */total``."""
    match = re.fullmatch(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)",
                         resp.headers.get("Content-Range", "").strip())
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total and total != "*" else None)


def _plan(resp: requests.Response, part: Path, offset: int,
          policy: FetchPolicy) -> tuple[int, int | None]:
    """Decide from the status where the body goes: (write offset, expected total size).

    Raises _Retry for transient statuses, FetchError for permanent ones.
    """
    code = resp.status_code
    if code in RETRY_STATUS or code >= 500:
        raise _Retry(f"http {code}", _retry_after(resp))
    if code == 416 and offset:
        return _plan_416(resp, part, offset)
    if code == 206:
        offset = _plan_206(resp, part, offset)
    elif code == 200:
        if offset:
            log.info("server ignored Range for %s; restarting from byte 0", resp.url)
        offset = 0
    else:
        raise FetchError(f"http {code}")
    if "text/html" in resp.headers.get("Content-Type", "").lower():
        raise FetchError("html page, not a video")
    total = _expected_total(resp, code)
    if total is not None and total > policy.max_bytes:
        raise FetchError(f"too large: {total} bytes > max_bytes {policy.max_bytes}")
    return offset, total


def _plan_206(resp: requests.Response, part: Path, offset: int) -> int:
    """Append when Content-Range starts where the partial file ends; else start over."""
    first, _ = _content_range(resp)
    if first == offset:
        return offset
    part.unlink(missing_ok=True)
    raise _Retry(f"content-range starts at {first}, wanted {offset}; restarting", wait=0.0)


def _plan_416(resp: requests.Response, part: Path, offset: int) -> tuple[int, int | None]:
    """416 on a resume: the partial is already whole, or it no longer fits the file."""
    _, total = _content_range(resp)
    if total == offset:
        return offset, offset
    part.unlink(missing_ok=True)
    raise _Retry("http 416 on resume; restarting from byte 0", wait=0.0)


def _expected_total(resp: requests.Response, code: int) -> int | None:
    """Full file size once the body is in; None when the server does not say.

    A compressed body (despite our identity request) has a Content-Length that is not
    the file's size, so it is not used.
    """
    if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    if code == 206:
        return _content_range(resp)[1]
    return _int_header(resp, "Content-Length")


def _chunks(resp: requests.Response) -> Iterator[bytes]:
    """Body chunks as they arrive (read1), so the deadline is checked while a slow
    server trickles; falls back to iter_content on urllib3 without read1."""
    raw = resp.raw
    if not hasattr(raw, "read1"):
        yield from resp.iter_content(CHUNK)
        return
    while chunk := raw.read1(CHUNK, decode_content=True):
        yield chunk


def _sniff(head: bytes) -> None:
    """Reject an HTML page served as a video (login walls, error pages with 200).

    No video container starts with "<", so a leading tag plus an html tag is proof.
    """
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_HTML_STARTS) or (text.startswith(b"<") and b"<html" in text):
        raise FetchError("html page, not a video")


def _receive(resp: requests.Response, part: Path, offset: int, total: int | None,
             policy: FetchPolicy, deadline: float) -> str:
    """Stream the body into ``part`` from ``offset``; return the whole file's sha256."""
    digest = _file_digest(part) if offset else hashlib.sha256()
    if offset and offset == total:  # a 416 told us the partial file is already whole
        return digest.hexdigest()
    size = offset
    with open(part, "ab" if offset else "wb") as fh:
        for chunk in _chunks(resp):
            if size == 0:
                _sniff(chunk)
            size += len(chunk)
            if size > policy.max_bytes:
                raise FetchError(f"too large: over max_bytes {policy.max_bytes}")
            fh.write(chunk)
            digest.update(chunk)
            if time.monotonic() > deadline:
                raise _Deadline()
    if size == 0:
        raise FetchError("empty body")
    if total is not None and size != total:
        raise _Retry(f"incomplete body: {size} of {total} bytes")
    return digest.hexdigest()


def _transient(err: Exception) -> _Retry | None:
    """Classify a requests/urllib3 error: a _Retry if trying again may help, else None."""
    if isinstance(err, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)):
        return None
    timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    if isinstance(err, timeouts) or any(isinstance(a, timeouts) for a in err.args):
        return _Retry("timeout")
    broken = (urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError)
    if isinstance(err, broken):
        return _Retry("incomplete body: connection closed early")
    if isinstance(err, (requests.ConnectionError, urllib3.exceptions.HTTPError)):
        return _Retry("connection error")
    return None


def _attempt(session: requests.Session, url: str, part: Path, policy: FetchPolicy,
             deadline: float) -> tuple[str, bool]:
    """One request: returns (sha256, appended to an existing partial).

    Local I/O errors (disk full) are not caught: they are the run's problem, not the
    source's, and retrying would not help.
    """
    offset = part.stat().st_size if part.exists() else 0
    if offset:
        log.info("%s: resuming at byte %d", url, offset)
    try:
        with session.get(url, headers=_headers(offset), stream=True,
                         timeout=_timeout(policy, deadline)) as resp:
            offset, total = _plan(resp, part, offset, policy)
            return _receive(resp, part, offset, total, policy, deadline), offset > 0
    except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
        retry = _transient(err)
        if retry is None:
            raise FetchError(f"request failed: {type(err).__name__}: {err}") from err
        raise retry from err


def backoff_wait(policy: FetchPolicy, retry: int, hint: float | None = None) -> float:
    """Wait before retry ``retry`` (0-based): exponential, or the server's Retry-After.

    Public so that resolving a video page (``pipeline.sources.page``) waits by the same rule.
    """
    wait = policy.backoff * 2**retry if hint is None else hint
    return min(wait, MAX_BACKOFF)


def _download(session: requests.Session, url: str, part: Path, policy: FetchPolicy,
              sleep: Callable[[float], object]) -> tuple[str, int, bool]:
    """Attempts until the body is complete: (sha256, attempts, resumed).

    Permanent errors delete the partial; exhausted retries and the deadline keep it.
    """
    deadline = time.monotonic() + policy.max_seconds
    for attempt in range(1, policy.retries + 2):
        try:
            digest, appended = _attempt(session, url, part, policy, deadline)
            return digest, attempt, appended
        except FetchError as err:
            part.unlink(missing_ok=True)
            raise FetchError(err.reason, url, attempt) from err
        except _Deadline:
            raise FetchError(f"deadline: over max_seconds {policy.max_seconds:g}", url,
                             attempt) from None
        except _Retry as err:
            if attempt > policy.retries:
                raise FetchError(err.reason, url, attempt) from err
            wait = backoff_wait(policy, attempt - 1, err.wait)
            if time.monotonic() + wait >= deadline:
                raise FetchError(f"deadline: over max_seconds {policy.max_seconds:g} "
                                 f"(last error: {err.reason})", url, attempt) from err
            log.warning("%s: %s; retry %d/%d in %.1f s", url, err.reason, attempt,
                        policy.retries, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def _verify(part: Path, digest: str, expected: str | None) -> None:
    """Compare with the pinned sha256; a mismatch deletes the download."""
    if expected is not None and digest != expected.lower():
        part.unlink(missing_ok=True)
        raise FetchError(f"sha256 mismatch: expected {expected.lower()}, got {digest}")


def fetch(url: str, dest: str | os.PathLike[str], policy: FetchPolicy,
          sha256: str | None = None, partial: str | os.PathLike[str] | None = None,
          session: requests.Session | None = None,
          sleep: Callable[[float], object] = time.sleep) -> FetchResult:
    """Download ``url`` to ``dest`` (atomically), resuming ``partial`` if it exists.

    ``partial`` defaults to ``dest`` + ".part". ``sleep`` is injectable so tests do not
    wait out the backoff. Raises FetchError with a short ``reason``.
    """
    _check_url(url)
    dest = Path(dest)
    part = Path(partial) if partial is not None else dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s -> %s%s", url, dest, " (resuming)" if part.exists() else "")
    own = session is None
    session = session or requests.Session()
    try:
        digest, attempts, resumed = _download(session, url, part, policy, sleep)
    finally:
        if own:
            session.close()
    try:
        _verify(part, digest, sha256)
    except FetchError as err:
        raise FetchError(err.reason, url, attempts) from None
    size = part.stat().st_size
    with atomic_path(dest) as tmp:
        os.replace(part, tmp)
    log.info("fetched %s: %d bytes in %d attempt(s)%s", dest.name, size, attempts,
             ", resumed" if resumed else "")
    return FetchResult(dest, size, digest, attempts, resumed)
