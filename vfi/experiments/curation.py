"""The curation experiment: does the curated data make a better interpolator?

The same pretrained start (``model.arch``, RIFE 4.25 by default) is fine-tuned for the
same steps with the same params on the curated train shards and on the naive control
(:mod:`vfi.training.naive`: every three consecutive frames of the same train scenes at
t = 0.5, nothing removed), for several seeds, and every run's kept checkpoint is scored
on the same test triplets: overall, per source and over the held-out works (``split:
test``). One run is what ``dvc exp run -S train.triplets=naive -S train.seed=1`` does;
here the runs share one decode of the test triplets and one naive set, and each run's
result is kept, so a killed experiment resumes.

``python -m vfi.experiments.curation --seeds 0 1 2`` writes ``reports/curation/``:
``runs.csv`` (one row per run), ``summary.json`` (means, spreads over seeds, the
paired curated - naive difference) and ``curation.png`` (gain over the start per run).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.atomic import write_bytes
from pipeline.dataset.manifest import shards_for_split
from vfi.config import ProjectParams, load_project_params, params_hash
from vfi.evaluation.scoring import CADENCES, held_out_sources, score_samples, summarise
from vfi.experiments.plot import gain_plot
from vfi.inference.checkpoint import CHECKPOINT_NAME, load_model
from vfi.inference.methods import Blend, Method, Model, make_method
from vfi.inference.triplets import read_triplets
from vfi.training.loop import train
from vfi.training.naive import NaiveSet, naive_samples, naive_triplets

log = logging.getLogger("inbetweener.vfi.curation")
KINDS = ("curated", "naive")
RESULT = "result.json"


class TestSet:
    """The test triplets, decoded once, and the edges and held-out works to report."""

    def __init__(self, shards: Path, edges: Sequence[float]) -> None:
        self.samples = list(read_triplets(shards_for_split(shards, "test")))
        if not self.samples:
            raise ValueError(f"{shards}: the test split is empty")
        self.edges = list(edges)
        self.held_out = held_out_sources(shards)
        if not self.held_out:
            log.warning("%s: no held-out work (a source with split: test): runs are "
                        "compared on the whole test split", shards)

    def score(self, name: str, method: Method) -> dict[str, Any]:
        """``summarise``'s summary for one method (blend rides along: the grid needs it)."""
        rows, _ = score_samples(self.samples, {name: method, "blend": Blend()}, self.edges)
        return summarise(rows, [name], self.edges, self.held_out)


def headline(summary: dict[str, Any], name: str) -> dict[str, float]:
    """The numbers a run is compared by: test and held-out PSNR (the whole test split's
    without a held-out work), per held-out work, and per cadence over the test split
    (``psnr_twos``: where a hold sits inside the naive control's windows)."""
    out = {"test_psnr": summary["psnr"][name],
           "held_out_psnr": summary["held_out"]["psnr"].get(name, summary["psnr"][name])}
    for source in summary["held_out"]["sources"]:
        out[f"psnr_{source}"] = summary["by_source"][source]["psnr"][name]
    for cadence, group in summary["by_cadence"].items():
        out[f"psnr_{cadence}"] = group["psnr"][name]
        out[f"n_{cadence}"] = group["n"]
    return out


TRAINED = ("kind", "seed", "steps", "best_step", "best_val_psnr", "params_hash")


def one_run(params: ProjectParams, kind: str, seed: int, shards: Path, work: Path,
            tests: TestSet, naive: NaiveSet | None, rescore: bool = False) -> dict[str, Any]:
    """Fine-tune with ``train.triplets = kind`` and ``train.seed = seed``, score the kept
    checkpoint; reuses a finished run's result when it was trained with these params
    (``rescore``: its checkpoint is scored again, when the scoring has changed since,
    and only its training figures kept). A result of other params (a changed default
    recipe) is trained again: read back, it would report the old recipe as this one."""
    out = work / f"{kind}-seed{seed}"
    train_params = params.train.model_copy(update={"triplets": kind, "seed": seed})
    run_params = params.model_copy(update={"train": train_params})
    recipe = params_hash(run_params)
    if (out / RESULT).is_file():
        done = json.loads((out / RESULT).read_text())
        if (done.get("params_hash"), done.get("steps")) != (recipe, train_params.steps):
            log.info("%s was trained with other params: training it again", out)
        elif not rescore:
            return done
        else:
            trained = {k: done[k] for k in TRAINED}
            row = {**trained, **headline(tests.score("model", Model(load_model(
                out / CHECKPOINT_NAME))), "model")}
            write_bytes(out / RESULT, json.dumps(row, indent=2).encode())
            return row
    samples = functools.partial(naive_samples, naive) if kind == "naive" else None
    result = train(run_params, shards, out, samples=samples)
    model = Model(load_model(out / CHECKPOINT_NAME))
    row = {"kind": kind, "seed": seed, "steps": result.step, "best_step": result.best_step,
           "best_val_psnr": max(v for _, v in result.val_psnr) if result.val_psnr else None,
           "params_hash": recipe, **headline(tests.score("model", model), "model")}
    write_bytes(out / RESULT, json.dumps(row, indent=2).encode())
    log.info("%s seed %d: held-out %.3f dB, test %.3f dB", kind, seed,
             row["held_out_psnr"], row["test_psnr"])
    return row


