"""Score the model against baselines on the test split (``python -m vfi.evaluate``):
the DVC evaluate stage. The work lives in :mod:`vfi.evaluation.scoring`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pipeline.core.stage import StageError, run_stage
from vfi.config import ProjectParams, load_project_params
from vfi.evaluation.scoring import evaluate
from vfi.inference.checkpoint import DEFAULT_CHECKPOINT, CheckpointError


def _main(params: ProjectParams, args: argparse.Namespace) -> int:
    try:
        evaluate(params.eval, args.shards, args.checkpoint, args.metrics, args.plots, show_progress=True)
    except (FileNotFoundError, ValueError, CheckpointError) as exc:  # no samples, no model
        raise StageError(f"evaluate: {exc}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m vfi.evaluate [--params] [--shards] [--checkpoint] [--metrics] [--plots]``."""
    paths = {"shards": "data/shards", "checkpoint": str(DEFAULT_CHECKPOINT),
             "metrics": "metrics/eval.json", "plots": "reports/eval"}
    return run_stage("vfi.evaluate", __doc__, paths, _main, list(argv) if argv else None,
                     load=load_project_params)


if __name__ == "__main__":
    raise SystemExit(main())
