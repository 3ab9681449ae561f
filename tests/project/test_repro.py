"""End to end: `dvc repro` in a temporary copy of the repository, with tiny params.

The pipeline is reproduced once (``reproduced``, shared by the module); each test that
runs or edits something in it does so in its own copy (``workspace``), so no test
depends on another having run first."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from support import REPO
from support.workspace import copy_project_files, copy_workspace

from pipeline.core.config import read_params_yaml
from pipeline.dataset.manifest import iter_tar_samples

# The first test also builds ``reproduced`` (the whole pipeline): twice the usual bound.
pytestmark = pytest.mark.timeout(600)
ROOT = REPO
STAGES = tuple(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
TINY = {"kind": "synthetic", "name": "synthetic", "clips": 4, "seed": 1, "width": 96,
        "height": 64, "seconds": 2.0, "min_shot_seconds": 0.5, "max_shot_seconds": 1.0}


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def _sh(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files (as git sees them) in a fresh git repo with tiny params, after
    one ``dvc repro``: built once and shared by this module's tests, which only read it.
    A test that changes the workspace works on a copy (``workspace``)."""
    dest = copy_project_files(_tracked_files(), tmp_path_factory.mktemp("repo"))
    params = read_params_yaml(dest / "params.yaml")
    params["sources"] = [TINY]
    # few scene groups: even fractions so that every split gets samples (checked below)
    params["filter"]["split"] = {"train": 0.34, "val": 0.33, "test": 0.33}
    # a few steps on small crops: the test is about the graph, not the model's quality
    params["train"].update(steps=3, batch_size=2, crop=32, val_every=2, val_samples=4, shuffle=8)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / "dvc.lock").unlink(missing_ok=True)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        _sh(cmd, dest)
    ran = _sh(["dvc", "repro"], dest).stdout
    assert all(f"Running stage '{name}'" in ran for name in STAGES), ran  # nothing restored
    return dest


@pytest.fixture
def workspace(reproduced: Path, tmp_path: Path) -> Path:
    """A copy of the reproduced workspace (git, DVC cache, outputs, lock), for a test
    that runs or edits something in it."""
    return copy_workspace(reproduced, tmp_path / "repo")


@pytest.mark.slow
def test_dvc_repro_runs_offline(reproduced: Path):
    # ``reproduced`` is the workspace after ``dvc repro`` ran every stage (the fixture
    # checks that): its outputs are checked here, read only
    data = json.loads((reproduced / "metrics" / "data.json").read_text())
    kept = {s: data[f"kept_{s}"] for s in ("train", "val", "test")}
    assert min(kept.values()) > 0, kept
    table = pd.read_parquet(reproduced / "data/raw/sources.parquet")
    assert list(table["name"]) == [f"synthetic-{i:02d}" for i in range(4)]
    assert (table["status"] == "ok").all()
    for produced in ("data/shards", "data/export"):
        _sh(["inbetweener", "verify", produced], reproduced)
    metrics = _sh(["dvc", "metrics", "show"], reproduced).stdout
    assert "metrics/data.json" in metrics and "metrics/shards.json" in metrics
    assert (reproduced / "reports" / "contact_sheet.png").stat().st_size > 0
    headline = json.loads((reproduced / "metrics" / "eval.json").read_text())
    assert {f"psnr_{m}" for m in ("model", "rife", "blend", "repeat", "dis")} <= set(headline)
    evaluation = json.loads((reproduced / "reports" / "eval" / "summary.json").read_text())
    assert evaluation["by_source"].keys() == set(table["name"]) & {
        r["source"] for r in csv.DictReader((reproduced / "reports/eval/samples.csv").open())}
    assert (reproduced / "dvclive" / "metrics.json").is_file()


@pytest.mark.slow
def test_dvc_repro_is_deterministic(reproduced: Path, workspace: Path):
    lock = (reproduced / "dvc.lock").read_text()
    assert (workspace / "dvc.lock").read_text() == lock
    # a forced re-run (in the copy) gives the same output hash: outputs are deterministic
    forced = _sh(["dvc", "repro", "--force"], workspace).stdout
    assert all(f"Running stage '{name}'" in forced for name in STAGES), forced
    assert (workspace / "dvc.lock").read_text() == lock
    status = _sh(["dvc", "status"], workspace).stdout
    assert "up to date" in status
    _result_neutral_keys_rerun_nothing(workspace)


def _result_neutral_keys_rerun_nothing(repo: Path) -> None:
    """Editing a key documented as result-neutral (vfi.config.RESULT_NEUTRAL) leaves
    every stage up to date; editing a key that matters does not."""
    from vfi.config import RESULT_NEUTRAL

    original = (repo / "params.yaml").read_text()
    params = read_params_yaml(repo / "params.yaml")
    try:
        for section, keys in RESULT_NEUTRAL.items():
            for key in keys:
                params[section][key] = params[section][key] + 1
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        assert "up to date" in _sh(["dvc", "status"], repo).stdout
        assert "Running stage" not in _sh(["dvc", "repro"], repo).stdout
        params["train"]["min_lr"] *= 2  # a key that changes the model
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        assert "train" in _sh(["dvc", "status"], repo).stdout
    finally:
        (repo / "params.yaml").write_text(original)


