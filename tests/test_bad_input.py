"""detect_cuts on bad input: every source is recorded with a reason or processed, none
crashes or hangs the stage, and the good sources' rows are untouched.

The probe (download stage) already rejects most of these files; here sources.parquet is
written by hand with ``status: ok`` for all of them, so the stage's own defences are
tested: a probe can be wrong, and files can change after it ran.
"""

from __future__ import annotations

import ctypes
import os
import struct
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import download
from pipeline.config import CutsParams
from pipeline.detect_cuts import (
    DECODED_TABLE,
    Analysis,
    SourceJob,
    analyse_source,
    main,
    run_detect_cuts,
)
from pipeline.guard import run_guarded
from pipeline.tables import FRAMES_TABLE
from tests.videos import _mp4_box, write_html, write_truncated, write_video, write_zero_byte

# Timeouts are decided by events, never by how fast a loaded machine decodes: a run
# whose sources must finish gets a margin no decode of these tiny files approaches,
# and the hanging worker (which never returns) runs alone under a short timeout.
TIMEOUT = 120.0  # seconds per source where every worker must finish
HANG_TIMEOUT = 1.0  # seconds: only for runs whose workers all hang
RETRY_TIMEOUT = 10.0  # the decord hang's timeout, which the PyAV retry of 24 tiny frames shares


def misbehaving_worker(job: SourceJob, params: CutsParams) -> Analysis:
    """analyse_source, except for sources whose name asks for trouble (runs in the worker)."""
    if job.name == "hangs" or (job.name == "hangs-in-decord" and job.backend == "decord"):
        time.sleep(3600)
    if job.name == "segfaults":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    if job.name == "exits":
        os._exit(3)
    if job.name == "raises":
        raise RuntimeError("boom")
    return analyse_source(job, params)


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


def _sources(raw: Path, names: list[str], files: dict[str, Path]) -> None:
    """sources.parquet as the download stage writes it, every row claiming status ok."""
    rows = [download.SourceRow(name=n, origin=n, kind="path", uri=str(files[n]), license="CC0",
                               attribution="", path=files[n].name, codec=CASES[n][2],
                               frames=CASES[n][1], fps=24.0, width=64, height=48)
            for n in names]
    download.write_outputs(download.DownloadResult(rows=rows), raw)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    raw = tmp_path_factory.mktemp("raw")
    return {name: Path(case[0](raw)) for name, case in CASES.items()}


def _expect(result, names: list[str]) -> None:
    """Every source of ``names`` recorded, in order, with the status and reason CASES says."""
    decoded = result.decoded.set_index("source")
    assert list(decoded.index) == names
    for name in names:
        _, _, _, status, fragment = CASES[name]
        row = decoded.loc[name]
        assert (row["status"], fragment in row["error"]) == (status, True), (name, row["error"])


@pytest.mark.parametrize("reader", ["auto", "decord"])
def test_bad_sources_are_recorded_and_good_ones_untouched(files: dict[str, Path], reader: str):
    raw = next(iter(files.values())).parent
    params = CutsParams(reader=reader, timeout=TIMEOUT)
    _sources(raw, list(GOOD), files)
    alone = run_detect_cuts(params, raw, raw / f"alone-{reader}")
    names = [n for n in CASES if n not in HANGING]
    _sources(raw, names, files)
    result = run_detect_cuts(params, raw, raw / f"all-{reader}", worker=misbehaving_worker)

    _expect(result, names)
    decoded = result.decoded.set_index("source")
    frames = result.frames.groupby("source").size()
    assert set(frames.index) == set(decoded.index[decoded["status"] != "error"])
    assert frames["truncated"] == 22 and frames["lying-probe"] == 20
    assert frames["tiny"] == 12 and {len(t) for t in result.frames["thumb"]} == {16 * 16}
    good = result.frames[result.frames["source"].isin(GOOD)].reset_index(drop=True)
    pd.testing.assert_frame_equal(good, alone.frames)
    written = pd.read_parquet(raw / f"all-{reader}" / FRAMES_TABLE)
    pd.testing.assert_frame_equal(written, result.frames)
    assert len(pd.read_parquet(raw / f"all-{reader}" / DECODED_TABLE)) == len(names)


@pytest.mark.parametrize("reader", ["auto", "decord"])
def test_a_hanging_worker_is_killed_and_recorded(files: dict[str, Path], reader: str):
    """A worker that never returns is killed at the timeout and recorded as an error row
    (its own process: the sources around it are the test above's)."""
    raw = files["hangs"].parent
    _sources(raw, list(HANGING), files)
    result = run_detect_cuts(CutsParams(reader=reader, timeout=HANG_TIMEOUT), raw,
                             raw / f"hangs-{reader}", worker=misbehaving_worker)
    _expect(result, list(HANGING))
    assert result.frames.empty


def test_decord_worker_that_hangs_is_retried_with_pyav(files: dict[str, Path]):
    """decord's failure modes (hangs, native crashes) do not affect PyAV: one retry."""
    raw = files["good"].parent
    row = download.SourceRow(name="hangs-in-decord", origin="x", kind="path", uri="", license="",
                             attribution="", path=files["good"].name, codec="h264", frames=24,
                             fps=24.0)
    download.write_outputs(download.DownloadResult(rows=[row]), raw)
    result = run_detect_cuts(CutsParams(reader="decord", timeout=RETRY_TIMEOUT), raw, raw / "retry",
                             worker=misbehaving_worker)
    got = result.decoded.iloc[0]
    assert (got["status"], got["reader"], got["frames"]) == ("ok", "pyav", 24)
    assert got["error"] == f"decord worker failed (timeout after {RETRY_TIMEOUT:g} s); retried with pyav"


def test_no_usable_source_exits_1(files: dict[str, Path], capsys: pytest.CaptureFixture):
    raw = files["empty"].parent
    _sources(raw, ["empty", "one-frame"], files)
    params = raw / "params.yaml"
    params.write_text("sources:\n  - {name: x, kind: synthetic}\n")
    assert main(["--params", str(params), "--raw", str(raw), "--out", str(raw / "none")]) == 1
    err = capsys.readouterr().err
    assert "empty: empty file" in err and "no source could be analysed" in err


def test_guard_reports_every_way_a_worker_can_fail():
    assert run_guarded(divmod, (7, 2), 5.0).value == (3, 1)
    assert run_guarded(divmod, (1, 0), 5.0).error.startswith("ZeroDivisionError: integer division")
    assert run_guarded(time.sleep, (60,), 0.5).error == "timeout after 0.5 s"
    assert run_guarded(os._exit, (5,), 5.0).error == "worker exited with code 5 without a result"
    assert run_guarded(os.abort, (), 5.0).error == "worker crashed: killed by SIGABRT"
