"""Evaluation on tiny shards: every method scored, metrics, CSV and grid written."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import torch
from support.training import tiny_params, write_tiny_shards

from pipeline.dataset.manifest import shards_for_split
from vfi.config import EvalParams
from vfi.evaluation.scoring import bucket_name, evaluate, headline
from vfi.inference.checkpoint import CHECKPOINT_NAME
from vfi.inference.methods import Dis
from vfi.inference.metrics import psnr
from vfi.inference.triplets import read_triplets
from vfi.nets import linear_blend
from vfi.training.loop import train

METHODS = {"model", "rife", "repeat", "blend", "dis"}


def test_evaluate_writes_all_methods(tmp_path: Path, capsys) -> None:
    shards = write_tiny_shards(tmp_path / "shards")
    train(tiny_params(steps=2), shards, tmp_path / "models")
    capsys.readouterr()
    summary = evaluate(EvalParams(grid_samples=2), shards, tmp_path / "models" / CHECKPOINT_NAME,
                       tmp_path / "metrics" / "eval.json", tmp_path / "plots", show_progress=True)
    # the stage says how far it is (these shards have no shards table: counted, no total)
    assert re.search(r"^evaluate: (100% \(5/5 triplet\)|5 triplet) ", capsys.readouterr().err, re.M)
    assert json.loads((tmp_path / "plots" / "summary.json").read_text()) == summary
    assert json.loads((tmp_path / "metrics" / "eval.json").read_text()) == headline(summary)
    assert summary["n"] == 5
    for metric in ("psnr", "ssim", "edge_psnr"):
        assert set(summary[metric]) == set(summary["ci95"][metric]) == METHODS
        assert set(summary["gain"][metric]) == METHODS - {"model"}
    assert sum(b["n"] for b in summary["by_t"].values()) == 5
    assert sum(b["n"] for b in summary["by_cadence"].values()) == 5
    rows = list(csv.DictReader((tmp_path / "plots" / "samples.csv").open()))
    assert len(rows) == 5 and {f"edge_psnr_{m}" for m in METHODS} <= set(rows[0])
    assert {"cadence", "motion", "flicker"} <= set(rows[0])
    grid = cv2.imread(str(tmp_path / "plots" / "grid.png"))
    height, width = next(read_triplets(shards_for_split(shards, "test")))["f0"].shape[1:]
    # worst 2 + best 2 of 5 samples, 5 captioned tiles each: f0, GT, blend, model, error
    assert grid.shape == (4 * (height + 16), 5 * width, 3)
    bands = grid.reshape(4, height + 16, 5, width, 3)[:, :16]
    assert (bands.max(axis=(1, 3, 4)) > 200).all()  # every tile has its caption


def test_dis_beats_blend_on_a_translation() -> None:
    from support.training import scene
    f0, f1, f2 = (torch.from_numpy(scene(t, 12.0)).permute(2, 0, 1).float() / 255
                  for t in (0.0, 0.5, 1.0))
    t = torch.tensor(0.5)
    dis = Dis("medium")(f0, f2, t)
    blend = linear_blend(f0[None], f2[None], t.reshape(1))[0]
    assert float(psnr(dis[None], f1[None])[0]) > float(psnr(blend[None], f1[None])[0]) + 2


def test_bucket_names() -> None:
    edges = [0.0, 0.4, 0.6, 1.0]
    assert bucket_name(0.5, edges) == "0.4-0.6" and bucket_name(1.0, edges) == "0.6-1"


def test_untrained_flow_model_starts_at_the_dis_baseline() -> None:
    from support.training import scene

    from vfi.config import ModelParams
    from vfi.inference.interpolator import interpolate
    from vfi.nets import build_model
    f0, f2 = (torch.from_numpy(scene(t, 10.0)).permute(2, 0, 1).float() / 255 for t in (0, 1))
    model = build_model(ModelParams(arch="flow", width=8, depth=1, scales=2, flow_init="dis",
                                    dis_preset="medium"))
    ours = interpolate(model, f0, f2, 0.25)
    dis = Dis("medium")(f0, f2, torch.tensor(0.25))
    assert torch.allclose(ours, dis.clamp(0, 1), atol=2e-3)


def test_scores_per_source_and_over_held_out_works(tmp_path: Path) -> None:
    """A source with test samples only is a held-out work; its mean is reported apart."""
    import pandas as pd

    from vfi.evaluation.scoring import held_out_sources, summarise

    pd.DataFrame({"source": ["a", "a", "b", "b", "c"],
                  "split": ["train", "test", "test", "test", "val"]}
                 ).to_parquet(tmp_path / "manifest.parquet")
    assert held_out_sources(tmp_path) == ["b"]
    rows = [{"source": src, "bucket": "0.4-0.6", "psnr_m": v, "ssim_m": v / 100,
             "edge_psnr_m": v - 5}
            for src, v in (("a", 30.0), ("b", 20.0), ("b", 24.0))]
    summary = summarise(rows, ["m"], [0.0, 0.4, 0.6, 1.0], held_out_sources(tmp_path))
    assert summary["psnr"]["m"] == round((30 + 20 + 24) / 3, 4)
    assert summary["by_source"]["a"]["psnr"]["m"] == 30.0
    held = summary["held_out"]
    assert (held["sources"], held["n"], held["psnr"], held["ssim"]) == (["b"], 2, {"m": 22.0},
                                                                       {"m": 0.22})


def test_headline_is_flat_model_first_and_keeps_its_keys_without_held_out_works() -> None:
    """The dvc metrics file: one level of keys, the model's columns first (what ``dvc exp
    show`` lists first), and the same keys when there is no held-out work (null means)."""
    from vfi.evaluation.scoring import summarise

    rows = [{"source": "a", "bucket": "0.4-0.6", "psnr_blend": 20.0, "ssim_blend": 0.5,
             "psnr_model": 22.0, "ssim_model": 0.6, "edge_psnr_blend": 15.0,
             "edge_psnr_model": 18.0}]
    flat = headline(summarise(rows, ["blend", "model"], [0.0, 0.4, 0.6, 1.0], ["a"]))
    assert list(flat) == ["n", "psnr_model", "psnr_blend", "ssim_model", "ssim_blend",
                          "edge_psnr_model",
                          "held_out_n", "held_out_psnr_model", "held_out_psnr_blend",
                          "held_out_ssim_model", "held_out_ssim_blend",
                          "held_out_edge_psnr_model"]
    assert flat["psnr_model"] == flat["held_out_psnr_model"] == 22.0
    none = headline(summarise(rows, ["blend", "model"], [0.0, 0.4, 0.6, 1.0], []))
    assert list(none) == list(flat) and none["held_out_n"] == 0
    assert none["held_out_psnr_model"] is None
