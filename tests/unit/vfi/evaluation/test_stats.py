"""The evaluation's breakdowns: cadence from hold lengths, intervals and paired gains
checked against figures computed by hand, and the grid's reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vfi.evaluation.report import reason
from vfi.evaluation.scoring import summarise
from vfi.evaluation.stats import cadence_name, flicker, gains, means, motion


@pytest.mark.parametrize(("meta", "name"), [
    ({"holds": [1, 1, 1], "pan": False}, "ones"),
    ({"holds": [2, 2, 1], "pan": False}, "twos"),
    ({"holds": [3, 2, 3], "pan": False}, "threes"),
    ({"holds": [6, 4, 5], "pan": False}, "longer"),
    ({"holds": [1, 1, 1], "pan": True}, "pan"),
    ({}, "unknown"),
])
def test_cadence_from_the_hold_lengths(meta: dict, name: str) -> None:
    assert cadence_name(meta) == name


def test_means_and_95_percent_intervals_by_hand() -> None:
    rows = [{"psnr_model": v, "psnr_blend": v - d} for v, d in ((30.0, 1.0), (32.0, 2.0),
                                                                  (28.0, 0.0), (31.0, 3.0))]
    mean, half = means(rows, "psnr", ["model", "blend"])
    values = [30.0, 32.0, 28.0, 31.0]
    sd = math.sqrt(sum((v - 30.25) ** 2 for v in values) / 3)
    assert mean["model"] == 30.25
    assert half["model"] == round(1.959964 * sd / 2, 4)
    gain = gains(rows, "psnr", ["model", "blend"])["blend"]
    diffs = [1.0, 2.0, 0.0, 3.0]  # paired: far tighter than the means' own intervals
    assert gain["mean"] == 1.5
    assert gain["ci95"] == round(1.959964 * float(np.std(diffs, ddof=1)) / 2, 4)
    assert gain["ci95"] < half["model"]


def test_a_nan_metric_is_left_out_and_one_row_has_no_interval() -> None:
    rows = [{"edge_psnr_model": float("nan")}, {"edge_psnr_model": 20.0}]
    mean, half = means(rows, "edge_psnr", ["model"])
    assert mean == {"model": 20.0} and half == {"model": None}


def test_summary_by_cadence_in_a_fixed_order() -> None:
    rows = [{"source": "a", "bucket": "0-1", "cadence": c, "psnr_model": v, "ssim_model": 0.5,
             "edge_psnr_model": v} for c, v in (("twos", 30.0), ("ones", 20.0), ("twos", 32.0))]
    summary = summarise(rows, ["model"], [0.0, 1.0])
    assert list(summary["by_cadence"]) == ["ones", "twos"]
    assert summary["by_cadence"]["twos"]["psnr"]["model"] == 31.0
    assert "gain" in summary  # the model is scored: its gains over nothing else
    assert summary["gain"]["psnr"] == {}


def test_motion_and_flicker_in_grey_levels() -> None:
    f0, f2 = torch.zeros(3, 4, 4), torch.full((3, 4, 4), 0.2)
    truth = torch.full((3, 4, 4), 0.15)  # halfway would be 0.1: 0.05 too bright
    assert motion(f0, f2) == pytest.approx(51.0)
    assert flicker(f0, truth, f2, 0.5) == pytest.approx(12.75)
    assert flicker(f0, torch.full((3, 4, 4), 0.05), f2, 0.25) == pytest.approx(0.0, abs=1e-5)


def test_the_reason_names_what_was_measured() -> None:
    row = {"flicker": 5.04, "motion": 20.0, "psnr_model": 17.0, "psnr_blend": 18.0}
    assert reason(row) == "flicker 5, fast motion 20, below blend"
    calm = {"flicker": 0.3, "motion": 3.0, "psnr_model": 30.0, "psnr_blend": 25.0}
    assert reason(calm) == "none measured"
