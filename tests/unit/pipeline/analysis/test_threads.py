"""The analysis pass's helper threads: same columns and cuts as inline, errors surface."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from pipeline.analysis import worker
from pipeline.analysis.helper_thread import HelperThread
from pipeline.analysis.worker import SourceJob, analyse_source
from pipeline.core.config import CutsParams, TripletParams
from pipeline.media.probe import probe
from pipeline.synth import SynthSpec, generate

FILM_CLIP = Path(__file__).resolve().parents[4] / "data/real/steamboat_willie_excerpt_cropped.mp4"


def test_helper_thread_calls_in_order_off_the_callers_thread():
    seen: list[tuple[int, str]] = []
    helper = HelperThread(lambda i: seen.append((i, threading.current_thread().name)), 2, "t")
    for i in range(50):
        helper.put(i)
    helper.join()
    helper.join()  # idempotent
    assert [i for i, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"t"}


def test_helper_thread_raises_its_error_in_the_caller():
    def fail(i: int) -> None:
        if i == 3:
            raise RuntimeError("boom")

    helper = HelperThread(fail, 1, "t")
    with pytest.raises(RuntimeError, match="boom"):
        for i in range(1000):  # a put after the error raises it; the queue never blocks
            helper.put(i)
    with pytest.raises(RuntimeError, match="boom"):
        helper.join()


def test_helper_thread_needs_a_queue():
    with pytest.raises(ValueError, match="at least 1"):
        HelperThread(print, 0, "t")


def _job(path: Path) -> SourceJob:
    info = probe(path)
    return SourceJob(path.stem, str(path), info.codec, info.frames, info.fps, "pyav",
                     holds=TripletParams())


def _same(a: worker.Analysis, b: worker.Analysis) -> None:
    assert a.cuts == b.cuts
    assert a.columns.keys() == b.columns.keys()
    for key in a.columns:
        x, y = a.columns[key], b.columns[key]
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), key


@pytest.mark.parametrize("clip", ["synthetic", "film"])
def test_threads_give_the_inline_columns_and_cuts(clip: str, tmp_path: Path):
    """Bit for bit, on a synthetic clip with cuts and on a film scan (film noise mode)."""
    if clip == "synthetic":
        spec = SynthSpec(clips=1, seconds=4.0, width=320, height=240)
        path = generate(spec, tmp_path, name="t").videos[0]
    else:
        path = FILM_CLIP
    job = _job(path)
    inline = analyse_source(job, CutsParams(), threads=0)
    assert inline.frames == job.frames and not inline.error
    assert np.ptp(inline.columns["drawing"]) > 0
    for threads in (1, 2):
        _same(inline, analyse_source(job, CutsParams(), threads=threads))


def test_an_error_in_the_cut_stream_surfaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = SynthSpec(clips=1, seconds=2.0, width=160, height=120)
    path = generate(spec, tmp_path, name="t").videos[0]

    class Broken(worker.CutStream):
        def push(self, rgb: np.ndarray, pts: float) -> list[int]:
            raise RuntimeError("stream broke")

        def finish(self) -> list[int]:
            return []

    monkeypatch.setattr(worker, "make_cut_stream", lambda params, fps: Broken())
    with pytest.raises(RuntimeError, match="stream broke"):
        analyse_source(_job(path), CutsParams(), threads=2)
