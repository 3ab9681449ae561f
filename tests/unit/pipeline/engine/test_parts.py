"""A run killed after k sources re-runs only the rest, on either engine.

The stage runs in a child process that is SIGKILLed (with its whole process group: an
embedded Ray cluster dies with it) once two sources' parts are written; the re-run
records which sources its worker analysed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO
from support.shard_inputs import synthetic_raw

from pipeline.analysis.analyse import (
    DECODED_TABLE,
    FRAMES_TABLE,
    SCENES_TABLE,
    run_detect_cuts,
)
from pipeline.core.config import CutsParams
from pipeline.engine.parts import default_parts_dir

pytestmark = pytest.mark.slow  # two runs in fresh processes, one with its own Ray cluster
ROOT = REPO
CLIPS = 5
SCRIPT = """
import sys
from pathlib import Path
from pipeline.core.config import CutsParams, RayParams
from pipeline.analysis.analyse import run_detect_cuts
from pipeline.engine.cluster import RayEngine
from support.workers import marking_worker

if __name__ == "__main__":
    raw, out, kind = sys.argv[1:4]
    engine = RayEngine(RayParams(cluster_cpus=1, object_store_mb=100)) if kind == "ray" else None
    run_detect_cuts(CutsParams(), Path(raw), Path(out), worker=marking_worker, engine=engine)
    if engine is not None:
        engine.close()
"""


def _run(script: Path, raw: Path, out: Path, kind: str, marks: Path, slow: float
         ) -> subprocess.Popen:
    env = {**os.environ, "MARKS": str(marks), "SLOW": str(slow),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), str(raw), str(out), kind], env=env,
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _parts(out: Path) -> set[str]:
    folder = default_parts_dir(out)
    found = folder.iterdir() if folder.is_dir() else ()
    return {p.name.rsplit("-", 1)[0] for p in found if not p.name.startswith(".")}


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_killed_run_reruns_only_the_rest(kind: str, tmp_path: Path):
    synthetic_raw(tmp_path / "raw", clips=CLIPS, width=64, height=48, seconds=1.5)
    names = {f"synthetic-{i:02d}" for i in range(CLIPS)}
    script, out, marks = tmp_path / "stage.py", tmp_path / "out", tmp_path / "marks"
    script.write_text(SCRIPT)
    marks.mkdir()
    proc = _run(script, tmp_path / "raw", out, kind, marks, slow=2.0)
    deadline = time.monotonic() + 300
    while len(_parts(out)) < 2:
        assert proc.poll() is None, "the stage ended before it could be killed"
        assert time.monotonic() < deadline, "no parts written in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _parts(out)
    assert 2 <= len(done) < CLIPS and not (out / FRAMES_TABLE).exists()
    for mark in marks.iterdir():
        mark.unlink()
    rerun = _run(script, tmp_path / "raw", out, kind, marks, slow=0.0)
    assert rerun.wait(timeout=600) == 0
    assert {m.name for m in marks.iterdir()} == names - done  # only the rest ran
    run_detect_cuts(CutsParams(), tmp_path / "raw", tmp_path / "clean")
    for table in (FRAMES_TABLE, SCENES_TABLE, DECODED_TABLE):
        assert (out / table).read_bytes() == (tmp_path / "clean" / table).read_bytes()