def summary_of(runs: pd.DataFrame, start: dict[str, float]) -> dict[str, Any]:
    """Means and spreads per kind, gains over the start, the paired difference."""
    out: dict[str, Any] = {"start": start, "kinds": {}}
    for kind, group in runs.groupby("kind"):
        out["kinds"][kind] = {
            "seeds": sorted(int(s) for s in group["seed"]),
            **{f"{col}_{stat}": round(float(fn(group[col])), 4)
               for col in ("held_out_psnr", "test_psnr")
               for stat, fn in (("mean", np.mean), ("std", lambda c: np.std(c, ddof=1)
                                                      if len(c) > 1 else 0.0))},
            "held_out_gain_over_start": round(float(group["held_out_psnr"].mean()
                                                    - start["held_out_psnr"]), 4)}
    paired = paired_difference(runs, "held_out_psnr")
    if paired is not None:
        out["curated_minus_naive"] = {"held_out_psnr_by_seed": paired.pop("by_seed"), **paired}
    cadences = [c[len("psnr_"):] for c in runs.columns
                if c.startswith("psnr_") and c[len("psnr_"):] in CADENCES]
    by_cadence = {c: paired_difference(runs, f"psnr_{c}") for c in cadences}
    out["curated_minus_naive_by_cadence"] = {
        c: {"n": int(runs[f"n_{c}"].iloc[0]), **d} for c, d in by_cadence.items() if d}
    return out


def paired_difference(runs: pd.DataFrame, column: str) -> dict[str, Any] | None:
    """Curated minus naive in ``column``, seed by seed (same seed: same sample order and
    augmentations where the sets agree): per seed, mean, spread and wins; None without
    a pair."""
    paired = runs.pivot(index="seed", columns="kind", values=column).dropna()
    if not set(KINDS) <= set(paired.columns) or not len(paired):
        return None
    diff = paired["curated"] - paired["naive"]
    return {"by_seed": {int(s): round(float(d), 4) for s, d in diff.items()},
            "mean": round(float(diff.mean()), 4),
            "std": round(float(diff.std(ddof=1)), 4) if len(diff) > 1 else 0.0,
            "curated_wins": int((diff > 0).sum()), "seeds": len(diff)}


def experiment(params: ProjectParams, seeds: Sequence[int], shards: Path, raw: Path,
               analysis: Path, triplets: Path, work: Path, report: Path,
               rescore: bool = False) -> dict[str, Any]:
    """Every (kind, seed) run, then the report files; returns the summary."""
    tests = TestSet(shards, params.eval.t_buckets)
    start = headline(tests.score("start", make_method("rife")), "start")
    naive = naive_triplets(raw, analysis, triplets, params.shard.short_side,
                           filter_params=params.filter)
    rows = [one_run(params, kind, seed, shards, work, tests, naive, rescore)
            for seed in seeds for kind in KINDS]
    runs = pd.DataFrame(rows)
    summary = summary_of(runs, start)
    summary["steps"] = params.train.steps
    summary["held_out_sources"] = tests.held_out
    summary["compared_on"] = "held-out works" if tests.held_out else "test split"
    write_bytes(report / "runs.csv", runs.to_csv(index=False).encode())
    write_bytes(report / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    write_bytes(report / "curation.png", gain_plot(runs, start["held_out_psnr"],
                                                  f"held-out PSNR gain over the start, "
                                                  f"{params.train.steps} steps"))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shards", type=Path, default=Path("data/shards"))
    parser.add_argument("--raw", type=Path, default=Path("data/raw"))
    parser.add_argument("--analysis", type=Path, default=Path("data/analysis"))
    parser.add_argument("--triplets", type=Path, default=Path("data/triplets"))
    parser.add_argument("--work", type=Path, default=Path("experiments/curation"),
                        help="checkpoints and per-run results (a rerun resumes from them)")
    parser.add_argument("--report", type=Path, default=Path("reports/curation"))
    parser.add_argument("--rescore", action="store_true",
                        help="score the finished runs' checkpoints again (the scoring changed) "
                             "instead of reading their results back")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    summary = experiment(load_project_params(args.params), args.seeds, args.shards, args.raw,
                         args.analysis, args.triplets, args.work, args.report, args.rescore)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
