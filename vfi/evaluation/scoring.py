"""Score the model against baselines on the test split (the evaluate stage's work).

Methods, side by side on the same frames, from the registry of
:mod:`vfi.inference.methods`: the trained ``model``, the pretrained ``rife`` it started
from, ``repeat``, ``blend`` and ``dis``. Outputs: mean PSNR, SSIM and edge PSNR with 95%
intervals, and the model's paired gain over each method, overall, per t bucket, per
cadence, per source and over the held-out works (``reports/eval/summary.json``, what the
docs' tables are made of); its headline as flat keys (``metrics/eval.json``, for ``dvc
exp show``: a column per key, so only what a run is judged by); a per-sample CSV (for
``dvc plots``) and a grid of the worst and best samples, each with its reason.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.atomic import write_bytes
from pipeline.core.progress import progress
from pipeline.dataset.manifest import MANIFEST_TABLE, read_shards, shards_for_split
from vfi.config import EvalParams
from vfi.evaluation.report import grid_png, rows_csv
from vfi.evaluation.stats import cadence_name, flicker, gains, means, motion
from vfi.inference.methods import METHODS, Method, MethodOptions, make_method
from vfi.inference.metrics import edge_psnr, psnr, ssim
from vfi.inference.triplets import read_triplets

log = logging.getLogger("inbetweener.vfi.evaluate")
METRICS = ("psnr", "ssim", "edge_psnr")
CADENCES = ("ones", "twos", "threes", "longer", "pan", "unknown")
SUMMARY_NAME = "summary.json"  # the full breakdown, in the plots folder (not a dvc metric)


def bucket_name(t: float, edges: Sequence[float]) -> str:
    """``"0.4-0.6"`` for the [lo, hi) bucket holding t (the last bucket includes hi)."""
    for lo, hi in itertools.pairwise(edges):
        if lo <= t < hi or (hi == edges[-1] and t == hi):
            return f"{lo:g}-{hi:g}"
    raise ValueError(f"t={t} outside the buckets {list(edges)}")


def score_samples(samples: Any, methods: dict[str, Method], edges: Sequence[float]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-sample rows (key, source, t, bucket, cadence, motion and flicker in grey
    levels, each metric per method) and, for the grid, frames."""
    rows, frames = [], []
    for s in samples:
        f0, f1, f2, t = s["f0"], s["f1"], s["f2"], s["t"]
        row: dict[str, Any] = {"key": s["key"], "source": s["meta"].get("source", ""),
                               "t": round(float(t), 4),
                               "bucket": bucket_name(float(t), edges),
                               "cadence": cadence_name(s["meta"]),
                               "motion": round(motion(f0, f2), 3),
                               "flicker": round(flicker(f0, f1, f2, float(t)), 3)}
        preds = {}
        for name, method in methods.items():
            pred = method(f0, f2, t).clamp(0, 1)
            preds[name] = pred
            row[f"psnr_{name}"] = float(psnr(pred[None], f1[None])[0])
            row[f"ssim_{name}"] = float(ssim(pred[None], f1[None])[0])
            row[f"edge_psnr_{name}"] = float(edge_psnr(pred[None], f1[None])[0])
        rows.append(row)
        frames.append({"f0": f0, "f1": f1, "blend": preds["blend"],
                       "model": preds.get("model", preds["blend"])})
    return rows, frames


def held_out_sources(shards: str | Path) -> list[str]:
    """Sources with test samples only: works the model never trained or validated on
    (``split: test`` sources, and any whose scenes all hashed to test). None without a
    manifest (a hand-made shard folder): then there is no held-out score."""
    path = Path(shards) / MANIFEST_TABLE
    if not path.is_file():
        log.warning("%s: no manifest, so no held-out score", shards)
        return []
    table = pd.read_parquet(path, columns=["source", "split"])
    only_test = table.groupby("source")["split"].agg(lambda s: bool((s == "test").all()))
    return sorted(only_test[only_test].index)