def _stored_short_sides(repo: Path) -> set[int]:
    """The short side of the frames really stored in the shards (one sample per tar),
    and the one the manifest records."""
    shards = repo / "data" / "shards"
    sides = {int(s) for s in pd.read_parquet(shards / "manifest.parquet")[["width", "height"]]
             .min(axis=1)}
    for tar in sorted(shards.rglob("*.tar")):
        _, members = next(iter_tar_samples(tar))
        frame = next(v for k, v in members.items() if k.startswith("f1."))
        sides.add(min(Image.open(io.BytesIO(frame)).size))
    return sides


@pytest.mark.slow
def test_a_changed_short_side_reruns_shard(workspace: Path):
    """Issue 21: ``shard.size`` was invisible to DVC's run-cache, so editing it restored
    the old shards ("Stage 'shard' is cached"). Its new name re-runs the stage, and the
    stored frames change size (the tiny clips are 64 px high: 256 never upscales)."""
    _sh(["dvc", "repro", "shard"], workspace)  # a no-op: the workspace is reproduced
    assert _stored_short_sides(workspace) == {64}
    original = (workspace / "params.yaml").read_text()
    params = read_params_yaml(workspace / "params.yaml")
    params["shard"]["short_side"] = 48
    try:
        (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        status = _sh(["dvc", "status", "shard"], workspace).stdout
        assert "changed deps" in status and "params.yaml" in status, status
        out = _sh(["dvc", "repro", "shard"], workspace).stdout
        assert "Running stage 'shard'" in out and "is cached" not in out, out
        assert _stored_short_sides(workspace) == {48}
    finally:
        (workspace / "params.yaml").write_text(original)
        _sh(["dvc", "repro", "shard"], workspace)
    assert _stored_short_sides(workspace) == {64}
    assert "up to date" in _sh(["dvc", "status", "shard"], workspace).stdout


def _checkpoint(repo: Path) -> dict:
    return torch.load(repo / "models" / "model.pt", weights_only=True)


@pytest.mark.slow
def test_dvc_exp_run_with_set_param(workspace: Path):
    # learning rates as DVC writes them (``lr: 0.0001``, ``lr: 2e-05``: YAML 1.2 numbers,
    # issue 21) reach the trained checkpoint. 1e-4 rides on this run, which retrains anyway.
    out = _sh(["dvc", "exp", "run", "-S", "sources.0.seed=7", "-S", "model.lr=1e-4",
               "--name", "seed7"], workspace).stdout
    assert "Running stage 'download'" in out, out  # a new seed: new clips, all downstream
    shown = _sh(["dvc", "exp", "show", "--csv"], workspace).stdout
    assert "seed7" in shown
    assert _checkpoint(workspace)["model_config"]["lr"] == 1e-4


@pytest.mark.slow
def test_dvc_exp_run_a_learning_rate_sweep_point(workspace: Path):
    # a learning-rate sweep point, the command exactly as typed, on the reproduced
    # workspace: train and evaluate (and nothing upstream) re-run with the new value, and
    # dvc exp show lists it
    out = _sh(["dvc", "exp", "run", "-S", "model.lr=2e-05", "-S", "train.steps=2"],
              workspace).stdout
    ran = {name for name in STAGES if f"Running stage '{name}'" in out}
    assert ran == {"train", "evaluate"}, out
    assert "lr: 2e-05" in (workspace / "params.yaml").read_text()
    rows = list(csv.DictReader(io.StringIO(
        _sh(["dvc", "exp", "show", "--csv"], workspace).stdout)))
    swept = [r for r in rows if r.get("model.lr") and float(r["model.lr"]) == 2e-05]
    assert swept, "dvc exp show lists no experiment with model.lr = 2e-05"
    state = _checkpoint(workspace)
    assert state["model_config"]["lr"] == 2e-05 and "lr" not in state["train_config"]
    assert state["train_config"]["steps"] == 2


@pytest.mark.slow
def test_dvc_exp_run_the_curation_control(workspace: Path):
    # the curation control, also one param: train on the naive triplets instead
    assert _checkpoint(workspace)["train_config"]["triplets"] != "naive"
    _sh(["dvc", "exp", "run", "-S", "train.triplets=naive"], workspace)
    assert _checkpoint(workspace)["train_config"]["triplets"] == "naive"


@pytest.mark.slow
def test_dvc_exp_run_without_the_edge_loss(workspace: Path):
    # one term of the default's losses dropped, as typed: the key exists in params.yaml
    # (the default carries it), so no Hydra "+" is needed, and the weight reaches the run
    assert _checkpoint(workspace)["train_config"]["losses"]["edge"] > 0
    _sh(["dvc", "exp", "run", "-S", "train.losses.edge=0", "-S", "train.steps=2"], workspace)
    assert _checkpoint(workspace)["train_config"]["losses"] == {
        "psnr": 0.5, "census": 0.5, "edge": 0.0}
