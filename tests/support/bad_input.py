"""Bad input files, each with what detect_cuts must record for it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from pipeline.sources import download
from pipeline.sources.record import SourceRecord
from support.videos import (
    _mp4_box,
    write_html,
    write_truncated,
    write_video,
    write_zero_byte,
)

HANG_TIMEOUT = 1.0  # seconds: only for runs whose workers all hang


def _over_reporting_avi(path: Path, frames: int, claims: int) -> Path:
    """An AVI whose headers (avih dwTotalFrames, strh dwLength) claim ``claims`` frames."""
    write_video(path, frames=frames, size=(64, 48), codec="mpeg4", container="avi")
    data = bytearray(path.read_bytes())
    avih, strh = data.index(b"avih") + 8, data.index(b"strh") + 8
    assert struct.unpack_from("<I", data, avih + 16)[0] == frames
    struct.pack_into("<I", data, avih + 16, claims)  # MainAVIHeader.dwTotalFrames
    struct.pack_into("<I", data, strh + 32, claims)  # AVIStreamHeader.dwLength
    path.write_bytes(bytes(data))
    return path


def _broken_halfway(path: Path, frames: int) -> Path:
    """An mp4 whose media payload is random after its first half: decoding fails partway."""
    clip = write_video(path.with_suffix(".src.mp4"), frames=frames, size=(64, 48))
    data = bytearray(clip.read_bytes())
    start, end = _mp4_box(bytes(data), b"mdat")
    cut = start + (end - start) * 6 // 10
    data[cut:end] = np.random.default_rng(0).bytes(end - cut)
    clip.unlink()
    path.write_bytes(bytes(data))
    return path


# name -> (make file, frames the "probe" claims, codec, expected status, error fragment)
CASES = {
    "good": (lambda p: write_video(p / "good.mp4", frames=24), 24, "h264", "ok", ""),
    "empty": (lambda p: write_zero_byte(p / "empty.mp4"), 24, "h264", "error", "empty file"),
    "html": (lambda p: write_html(p / "html.mp4"), 24, "h264", "error", "cannot open"),
    "truncated": (lambda p: write_truncated(write_video(p / "full.mkv", frames=60),
                                            p / "truncated.mkv"), 60, "h264", "partial",
                  "decoded 22 of 60 frames"),
    "broken-halfway": (lambda p: _broken_halfway(p / "broken.mp4", 60), 60, "h264", "partial",
                       "decode failed after"),
    "one-frame": (lambda p: write_video(p / "one.mp4", frames=1), 1, "h264", "error",
                  "too short: 1 frame(s) decoded"),
    "two-frames": (lambda p: write_video(p / "two.mp4", frames=2), 2, "h264", "error",
                   "too short: 2 frame(s) decoded"),
    "tiny": (lambda p: write_video(p / "tiny.mp4", frames=12, size=(16, 16)), 12, "h264", "ok", ""),
    "gray": (lambda p: write_video(p / "gray.mkv", frames=12, codec="ffv1", pix_fmt="gray"),
             12, "ffv1", "ok", ""),
    "yuv444": (lambda p: write_video(p / "yuv444.mp4", frames=12, pix_fmt="yuv444p"),
               12, "h264", "ok", ""),
    "rgba": (lambda p: write_video(p / "rgba.mov", frames=12, codec="png", pix_fmt="rgba"),
             12, "png", "ok", ""),
    "lying-probe": (lambda p: write_video(p / "lying.mp4", frames=20), 200, "h264", "partial",
                    "decoded 20 of 200 frames"),
    "over-reporting-avi": (lambda p: _over_reporting_avi(p / "over.avi", 20, 200), 200, "mpeg4",
                           "partial", "decoded 20 of 200 frames"),
    "hangs": (lambda p: write_video(p / "hangs.mp4", frames=12), 12, "h264", "error",
              f"timeout after {HANG_TIMEOUT:g} s"),
    "segfaults": (lambda p: write_video(p / "segv.mp4", frames=12), 12, "h264", "error",
                  "worker crashed: killed by SIGSEGV"),
    "exits": (lambda p: write_video(p / "exits.mp4", frames=12), 12, "h264", "error",
              "worker exited with code 3"),
    "raises": (lambda p: write_video(p / "raises.mp4", frames=12), 12, "h264", "error",
               "RuntimeError: boom"),
    "good-after": (lambda p: write_video(p / "after.mp4", frames=30, size=(96, 64)), 30, "h264",
                   "ok", ""),
}
GOOD = ("good", "good-after")
HANGING = ("hangs",)  # run on their own (test_a_hanging_worker_is_killed_and_recorded)


def write_sources(raw: Path, names: list[str], files: dict[str, Path]) -> None:
    """sources.parquet as the download stage writes it, every row claiming status ok."""
    rows = [SourceRecord(name=n, origin=n, kind="path", uri=str(files[n]), license="CC0",
                               attribution="", path=files[n].name, codec=CASES[n][2],
                               frames=CASES[n][1], fps=24.0, width=64, height=48)
            for n in names]
    download.write_outputs(download.DownloadResult(rows=rows), raw)