def summarise(rows: list[dict[str, Any]], methods: Sequence[str], edges: Sequence[float],
              held_out: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`group` overall, per t bucket, per cadence, per source and over the held-out
    works: {**group(all), "by_t": {bucket: group}, "by_cadence": {cadence: group},
    "by_source": {source: group}, "held_out": {"sources", **group}} (empty groups left out)."""
    summary = group(rows, methods)
    buckets = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]
    summary["by_t"] = _by(rows, methods, "bucket", buckets)
    summary["by_cadence"] = _by(rows, methods, "cadence", CADENCES)
    summary["by_source"] = _by(rows, methods, "source", sorted({r["source"] for r in rows}))
    held = [r for r in rows if r["source"] in set(held_out)]
    summary["held_out"] = {"sources": sorted(set(held_out)), **group(held, methods)}
    return summary


def group(rows: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """{"n", metric: {method: mean}, "ci95": {metric: {method: half-width}}, "gain":
    {metric: {method: {"mean", "ci95"}}}}: the model's paired gain over each other method
    (present when ``model`` is one of ``methods``). Rows whose metric is NaN (edge PSNR
    of a frame without edges) are left out of that metric's figures."""
    out: dict[str, Any] = {"n": len(rows)}
    ci: dict[str, Any] = {}
    for metric in METRICS:
        out[metric], ci[metric] = means(rows, metric, methods)
    out["ci95"] = ci
    if "model" in methods:
        out["gain"] = {metric: gains(rows, metric, methods) for metric in METRICS}
    return out


def _by(rows: list[dict[str, Any]], methods: Sequence[str], column: str,
        values: Sequence[str]) -> dict[str, Any]:
    """:func:`group` of the rows with each value of ``column``, in ``values``' order."""
    subsets = {v: [r for r in rows if r.get(column) == v] for v in values}
    return {v: group(subset, methods) for v, subset in subsets.items() if subset}


def headline(summary: dict[str, Any]) -> dict[str, float | int | None]:
    """The flat metrics of a summary: ``n`` and ``{metric}_{method}`` over the test split,
    then ``held_out_n`` and ``held_out_{metric}_{method}``; ``model`` first, then the
    methods in the summary's order. A held-out mean with no held-out sample is null, so
    the keys are the same whatever the data (a diff never shows a key appear or vanish).
    The means per t bucket and per source stay in the summary: as dvc metrics they were
    a ``dvc exp show`` column each, over a hundred, that no run is judged by."""
    methods = sorted(summary["psnr"], key=lambda m: m != "model")
    held = summary.get("held_out", {"n": 0})
    return {"n": summary["n"], **_flat_means(summary, methods, ""),
            "held_out_n": held["n"], **_flat_means(held, methods, "held_out_")}


def _flat_means(group: dict[str, Any], methods: Sequence[str], prefix: str
                ) -> dict[str, float | None]:
    """``{prefix}{metric}_{method}`` for PSNR and SSIM of every method and the model's
    edge PSNR (None: no mean); the baselines' edge PSNR stays in the summary, to keep
    the file one screen of ``dvc metrics diff``."""
    pairs = [(metric, m) for metric in ("psnr", "ssim") for m in methods]
    pairs += [("edge_psnr", m) for m in methods if m == "model"]
    return {f"{prefix}{metric}_{m}": (group.get(metric) or {}).get(m) for metric, m in pairs}


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def split_size(shards: str | Path, split: str) -> int | None:
    """Samples of one split by the shards table (None without one: progress uncounted)."""
    try:
        table = read_shards(shards)
    except FileNotFoundError:
        return None
    return int(table.loc[table["split"] == split, "samples"].sum())


def evaluate(params: EvalParams, shards: str | Path, checkpoint: str | Path,
             metrics_path: str | Path, plots_dir: str | Path, split: str = "test",
             show_progress: bool = False) -> dict[str, Any]:
    """Score every method on ``split`` and write the headline metrics JSON
    (``metrics_path``), and under ``plots_dir`` the summary JSON, CSV and grid PNG
    (``show_progress``: triplets scored so far; every method runs on each). Returns the
    summary."""
    options = MethodOptions(checkpoint=Path(checkpoint), dis_preset=params.dis_preset)
    methods: dict[str, Method] = {name: make_method(name, options) for name in METHODS}
    urls = shards_for_split(shards, split)
    if not urls:
        raise FileNotFoundError(f"no {split} shards under {shards}")
    samples = progress(read_triplets(urls), total=split_size(shards, split), desc="evaluate",
                       unit="triplet", enabled=show_progress)
    rows, frames = score_samples(samples, methods, params.t_buckets)
    if not rows:
        raise ValueError(f"the {split} split under {shards} has no samples")
    summary = summarise(rows, list(methods), params.t_buckets, held_out_sources(shards))
    plots = Path(plots_dir)
    write_bytes(plots / SUMMARY_NAME, _json(summary))
    write_bytes(Path(metrics_path), _json(headline(summary)))
    write_bytes(plots / "samples.csv", rows_csv(rows))
    write_bytes(plots / "grid.png", grid_png(frames, rows, params.grid_samples))
    log.info("%d samples: PSNR %s", summary["n"], summary["psnr"])
    if summary["held_out"]["n"]:
        log.info("held-out works %s, %d samples: PSNR %s", ", ".join(
            summary["held_out"]["sources"]), summary["held_out"]["n"], summary["held_out"]["psnr"])
    return summary
