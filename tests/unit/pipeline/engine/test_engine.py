"""engine: ray gives the same bytes as engine: local, and loses no source.

One embedded Ray cluster (2 CPUs, a small object store) serves the whole module; it is
started through ``RayEngine`` itself, so the embedded start path is what is tested.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
from support.bad_input import CASES, HANG_TIMEOUT, write_sources
from support.engines import CountingEngine
from support.shard_inputs import ShardInputs, build_shard_inputs
from support.videos import write_video
from support.workers import misbehaving_worker
from support.workspace import tree

from pipeline.analysis.analyse import DECODED_TABLE, run_detect_cuts
from pipeline.core.config import CutsParams, RayParams, ShardParams, parse_params
from pipeline.dataset.shards import run_shard
from pipeline.engine import Outcome, run_all
from pipeline.engine.cluster import EngineError, RayEngine, probe_address
from pipeline.engine.local import LocalEngine
from pipeline.engine.parts import default_parts_dir
from pipeline.sources.download import run_download, write_outputs

SHARD = ShardParams(short_side=48, maxcount=7, contact_sheet=4)


@pytest.fixture(scope="module")
def cluster():
    engine = RayEngine(RayParams(cluster_cpus=2, object_store_mb=128))
    assert ray.is_initialized() and engine.task_cpus() == 1
    yield engine
    engine.close()
    assert not ray.is_initialized()  # the embedded cluster is this engine's: shut down


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ShardInputs:
    return build_shard_inputs(tmp_path_factory.mktemp("engine"), clips=3, width=96,
                              height=64, seconds=2.0)


def test_local_engine_is_default_and_imports_no_ray():
    import subprocess
    import sys

    code = ("import sys; from pipeline.core.config import parse_params; "
            "from pipeline.engine import make_engine; "
            "e = make_engine(parse_params({'sources': [{'name': 'a', 'kind': 'path', 'path': 'x'}]})); "
            "print(e.name, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["local", "False"]


@pytest.mark.slow
def test_detect_cuts_same_bytes_on_both_engines(inputs: ShardInputs, cluster: RayEngine,
                                                tmp_path: Path):
    params = CutsParams()
    local = run_detect_cuts(params, inputs.raw_dir, tmp_path / "local")
    on_ray = run_detect_cuts(params, inputs.raw_dir, tmp_path / "ray", engine=cluster)
    assert len(local.frames) > 0 and set(local.decoded["status"]) == {"ok"}
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    ray_parts = default_parts_dir(tmp_path / "ray")
    assert tree(ray_parts) == tree(default_parts_dir(tmp_path / "local"))
    parts = sorted(p.name.rsplit("-", 1)[0] for p in ray_parts.iterdir())
    assert parts == sorted(on_ray.decoded["source"])  # one part per source


def test_shard_same_bytes_on_both_engines(inputs: ShardInputs, cluster: RayEngine,
                                          tmp_path: Path):
    for name, engine in (("local", None), ("ray", cluster)):
        run_shard(SHARD, inputs.raw_dir, inputs.triplets_dir, tmp_path / name / "shards",
                  tmp_path / name / "metrics.json", tmp_path / name / "report", engine=engine,
                  workers=1)
    local, on_ray = tree(tmp_path / "local"), tree(tmp_path / "ray")
    assert sum(k.endswith(".tar") for k in local) >= 3 and "report/removed.png" in local
    assert on_ray == local
    assert any(k.startswith("cache/parts/shards/") for k in local)  # the frame cache, kept


@pytest.mark.slow
def test_crashing_and_hanging_sources_under_ray(tmp_path: Path, cluster: RayEngine):
    """The guard runs inside each Ray task: a hang and a segfault are recorded for their
    source, exactly as the local engine records them; the good sources are untouched.
    The hang runs alone under a short timeout; every run whose workers must finish has
    a margin no load reaches (issue 24: no test depends on wall-clock luck)."""
    runs = {"finish": (["good", "segfaults", "raises", "good-after"], 120.0),
            "hang": (["hangs"], HANG_TIMEOUT)}
    got = {}
    for run, (names, timeout) in runs.items():
        raw = tmp_path / run / "raw"
        raw.mkdir(parents=True)
        files = {n: CASES[n][0](raw) for n in names}
        write_sources(raw, names, files)
        for name, engine in (("local", None), ("ray", cluster)):
            run_detect_cuts(CutsParams(timeout=timeout), raw, tmp_path / run / name,
                            worker=misbehaving_worker, engine=engine)
        table = pd.read_parquet(tmp_path / run / "ray" / DECODED_TABLE)
        got |= dict(zip(table["source"], zip(table["status"], table["error"])))
        assert tree(tmp_path / run / "ray") == tree(tmp_path / run / "local")
    assert got["good"][0] == got["good-after"][0] == "ok", got
    assert got["hangs"] == ("error", f"timeout after {HANG_TIMEOUT:g} s")
    assert got["segfaults"] == ("error", "worker crashed: killed by SIGSEGV")
    assert got["raises"] == ("error", "RuntimeError: boom")


def _die_on_two(item: int) -> int:
    """Kills the process running it (a Ray worker) for item 2; squares the others."""
    if item == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def test_a_dead_ray_worker_is_an_outcome_not_a_lost_item(cluster: RayEngine):
    outcomes = run_all(cluster, _die_on_two, [0, 1, 2, 3])
    assert [o.value for o in outcomes if o.ok] == [0, 1, 9]
    assert outcomes[2].value is None and outcomes[2].error.startswith("engine: ")
    assert "Crashed" in outcomes[2].error or "died" in outcomes[2].error.lower()


class LosingEngine(LocalEngine):
    """The local engine, except that the named source's task is lost (a dead worker)."""

    def __init__(self, lose: str) -> None:
        self.lose, self.ran = lose, []

    def map(self, fn, items):
        for index, item in enumerate(items):
            self.ran.append(item.job.name)
            if item.job.name == self.lose:
                yield Outcome(index, None, "engine: WorkerCrashedError: worker died")
            else:
                yield Outcome(index, fn(item))


