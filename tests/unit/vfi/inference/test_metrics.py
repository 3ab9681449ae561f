"""Edge PSNR scores the line art only: checked against a mask and an error built by hand."""

from __future__ import annotations

import math

import numpy as np
import torch

from vfi.inference.metrics import edge_mask, edge_psnr, psnr


def line_drawing(column: int, size: int = 64) -> torch.Tensor:
    """1 x 3 x size x size: white paper, a black vertical line three pixels wide."""
    image = torch.ones(1, 3, size, size)
    image[..., column:column + 3] = 0.0
    return image


def test_the_mask_is_the_line_edges_widened_by_one_pixel() -> None:
    mask = edge_mask(line_drawing(30))[0, 0].numpy()
    # luma steps of 1.0 between columns 29|30 and 32|33: central differences of 0.5 at
    # columns 29, 30, 32, 33; one pixel wider: 28..34, on every row
    expected = np.zeros((64, 64), bool)
    expected[:, 28:35] = True
    assert (mask == expected).all()


def test_a_moved_line_scores_low_on_edges_while_whole_frame_psnr_hides_it() -> None:
    truth, moved = line_drawing(30), line_drawing(32)
    band = (truth - moved)[..., 28:35] ** 2  # the error on the truth's edge band only
    by_hand = -10 * math.log10(float(band.mean()))
    assert math.isclose(float(edge_psnr(moved, truth)[0]), by_hand, rel_tol=1e-5)
    assert float(psnr(moved, truth)[0]) > by_hand + 9  # 2 wrong columns in 64 vs in 7


def test_noise_on_the_fill_leaves_edge_psnr_alone() -> None:
    truth = line_drawing(30)
    noisy = truth.clone()
    noisy[..., :, :20] -= 0.05  # fill far from the line
    assert float(edge_psnr(noisy, truth)[0]) == 100.0  # capped: edges exact
    assert float(psnr(noisy, truth)[0]) < 40


def test_a_frame_without_edges_has_no_edge_score() -> None:
    flat = torch.full((2, 3, 16, 16), 0.5)
    assert torch.isnan(edge_psnr(flat * 0.9, flat)).all()
