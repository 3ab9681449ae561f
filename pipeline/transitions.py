"""Thumbnail tests for the filter stage: cross-fades, flash/blank frames, global pans.

All tests work on the small grey thumbnails of ``frames.parquet`` (default 16x16), so
they cost microseconds per triplet and never touch the video.

Cross-fade. A dissolve or fade frame is a weighted mix of its neighbours:
``mid = a * prev + (1 - a) * next`` with ``0 < a < 1``. Least squares gives ``a``; the
fit residual is compared with the neighbours' difference (both RMS, grey levels), so
the test does not depend on contrast. Real motion of a sharp shape leaves a double
image that no single ``a`` explains. A fade is not motion, so a triplet that contains
such a frame teaches the model nothing about movement.

At 16x16 a sub-pixel move (a slow pan above all) is also nearly linear in pixel
space, so two more conditions: the neighbours must differ clearly
(``MIN_FADE_CONTRAST``), and one global shift must not explain their difference
(``MAX_FADE_SHIFT``, see Pan below); on the synthetic set dissolves fit with a residual
of 0.03-0.12 and a shift explains < 5% of them, while real motion leaves >= 0.17 or is
a pan. The last frames of a dissolve often merge (by hash) into the next shot's first
drawing, whose first frame is then still a blend that fits no fade; so the drawings
right before and after a fade drawing count as transition too (``dilate``).

Flash / blank. A frame whose luma is nearly uniform (``luma_std <= blank_std``), or
that is much brighter or darker than all its neighbours in the scene (``flash_jump``).

Pan. A whole-frame shift between the triplet's ends: the best integer shift in a small
window (mean squared error over the overlap), refined to sub-pixel by a parabola through
its neighbours. ``explained = 1 - mse(shift) / mse(no shift)``; a pan is a shift of at
least ``MIN_PAN_SHIFT`` thumbnail pixels that explains at least ``pan_uniformity`` of
the difference. Objects moving over a still background are not explained by one shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_FADE_WEIGHT = 0.05     # a in [0.05, 0.95]: a weight near 0 or 1 is "equals an end"
MIN_FADE_CONTRAST = 4.0    # grey levels RMS between the neighbours for a fit to count
MAX_FADE_SHIFT = 0.3       # a fade whose neighbours differ by a shift this well is a pan
MIN_PAN_SHIFT = 0.25       # thumbnail pixels
MIN_PAN_MSE = 1.0          # grey levels^2: ends this close have no shift to measure


def thumb_array(values: Sequence[bytes]) -> np.ndarray:
    """Stack square grey thumbnails (raw uint8 bytes) into an (n, side, side) float32 array."""
    if len(values) == 0:
        return np.zeros((0, 0, 0), np.float32)
    side = int(round(len(values[0]) ** 0.5))
    if side * side != len(values[0]):
        raise ValueError(f"thumbnail of {len(values[0])} bytes is not square")
    flat = np.frombuffer(b"".join(values), np.uint8)
    if flat.size != side * side * len(values):
        raise ValueError("thumbnails differ in size")
    return flat.reshape(len(values), side, side).astype(np.float32)


@dataclass(frozen=True)
class FadeFit:
    """Per-row least-squares fit of ``mid ~ a * end0 + (1 - a) * end2``.

    ``contrast``: RMS difference of the ends; ``residual``: RMS fit error divided by
    ``contrast`` (inf when the ends are equal).
    """

    a: np.ndarray
    residual: np.ndarray
    contrast: np.ndarray


def fade_fit(end0: np.ndarray, mid: np.ndarray, end2: np.ndarray) -> FadeFit:
    """Fit every row of (n, ...) thumbnail stacks at once."""
    n = len(mid)
    y = (end0 - end2).reshape(n, -1).astype(np.float64)
    x = (mid - end2).reshape(n, -1).astype(np.float64)
    yy = (y * y).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(yy > 0, (x * y).sum(axis=1) / yy, np.nan)
        err = np.sqrt(((x - np.nan_to_num(a)[:, None] * y) ** 2).mean(axis=1))
        contrast = np.sqrt(yy / max(y.shape[1], 1))
        residual = np.where(contrast > 0, err / contrast, np.inf)
    return FadeFit(a=a, residual=residual, contrast=contrast)


def is_fade(fit: FadeFit, tolerance: float) -> np.ndarray:
    """Rows whose middle is a cross-fade of the ends (see module doc)."""
    inside = (fit.a >= MIN_FADE_WEIGHT) & (fit.a <= 1 - MIN_FADE_WEIGHT)
    return inside & (fit.residual <= tolerance) & (fit.contrast >= MIN_FADE_CONTRAST)


def is_flash(mean: np.ndarray, std: np.ndarray, scene: np.ndarray, blank_std: float, jump: float) -> np.ndarray:
    """Blank frames, and frames much brighter or darker than every neighbour in their scene.

    Inputs are per drawing (first-frame luma), in order; a scene's first or last
    drawing is judged against its only neighbour.
    """
    if len(mean) == 0:
        return np.zeros(0, bool)
    prev_ok = np.r_[False, scene[1:] == scene[:-1]]
    next_ok = np.r_[scene[1:] == scene[:-1], False]
    d_prev = mean - np.r_[mean[:1], mean[:-1]]
    d_next = mean - np.r_[mean[1:], mean[-1:]]
    up = (~prev_ok | (d_prev >= jump)) & (~next_ok | (d_next >= jump))
    down = (~prev_ok | (d_prev <= -jump)) & (~next_ok | (d_next <= -jump))
    has_neighbour = prev_ok | next_ok
    return (std <= blank_std) | (has_neighbour & (up | down))


def dilate(flags: np.ndarray, scene: np.ndarray) -> np.ndarray:
    """Also flag the previous and next drawing of every flagged one, within its scene."""
    same = scene[1:] == scene[:-1]
    out = flags.copy()
    out[:-1] |= flags[1:] & same
    out[1:] |= flags[:-1] & same
    return out


def fade_drawings(thumbs: np.ndarray, scene: np.ndarray, tolerance: float) -> np.ndarray:
    """Drawings (of one source, in order) that are a cross-fade of their scene neighbours."""
    flags = np.zeros(len(scene), bool)
    if len(scene) < 3:
        return flags
    inner = np.flatnonzero(scene[:-2] == scene[2:]) + 1
    fit = fade_fit(thumbs[inner - 1], thumbs[inner], thumbs[inner + 1])
    inner = inner[is_fade(fit, tolerance)]
    if len(inner):
        shift = global_shift(thumbs[inner - 1], thumbs[inner + 1])
        flags[inner[shift.explained < MAX_FADE_SHIFT]] = True
    return flags


def transition_drawings(thumbs: np.ndarray, mean: np.ndarray, std: np.ndarray, scene: np.ndarray,
                        tolerance: float, blank_std: float, jump: float) -> np.ndarray:
    """Flag every drawing (of one source, in order) that belongs to a transition.

    Fades (dilated by one drawing, see module doc) and flash or blank frames. The first
    and last drawing of a scene have no pair of neighbours and are judged as flashes.
    """
    fades = dilate(fade_drawings(thumbs, scene, tolerance), scene)
    return fades | is_flash(mean, std, scene, blank_std, jump)


def _shift_mse(a: np.ndarray, b: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Mean squared difference of a[y, x] and b[y + dy, x + dx] over their overlap."""
    h, w = a.shape[1:]
    ay, by = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    ax, bx = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    diff = a[:, ay, ax] - b[:, by, bx]
    return (diff * diff).mean(axis=(1, 2))