@pytest.mark.slow
def test_a_lost_source_is_recorded_then_retried(inputs: ShardInputs, tmp_path: Path):
    """A source the engine lost is an error row, not a part: the next run retries it,
    and only it, and ends as an uninterrupted run does."""
    first = LosingEngine("synthetic-01")
    result = run_detect_cuts(CutsParams(), inputs.raw_dir, tmp_path / "out", engine=first)
    row = result.decoded.set_index("source").loc["synthetic-01"]
    assert (row["status"], row["error"]) == ("error", "engine: WorkerCrashedError: worker died")
    assert "synthetic-01" not in set(result.frames["source"])
    again = LosingEngine("none")
    run_detect_cuts(CutsParams(), inputs.raw_dir, tmp_path / "out", engine=again)
    assert again.ran == ["synthetic-01"]
    run_detect_cuts(CutsParams(), inputs.raw_dir, tmp_path / "clean")
    assert tree(tmp_path / "out") == tree(tmp_path / "clean")


@pytest.mark.slow
def test_changed_params_make_new_parts_and_prune_old(inputs: ShardInputs, tmp_path: Path):
    out, parts = tmp_path / "out", default_parts_dir(tmp_path / "out")
    run_detect_cuts(CutsParams(), inputs.raw_dir, out)
    before = {p.name for p in parts.iterdir()}
    (parts / ".synthetic-00-0.123.tmp").mkdir()  # a killed run's leftover
    engine = LosingEngine("none")
    run_detect_cuts(CutsParams(thumb_size=8), inputs.raw_dir, out, engine=engine)
    after = {p.name for p in parts.iterdir()}
    assert len(after) == len(before) and not after & before
    assert engine.ran == sorted(engine.ran) and len(engine.ran) == len(before)


@pytest.mark.slow
def test_a_provenance_edit_reanalyses_nothing(inputs: ShardInputs, tmp_path: Path):
    """A corrected licence or attribution in sources.parquet keeps every analysis part;
    a changed file checksum does not."""
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(inputs.raw_dir, raw)
    run_detect_cuts(CutsParams(), raw, tmp_path / "out")
    table = pd.read_parquet(raw / "sources.parquet")
    table["attribution"], table["license"] = "corrected credit", "CC-BY-4.0"
    table.to_parquet(raw / "sources.parquet", index=False)
    engine = LosingEngine("none")
    run_detect_cuts(CutsParams(), raw, tmp_path / "out", engine=engine)
    assert engine.ran == []
    table.loc[0, "sha256"] = "0" * 64
    table.to_parquet(raw / "sources.parquet", index=False)
    run_detect_cuts(CutsParams(), raw, tmp_path / "out", engine=engine)
    assert engine.ran == [table.loc[0, "name"]]


def test_unreachable_cluster_fails_fast():
    start = time.monotonic()
    with pytest.raises(EngineError, match="not reachable"):
        probe_address("127.0.0.1:9", timeout=2.0)  # the discard port: nothing listens
    assert time.monotonic() - start < 10


