"""detect_cuts on bad input: every source is recorded with a reason or processed, none
crashes or hangs the stage, and the good sources' rows are untouched.

The probe (download stage) already rejects most of these files; here sources.parquet is
written by hand with ``status: ok`` for all of them, so the stage's own defences are
tested: a probe can be wrong, and files can change after it ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from support.bad_input import (
    CASES,
    GOOD,
    HANG_TIMEOUT,
    HANGING,
    write_sources,
)
from support.workers import misbehaving_worker

from pipeline.analysis.analyse import DECODED_TABLE, run_detect_cuts
from pipeline.core.config import CutsParams
from pipeline.core.guard import run_guarded
from pipeline.core.tables import FRAMES_TABLE
from pipeline.sources import download
from pipeline.sources.record import SourceRecord
from pipeline.stages.detect_cuts import main

# Timeouts are decided by events, never by how fast a loaded machine decodes: a run
# whose sources must finish gets a margin no decode of these tiny files approaches,
# and the hanging worker (which never returns) runs alone under a short timeout.
TIMEOUT = 120.0  # seconds per source where every worker must finish
RETRY_TIMEOUT = 10.0  # the decord hang's timeout, which the PyAV retry of 24 tiny frames shares


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
    write_sources(raw, list(GOOD), files)
    alone = run_detect_cuts(params, raw, raw / f"alone-{reader}")
    names = [n for n in CASES if n not in HANGING]
    write_sources(raw, names, files)
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
    write_sources(raw, list(HANGING), files)
    result = run_detect_cuts(CutsParams(reader=reader, timeout=HANG_TIMEOUT), raw,
                             raw / f"hangs-{reader}", worker=misbehaving_worker)
    _expect(result, list(HANGING))
    assert result.frames.empty


def test_decord_worker_that_hangs_is_retried_with_pyav(files: dict[str, Path]):
    """decord's failure modes (hangs, native crashes) do not affect PyAV: one retry."""
    raw = files["good"].parent
    row = SourceRecord(name="hangs-in-decord", origin="x", kind="path", uri="", license="",
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
    write_sources(raw, ["empty", "one-frame"], files)
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
