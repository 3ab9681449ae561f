"""Per-triplet facts and group statistics for the evaluation's breakdowns.

- :func:`cadence_name`: how the footage around a triplet is drawn (on ones, twos, threes,
  longer holds, or a pan over held cels), from the hold lengths its sample records;
- :func:`motion`, :func:`flicker`: what makes a triplet hard, in grey levels: how much
  its ends differ, and how far the truth's brightness is from the time-weighted
  brightness of its ends (film flicker no in-between can predict);
- :func:`means`, :func:`gains`: means with 95% intervals, and the model's paired gain over
  each method (paired: the same triplets, so the spread between triplets cancels).
Intervals use the normal approximation (1.96 standard errors); one row has none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

Z95 = 1.959964  # two-sided 95% quantile of the normal distribution


def cadence_name(meta: dict[str, Any]) -> str:
    """``pan``, ``ones``, ``twos``, ``threes`` or ``longer`` by the median hold (frames
    each of the triplet's three drawings is shown); ``unknown`` without hold lengths."""
    if meta.get("pan"):
        return "pan"
    holds = meta.get("holds")
    if not holds:
        return "unknown"
    hold = int(np.median(holds))
    return {1: "ones", 2: "twos", 3: "threes"}.get(hold, "longer")


def motion(f0: torch.Tensor, f2: torch.Tensor) -> float:
    """Mean |f2 - f0| in grey levels (0-255): how much changes across the triplet."""
    return float((f2.float() - f0.float()).abs().mean()) * 255


def flicker(f0: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, t: float) -> float:
    """|mean(f1) - ((1 - t) mean(f0) + t mean(f2))| in grey levels."""
    ends = (1 - t) * float(f0.float().mean()) + t * float(f2.float().mean())
    return abs(float(f1.float().mean()) - ends) * 255


def interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """(mean, 95% half-width) of the finite values, rounded; None where undefined."""
    values = values[np.isfinite(values)]
    if not len(values):
        return None, None
    mean = round(float(values.mean()), 4)
    if len(values) < 2:
        return mean, None
    return mean, round(Z95 * float(values.std(ddof=1)) / math.sqrt(len(values)), 4)


def column(rows: Sequence[dict[str, Any]], metric: str, method: str) -> np.ndarray:
    return np.array([r[f"{metric}_{method}"] for r in rows], float)


def means(rows: Sequence[dict[str, Any]], metric: str, methods: Sequence[str]
          ) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """({method: mean}, {method: 95% half-width}) of ``metric`` over ``rows``."""
    found = {m: interval(column(rows, metric, m)) for m in methods} if rows else {}
    return {m: v[0] for m, v in found.items()}, {m: v[1] for m, v in found.items()}


def gains(rows: Sequence[dict[str, Any]], metric: str, methods: Sequence[str]
          ) -> dict[str, dict[str, float | None]]:
    """{method: {"mean", "ci95"}} of model minus method, triplet by triplet."""
    model = column(rows, metric, "model")
    out = {}
    for m in methods:
        if m != "model":
            mean, half = interval(model - column(rows, metric, m))
            out[m] = {"mean": mean, "ci95": half}
    return out