class _FlakyClient:
    """A stand-in for the ray module whose ``init`` fails ``failures`` times the way a
    Ray Client proxy does when the server it forked for the driver dies."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, []

    def init(self, address: str, **kwargs: object) -> None:
        self.calls.append(address)
        if len(self.calls) <= self.failures:
            raise ConnectionAbortedError("Initialization failure from server")


@pytest.mark.parametrize(("address", "failures", "calls", "joins"), [
    ("ray://127.0.0.1:10001", 2, 3, True),   # two dead servers, the third serves
    ("ray://127.0.0.1:10001", 3, 3, False),  # every attempt fails: a clear EngineError
    ("127.0.0.1:6379", 1, 1, False),         # not a client connection: no retry
])
def test_a_ray_client_join_is_retried_when_its_server_dies(
        address: str, failures: int, calls: int, joins: bool):
    engine = object.__new__(RayEngine)
    engine._ray = fake = _FlakyClient(failures)
    if joins:
        engine._join(address, {})
    else:
        with pytest.raises((EngineError, ConnectionAbortedError)) as caught:
            engine._join(address, {})
        want = EngineError if address.startswith("ray://") else ConnectionAbortedError
        assert type(caught.value) is want
    assert fake.calls == [address] * calls


@pytest.mark.slow
def test_ray_address_env_is_joined_and_an_unreachable_one_fails_fast(tmp_path: Path):
    """``RAY_ADDRESS`` is used when ``ray.address`` is empty; nothing listens there, so
    the stage exits 2 at once with the address in the message, having run nothing (a
    fresh process: this one's cluster is already up)."""
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text(
        "sources: [{name: a, kind: path, path: a.mp4}]\nengine: ray\nray: {init_timeout: 2.0}\n")
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "pipeline.stages.detect_cuts", "--params",
                          str(tmp_path / "params.yaml"), "--raw", str(tmp_path / "raw"),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True,
                         env={**os.environ, "RAY_ADDRESS": "127.0.0.1:9"}, timeout=120)
    assert out.returncode == 2
    assert "ray cluster at '127.0.0.1:9' not reachable within 2 s" in out.stderr
    assert time.monotonic() - start < 60 and not (tmp_path / "out").exists()


def _download_params(folder: Path) -> object:
    return parse_params({"sources": [
        {"name": "synth", "kind": "synthetic", "clips": 2, "width": 64, "height": 48,
         "seconds": 1.0, "min_shot_seconds": 0.5, "max_shot_seconds": 1.0},
        {"name": "clip", "kind": "path", "path": "clip.mp4", "license": "CC0-1.0"},
        {"name": "later", "kind": "path", "path": "later.mp4"},
        {"name": "shelf", "kind": "folder", "path": "shelf", "license": "CC-BY-4.0"},
    ]})


def test_download_same_bytes_on_both_engines_and_failures_retried(cluster: RayEngine,
                                                                    tmp_path: Path):
    """Videos and tables are the same bytes on both engines; a source that failed
    (a file not there yet) is retried by the next run, and only it."""
    write_video(tmp_path / "clip.mp4", frames=12)
    (tmp_path / "shelf").mkdir()
    for name in ("ep 1.mp4", "ep 2.mkv"):
        write_video(tmp_path / "shelf" / name, frames=8)
    params = _download_params(tmp_path)
    for name, engine in (("local", None), ("ray", cluster)):
        result = run_download(params, tmp_path / name, root=tmp_path, engine=engine)
        write_outputs(result, tmp_path / name)
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    status = {r.name: r.status for r in result.rows}
    assert status == {"synth-00": "ok", "synth-01": "ok", "clip": "ok", "later": "error",
                      "shelf-ep-1": "ok", "shelf-ep-2": "ok"}
    write_video(tmp_path / "later.mp4", frames=8)
    engine = CountingEngine(lambda item: item.entry.name)
    again = run_download(params, tmp_path / "local", root=tmp_path, engine=engine)
    assert engine.ran == ["later"] and {r.status for r in again.rows} == {"ok"}


class DroppingEngine(LocalEngine):
    """The local engine, except that the named entry's task is lost (a dead worker)."""

    def __init__(self, lose: str) -> None:
        self.lose = lose

    def map(self, fn, items):
        for index, item in enumerate(items):
            if item.entry.name == self.lose:
                yield Outcome(index, None, "engine: WorkerCrashedError: worker died")
            else:
                yield Outcome(index, fn(item))


def test_a_lost_download_keeps_its_provenance_and_is_retried(tmp_path: Path):
    """A folder file whose task was lost is an error row with the folder's licence and
    the engine's reason; the next run downloads it, and only it."""
    write_video(tmp_path / "clip.mp4", frames=12)
    write_video(tmp_path / "later.mp4", frames=8)
    (tmp_path / "shelf").mkdir()
    for name in ("ep 1.mp4", "ep 2.mkv"):
        write_video(tmp_path / "shelf" / name, frames=8)
    params = _download_params(tmp_path)
    first = run_download(params, tmp_path / "raw", root=tmp_path,
                         engine=DroppingEngine("shelf-ep-2"))
    row = {r.name: r for r in first.rows}["shelf-ep-2"]
    assert (row.status, row.error) == ("error", "engine: WorkerCrashedError: worker died")
    assert (row.origin, row.kind, row.license) == ("shelf", "folder", "CC-BY-4.0")
    engine = CountingEngine(lambda item: item.entry.name)
    again = run_download(params, tmp_path / "raw", root=tmp_path, engine=engine)
    assert engine.ran == ["shelf-ep-2"] and {r.status for r in again.rows} == {"ok"}
