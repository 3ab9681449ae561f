"""Score the model against baselines on the test split (the evaluate stage's work).

Methods, side by side on the same frames, from the registry of
:mod:`vfi.inference.methods`: the trained ``model``, ``repeat``, ``blend`` and ``dis``. Outputs:
mean PSNR/SSIM overall and per t bucket (``metrics/eval.json``, for ``dvc metrics``), a
per-sample CSV (for ``dvc plots``) and a grid PNG of the worst and best samples.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import write_bytes
from pipeline.manifest import shards_for_split
from vfi.config import EvalParams
from vfi.evaluation.report import grid_png, rows_csv
from vfi.inference.methods import METHODS, Method, MethodOptions, make_method
from vfi.inference.metrics import psnr, ssim
from vfi.inference.triplets import read_triplets

log = logging.getLogger("inbetweener.vfi.evaluate")
METRICS = ("psnr", "ssim")


def bucket_name(t: float, edges: Sequence[float]) -> str:
    """``"0.4-0.6"`` for the [lo, hi) bucket holding t (the last bucket includes hi)."""
    for lo, hi in itertools.pairwise(edges):
        if lo <= t < hi or (hi == edges[-1] and t == hi):
            return f"{lo:g}-{hi:g}"
    raise ValueError(f"t={t} outside the buckets {list(edges)}")


def score_samples(samples: Any, methods: dict[str, Method], edges: Sequence[float]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-sample rows (key, t, bucket, metric per method) and, for the grid, frames."""
    rows, frames = [], []
    for s in samples:
        f0, f1, f2, t = s["f0"], s["f1"], s["f2"], s["t"]
        row: dict[str, Any] = {"key": s["key"], "t": round(float(t), 4),
                               "bucket": bucket_name(float(t), edges)}
        preds = {}
        for name, method in methods.items():
            pred = method(f0, f2, t).clamp(0, 1)
            preds[name] = pred
            row[f"psnr_{name}"] = float(psnr(pred[None], f1[None])[0])
            row[f"ssim_{name}"] = float(ssim(pred[None], f1[None])[0])
        rows.append(row)
        frames.append({"f0": f0, "f1": f1, "blend": preds["blend"],
                       "model": preds.get("model", preds["blend"])})
    return rows, frames


def summarise(rows: list[dict[str, Any]], methods: Sequence[str], edges: Sequence[float]
              ) -> dict[str, Any]:
    """Means overall and per t bucket: {"n", "psnr": {method: dB}, "ssim": {...},
    "by_t": {bucket: {"n", "psnr", "ssim"}}}."""
    def means(subset: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(subset)}
        for metric in METRICS:
            out[metric] = {m: round(float(np.mean([r[f"{metric}_{m}"] for r in subset])), 4)
                           for m in methods} if subset else {}
        return out
    summary = means(rows)
    summary["by_t"] = {}
    for lo, hi in itertools.pairwise(edges):
        name = f"{lo:g}-{hi:g}"
        subset = [r for r in rows if r["bucket"] == name]
        if subset:
            summary["by_t"][name] = means(subset)
    return summary


def evaluate(params: EvalParams, shards: str | Path, checkpoint: str | Path,
             metrics_path: str | Path, plots_dir: str | Path, split: str = "test"
             ) -> dict[str, Any]:
    """Score every method on ``split`` and write metrics JSON, CSV and grid PNG."""
    options = MethodOptions(checkpoint=Path(checkpoint), dis_preset=params.dis_preset)
    methods: dict[str, Method] = {name: make_method(name, options) for name in METHODS}
    urls = shards_for_split(shards, split)
    if not urls:
        raise FileNotFoundError(f"no {split} shards under {shards}")
    rows, frames = score_samples(read_triplets(urls), methods, params.t_buckets)
    if not rows:
        raise ValueError(f"the {split} split under {shards} has no samples")
    summary = summarise(rows, list(methods), params.t_buckets)
    write_bytes(Path(metrics_path), (json.dumps(summary, indent=2) + "\n").encode())
    plots = Path(plots_dir)
    write_bytes(plots / "samples.csv", rows_csv(rows))
    write_bytes(plots / "grid.png", grid_png(frames, rows, params.grid_samples))
    log.info("%d samples: PSNR %s", summary["n"], summary["psnr"])
    return summary
