"""What the evaluate stage shows besides its metrics: the per-sample CSV (for
``dvc plots``) and the grid of the worst and best samples, every tile captioned, the
ground truth's caption with the triplet's cadence and why it is hard (:func:`reason`)."""

from __future__ import annotations

import csv
import io
from typing import Any

import cv2
import numpy as np
import torch

FLICKER_GREY = 2.0  # truth's brightness off its ends' by this many grey levels: flicker
FAST_GREY = 16.0  # ends differing by this many grey levels on average: fast motion


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


def reason(row: dict[str, Any]) -> str:
    """Why a triplet scores low, from its measured facts: ``flicker`` (the truth's
    brightness is off its ends', which no in-between predicts), ``fast motion``, and
    ``below blend`` (the model's PSNR); joined, or ``none measured``. Short: a caption
    has about 50 characters of a 340-pixel tile."""
    causes = []
    if row.get("flicker", 0.0) >= FLICKER_GREY:
        causes.append(f"flicker {row['flicker']:.0f}")
    if row.get("motion", 0.0) >= FAST_GREY:
        causes.append(f"fast motion {row['motion']:.0f}")
    if "psnr_model" in row and row["psnr_model"] < row["psnr_blend"]:
        causes.append("below blend")
    return ", ".join(causes) or "none measured"


def grid_png(frames: list[dict[str, Any]], rows: list[dict[str, Any]], count: int) -> bytes:
    """Worst then best ``count`` samples by model PSNR; columns f0, GT, blend, model,
    error map, captioned with the sample key and t, the cadence and :func:`reason`, the
    PSNRs (the model's edge PSNR too)."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["psnr_model"])
    picked = order[:count] + [i for i in order[::-1][:count] if i not in order[:count]]
    lines = []
    for i in picked:
        f, row = frames[i], rows[i]
        tiles = [caption(to_u8(f["f0"]), f"{row['key']} t={row['t']:.2f}"),
                 caption(to_u8(f["f1"]), f"GT {row.get('cadence', '?')}: {reason(row)}"),
                 caption(to_u8(f["blend"]), f"blend {row['psnr_blend']:.2f} dB"),
                 caption(to_u8(f["model"]), f"model {row.get('psnr_model', 0):.2f} dB, "
                                            f"edges {row.get('edge_psnr_model', 0):.1f}"),
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