def _parabola(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex (offset in [-0.5, 0.5], value) of the parabola through three equally spaced points."""
    curv = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(curv > 0, 0.5 * (left - right) / curv, 0.0)
    off = np.clip(off, -0.5, 0.5)
    value = mid - 0.25 * (left - right) * off
    return off, np.clip(value, 0.0, mid)


@dataclass(frozen=True)
class Shift:
    """How far the content moved from end0 to end2, in thumbnail pixels
    (``end2[y + dy, x + dx] ~ end0[y, x]``), and the share of the ends' mean squared
    difference that this one shift explains."""

    dy: np.ndarray
    dx: np.ndarray
    explained: np.ndarray


def global_shift(end0: np.ndarray, end2: np.ndarray, radius: int | None = None) -> Shift:
    """Brute-force integer search in [-radius, radius]^2, then per-axis sub-pixel refinement."""
    n, h, w = end0.shape
    radius = max(1, min(h, w) // 4) if radius is None else radius
    offsets = range(-radius - 1, radius + 2)   # one extra ring for the parabola
    mse = np.stack([np.stack([_shift_mse(end0, end2, dy, dx) for dx in offsets], axis=1) for dy in offsets], axis=1)
    inner = mse[:, 1:-1, 1:-1].reshape(n, -1)
    best = inner.argmin(axis=1)
    iy, ix = best // (2 * radius + 1) + 1, best % (2 * radius + 1) + 1
    rows = np.arange(n)
    centre = mse[rows, iy, ix]
    oy, vy = _parabola(mse[rows, iy - 1, ix], centre, mse[rows, iy + 1, ix])
    ox, vx = _parabola(mse[rows, iy, ix - 1], centre, mse[rows, iy, ix + 1])
    best_mse = np.maximum(centre - (centre - vy) - (centre - vx), 0.0)
    still = mse[:, radius + 1, radius + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        explained = np.where(still > 0, 1.0 - best_mse / still, 0.0)
    return Shift(dy=iy - radius - 1 + oy, dx=ix - radius - 1 + ox, explained=explained)


def is_pan(end0: np.ndarray, end2: np.ndarray, uniformity: float) -> np.ndarray:
    """Rows whose ends differ by one whole-frame shift (see module doc)."""
    if len(end0) == 0:
        return np.zeros(0, bool)
    shift = global_shift(end0, end2)
    moved = np.hypot(shift.dy, shift.dx) >= MIN_PAN_SHIFT
    differs = _shift_mse(end0, end2, 0, 0) >= MIN_PAN_MSE
    return moved & differs & (shift.explained >= uniformity)
