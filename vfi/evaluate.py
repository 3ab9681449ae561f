"""Score the model against baselines on the test split (``python -m vfi.evaluate``).

Methods, side by side on the same frames: the trained ``model``; ``repeat`` (the
nearest key drawing, what a held frame shows); ``blend`` ((1 - t) f0 + t f2, a
cross-fade); ``dis`` (classical optical flow: OpenCV's DIS both ways, flows scaled by t,
backward-warped with the model's own :func:`vfi.warp.warp` and blended by t). Outputs:
mean PSNR/SSIM overall and per t bucket (``metrics/eval.json``, for ``dvc metrics``), a
per-sample CSV (for ``dvc plots``) and a grid PNG of the worst and best samples.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from pipeline.atomic import write_bytes
from pipeline.config import Params
from pipeline.stage import StageError, run_stage
from vfi.config import EvalParams
from vfi.data import shards_for_split, triplet_dataset
from vfi.metrics import psnr, ssim
from vfi.model import build_model, interpolate, linear_blend
from vfi.teacher import DisFlow
from vfi.train import load_checkpoint
from vfi.warp import warp

log = logging.getLogger("inbetweener.vfi.evaluate")
Method = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
METRICS = ("psnr", "ssim")


def repeat_nearest(f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The key drawing nearest in time (f0 at t = 0.5): what holding a frame shows."""
    return f0 if float(t) <= 0.5 else f2


def dis_method(preset: str = "medium") -> Method:
    """Classical flow baseline: :class:`vfi.teacher.DisFlow` flows, backward-warped with
    :func:`vfi.warp.warp` and blended by t."""
    flows = DisFlow(preset)

    def run(f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        flow = flows(f0, f2, t)[None]
        tt = float(t)
        w0 = warp(f0[None], flow[:, :2])[0]
        w2 = warp(f2[None], flow[:, 2:])[0]
        return (1 - tt) * w0 + tt * w2
    return run


def model_method(model: nn.Module) -> Method:
    """The network through the padding inference wrapper."""
    return lambda f0, f2, t: interpolate(model, f0, f2, t).cpu()


def blend_method(f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) f0 + t f2."""
    return linear_blend(f0[None], f2[None], t.reshape(1))[0]


def load_model(checkpoint: str | Path, device: torch.device | None = None) -> nn.Module:
    """Rebuild the network from a checkpoint's own config (weights_only load)."""
    state = load_checkpoint(checkpoint)
    model = build_model(state["model_config"])
    model.load_state_dict(state["model"])
    return model.to(device or torch.device("cpu")).eval()


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


def error_map(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """|pred - target| as an RGB heat map (x4 gain: typical errors are small)."""
    err = (pred - target).abs().mean(0).mul(4 * 255).clamp(0, 255).byte().numpy()
    return cv2.cvtColor(cv2.applyColorMap(err, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def to_u8(img: torch.Tensor) -> np.ndarray:
    """3 x H x W float -> H x W x 3 uint8 RGB."""
    return (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with ``text`` on a black band above it (the grid must read on its own)."""
    band = np.zeros((16, tile.shape[1], 3), np.uint8)
    cv2.putText(band, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate((band, tile), 0)


def grid_png(frames: list[dict[str, Any]], rows: list[dict[str, Any]], count: int) -> bytes:
    """Worst then best ``count`` samples by model PSNR; columns f0, GT, blend, model,
    error map, each captioned with the sample key, t and the PSNRs."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["psnr_model"])
    picked = order[:count] + [i for i in order[::-1][:count] if i not in order[:count]]
    lines = []
    for i in picked:
        f, row = frames[i], rows[i]
        tiles = [caption(to_u8(f["f0"]), f"{row['key']} t={row['t']:.2f}"),
                 caption(to_u8(f["f1"]), "ground truth"),
                 caption(to_u8(f["blend"]), f"blend {row['psnr_blend']:.2f} dB"),
                 caption(to_u8(f["model"]), f"model {row.get('psnr_model', 0):.2f} dB"),
                 caption(error_map(f["model"], f["f1"]), "|model - truth| x4")]
        lines.append(np.concatenate(tiles, axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.concatenate(lines, 0), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding of the evaluation grid failed")
    return buf.tobytes()


def rows_csv(rows: list[dict[str, Any]]) -> bytes:
    """The per-sample table, one row per test triplet, with a running ``sample`` index."""
    out = io.StringIO()
    fields = ["sample", *rows[0].keys()]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows):
        writer.writerow({"sample": i, **row})
    return out.getvalue().encode()


def evaluate(params: EvalParams, shards: str | Path, checkpoint: str | Path,
             metrics_path: str | Path, plots_dir: str | Path, split: str = "test"
             ) -> dict[str, Any]:
    """Score every method on ``split`` and write metrics JSON, CSV and grid PNG."""
    model = load_model(checkpoint)
    methods: dict[str, Method] = {"model": model_method(model), "repeat": repeat_nearest,
                                  "blend": blend_method, "dis": dis_method(params.dis_preset)}
    urls = shards_for_split(shards, split)
    if not urls:
        raise FileNotFoundError(f"no {split} shards under {shards}")
    rows, frames = score_samples(triplet_dataset(urls, shuffle=0), methods, params.t_buckets)
    if not rows:
        raise ValueError(f"the {split} split under {shards} has no samples")
    summary = summarise(rows, list(methods), params.t_buckets)
    write_bytes(Path(metrics_path), (json.dumps(summary, indent=2) + "\n").encode())
    plots = Path(plots_dir)
    write_bytes(plots / "samples.csv", rows_csv(rows))
    write_bytes(plots / "grid.png", grid_png(frames, rows, params.grid_samples))
    log.info("%d samples: PSNR %s", summary["n"], summary["psnr"])
    return summary


def _main(params: Params, args: argparse.Namespace) -> int:
    try:
        evaluate(params.eval, args.shards, args.checkpoint, args.metrics, args.plots)
    except (FileNotFoundError, ValueError) as exc:  # no test samples, no checkpoint
        raise StageError(f"evaluate: {exc}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m vfi.evaluate [--params] [--shards] [--checkpoint] [--metrics] [--plots]``."""
    paths = {"shards": "data/shards", "checkpoint": "models/model.pt",
             "metrics": "metrics/eval.json", "plots": "reports/eval"}
    return run_stage("vfi.evaluate", __doc__, paths, _main, list(argv) if argv else None)


if __name__ == "__main__":
    raise SystemExit(main())
