"""pipeline.core.progress: a few plain lines in a log, a tqdm bar on a terminal, nothing when off."""

from __future__ import annotations

import io
import logging

import pytest
from tqdm import tqdm

import pipeline.core.progress as progress_mod
from pipeline.core.logs import TqdmHandler
from pipeline.core.progress import progress


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_few_lines_with_the_final_count():
    out = io.StringIO()
    with progress(total=2279, desc="shard", unit="sample", stream=out) as bar:
        for _ in range(2279):
            bar.update()
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and len(lines) == 4
    assert [line.split()[1] for line in lines] == ["25%", "50%", "75%", "100%"]
    assert lines[0].startswith("shard: 25% (570/2279 sample) ") and lines[0].endswith(" s")
    assert lines[-1].startswith("shard: 100% (2279/2279 sample) ")


def test_a_log_as_an_iterator_wrapper():
    out = io.StringIO()
    items = list(progress(range(10), desc="filter", unit="source", stream=out))
    lines = out.getvalue().splitlines()
    assert items == list(range(10)) and len(lines) == 4
    assert lines[-1].startswith("filter: 100% (10/10 source) ")


def test_big_updates_give_one_line_each_and_a_short_run_a_final_line():
    out = io.StringIO()
    with progress(total=100, desc="detect_cuts", unit="frame", stream=out) as bar:
        bar.update(60)  # past 25 and 50: one line
        bar.update(10)
    lines = out.getvalue().splitlines()
    assert [line.split("(")[1].split()[0] for line in lines] == ["60/100", "70/100"]
    assert lines[0].startswith("detect_cuts: 60% ")


def test_unknown_total_prints_on_close_and_at_growing_intervals(monkeypatch: pytest.MonkeyPatch):
    now = [1000.0]
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    bar = progress(iter(range(10_000)), desc="download", unit="source", stream=out)
    for _ in bar:
        now[0] += 0.1  # 1000 s in all: lines at 15, 45, 105, 225, 465, 945 s
    lines = out.getvalue().splitlines()
    assert 5 <= len(lines) <= 8 and "\r" not in out.getvalue()
    assert lines[-1].startswith("download: 10000 source ") and bar.closed


def test_a_terminal_gets_a_tqdm_bar():
    term = Terminal()
    with progress(total=5, desc="shard", unit="sample", stream=term) as bar:
        assert isinstance(bar.bar, tqdm) and bar.bar.dynamic_ncols
        for _ in range(5):
            bar.update()
    assert "shard" in term.getvalue() and "5/5" in term.getvalue()
    assert "\r" in term.getvalue()  # a live bar redraws in place


def test_log_lines_do_not_tear_a_terminal_bar(capsys: pytest.CaptureFixture):
    """TqdmHandler writes through tqdm.write, which clears and redraws live bars."""
    logger = logging.getLogger("inbetweener.test_progress")
    handler = TqdmHandler()
    logger.addHandler(handler)
    try:
        with progress(total=3, desc="stage", stream=Terminal()) as bar:
            bar.update()
            assert bar.bar in tqdm._instances
            logger.warning("a line in the middle")
    finally:
        logger.removeHandler(handler)
    assert "a line in the middle\n" in capsys.readouterr().out


def test_disabled_prints_nothing_but_still_counts_and_iterates():
    out, term = io.StringIO(), Terminal()
    assert list(progress(range(3), desc="x", enabled=False, stream=term)) == [0, 1, 2]
    with progress(total=4, desc="x", enabled=False, stream=out) as bar:
        bar.update(4)
    assert bar.n == 4 and out.getvalue() == "" and term.getvalue() == ""


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture):
    for _ in progress(range(4), desc="synth", unit="frame"):
        pass
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1].startswith("synth: 100% (4/4 frame)")


def test_no_iterable_to_loop_over_is_an_error():
    with pytest.raises(TypeError, match="no iterable"):
        list(progress(total=3, desc="x", stream=io.StringIO()))
