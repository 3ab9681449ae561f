"""The curation experiment end to end on a tiny synthetic dataset: both kinds of
triplets fine-tune the same start, every run is scored on the same test triplets, the
report's paired difference is the runs' own, and a rerun resumes instead of training."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from support.naive_data import FILTER, SIZE, Data, build_naive_data

from vfi.config import ProjectParams
from vfi.experiments.curation import experiment, summary_of


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return build_naive_data(tmp_path_factory.mktemp("naive"))


def tiny(root: Path) -> object:
    return ProjectParams.model_validate({
        "sources": [{"name": "synthetic", "kind": "synthetic"}],
        "filter": FILTER.model_dump(), "shard": {"short_side": SIZE},
        "model": {"arch": "rife", "lr": 1e-4},
        "train": {"steps": 1, "batch_size": 2, "crop": 48, "val_every": 1, "val_samples": 2,
                  "warmup": 1, "min_lr": 1e-6, "threads": 1, "shuffle": 2,
                  "losses": {"charbonnier": 1.0}}})


def test_summary_pairs_runs_by_seed() -> None:
    runs = pd.DataFrame({"kind": ["curated", "naive"] * 3, "seed": [0, 0, 1, 1, 2, 2],
                         "held_out_psnr": [30.5, 30.0, 30.1, 30.3, 30.6, 30.2],
                         "test_psnr": [1.0] * 6})
    summary = summary_of(runs, {"held_out_psnr": 30.0, "test_psnr": 1.0})
    diff = summary["curated_minus_naive"]
    assert diff["held_out_psnr_by_seed"] == {0: 0.5, 1: -0.2, 2: 0.4}
    assert diff["mean"] == pytest.approx(0.2333, abs=1e-4) and diff["curated_wins"] == 2
    assert summary["kinds"]["curated"]["held_out_gain_over_start"] == pytest.approx(0.4)


def test_summary_pairs_each_cadence() -> None:
    """Per cadence, the same pairing: where curation should matter (twos) and where it
    should not (ones) are reported apart, whichever way they come out."""
    runs = pd.DataFrame({"kind": ["curated", "naive"] * 2, "seed": [0, 0, 1, 1],
                         "held_out_psnr": [30.0] * 4, "test_psnr": [1.0] * 4,
                         "psnr_ones": [25.0, 25.1, 25.2, 25.2], "n_ones": [40] * 4,
                         "psnr_twos": [24.0, 23.5, 24.1, 23.9], "n_twos": [12] * 4})
    by = summary_of(runs, {"held_out_psnr": 30.0, "test_psnr": 1.0}
                    )["curated_minus_naive_by_cadence"]
    assert list(by) == ["ones", "twos"]
    assert by["twos"]["by_seed"] == {0: 0.5, 1: 0.2} and by["twos"]["curated_wins"] == 2
    assert by["ones"]["by_seed"] == {0: -0.1, 1: 0.0} and by["ones"]["curated_wins"] == 0
    assert by["twos"]["n"] == 12 and by["twos"]["mean"] == pytest.approx(0.35)


@pytest.mark.slow
def test_experiment_runs_both_kinds_and_resumes(data: Data, tmp_path: Path) -> None:
    raw, analysis, triplets = data.dirs()
    args = (tiny(tmp_path), [0, 1], data.root / "shards", raw, analysis, triplets,
            tmp_path / "work", tmp_path / "report")
    summary = experiment(*args)
    runs = pd.read_csv(tmp_path / "report" / "runs.csv")
    assert sorted(zip(runs["kind"], runs["seed"])) == [("curated", 0), ("curated", 1),
                                                       ("naive", 0), ("naive", 1)]
    assert (runs["steps"] == 1).all() and runs["test_psnr"].notna().all()
    assert any(c in runs.columns for c in ("psnr_ones", "psnr_twos", "psnr_threes"))
    on_disk = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert on_disk["kinds"].keys() == {"curated", "naive"}
    assert (tmp_path / "report" / "curation.png").read_bytes()[:4] == b"\x89PNG"
    # the same seed and kind twice is the same run: a rerun reads the results back
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "work").glob("*/result.json")}
    assert experiment(*args) == summary
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    # --rescore: the kept checkpoints scored again, their training figures kept
    first = next(iter(stamps))
    row = json.loads(first.read_text())
    first.write_text(json.dumps({**row, "test_psnr": -1.0}))
    assert experiment(*args) != summary  # read back as written
    assert experiment(*args, rescore=True) == summary
    assert json.loads(first.read_text()) == row
    # a changed recipe is trained again, never read back as the new one's result
    other = tiny(tmp_path)
    other = other.model_copy(update={"model": other.model.model_copy(update={"lr": 2e-4})})
    experiment(other, [0], *args[2:])
    again = {p: json.loads(p.read_text()) for p in stamps if "seed0" in p.parent.name}
    assert len(again) == 2 and all(p.stat().st_mtime_ns != stamps[p] for p in again)
    assert all(r["params_hash"] != row["params_hash"] for r in again.values())
