"""Thumbnail tests for the filter stage: cross-fades, flash/blank frames, global pans.

All tests read the small grey thumbnails of ``frames.parquet`` (default 16x16), never
the video: microseconds per triplet (the motion test, run only on drawings that fit a
fade, about a millisecond). Residuals are RMS grey levels over the neighbours'
difference. Each rule in full, with its measurements: docs/NOTES.md.

- fade (:func:`transition_drawings`): the middle is ``a * prev + (1 - a) * next``
  (0 < a < 1) within tolerance, the neighbours differ clearly and not by one shift, and
  the fade beats motion (:func:`motion_residual`, ``transition_motion_ratio``); drawings
  beside a fade that fit one loosely, and slow dissolve spans, count too;
- flash / blank (:func:`is_flash`): ``luma_std <= blank_std``, or far brighter or darker
  than all its scene neighbours (``flash_jump``);
- pan (:func:`is_pan`): the ends differ by one whole-frame shift (:func:`global_shift`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MIN_FADE_WEIGHT = 0.05     # a in [0.05, 0.95]: a weight near 0 or 1 is "equals an end"
MIN_FADE_CONTRAST = 4.0    # grey levels RMS between the neighbours for a fit to count
MAX_FADE_SHIFT = 0.3       # a fade whose neighbours differ by a shift this well is a pan
MIN_PAN_SHIFT = 0.25       # thumbnail pixels
MIN_PAN_MSE = 1.0          # grey levels^2: ends this close have no shift to measure
MOTION_RATIO = 0.33        # a fade's residual must be at most this share of motion's
MOTION_SIDE = 64           # px: the flow of the motion test runs on thumbnails enlarged to this
MARGIN_TOLERANCE = 1.5     # a fade's neighbour joins it if it fits a fade within this x tolerance
SETTLE_LEVEL = 1.0         # grey levels (RMS along the fade): a drawing this close to where the
#                            next ones settle has arrived (Copying: steps 1-7, plateaus within 0.5)
SETTLE_DRAWINGS = 3        # drawings whose median position is "where the picture settles"
ROBUST_SHARE = 0.9         # share of pixels a span's residuals keep: animation or a title over
#                            a dissolve covers less, a dissolve's brightness change far more


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
    e0, m, e2 = (v.reshape(n, -1).astype(np.float64) for v in (end0, mid, end2))
    y, x = e0 - e2, m - e2
    yy = (y * y).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(yy > 0, (x * y).sum(axis=1) / yy, np.nan)
        err = np.sqrt((fade_error(e0, m, e2, a) ** 2).mean(axis=1))
        contrast = np.sqrt(yy / max(y.shape[1], 1))
        residual = np.where(contrast > 0, err / contrast, np.inf)
    return FadeFit(a=a, residual=residual, contrast=contrast)


def fade_error(end0: np.ndarray, mid: np.ndarray, end2: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per pixel of (n, ...) stacks: ``mid`` minus the blend ``a * end0 + (1 - a) * end2``
    (one ``a`` per row; NaN counts as 0)."""
    w = np.nan_to_num(a).reshape((len(mid),) + (1,) * (mid.ndim - 1))
    return (mid - end2) - w * (end0 - end2)


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


def dilate(flags: np.ndarray, scene: np.ndarray, margin: int = 1,
           eligible: np.ndarray | None = None) -> np.ndarray:
    """Also flag the ``margin`` drawings before and after every flagged one, within its
    scene; with ``eligible``, only drawings where it is True are added."""
    same = scene[1:] == scene[:-1]
    ok = np.ones(len(flags), bool) if eligible is None else eligible
    out = flags.copy()
    for _ in range(margin):
        grown = out.copy()
        grown[:-1] |= out[1:] & same & ok[:-1]
        grown[1:] |= out[:-1] & same & ok[1:]
        out = grown
    return out


@dataclass(frozen=True)
class FadeEvidence:
    """Per drawing (of one source, in order): is it a cross-fade of its neighbours, and
    the two residuals that decided (NaN where no fade fit was tried: a scene's first or
    last drawing, or a fit that failed ``is_fade`` or the shift test already).

    ``residual``: the fade fit's RMS error, ``motion``: the motion-compensated
    prediction's (``motion_residual``), both divided by the ends' RMS difference.
    ``loose``: the drawing fits a fade within ``MARGIN_TOLERANCE`` x the tolerance (no
    shift or motion test): only such a drawing may join a neighbouring fade (``dilate``).
    ``span``: the drawing is not a fade of its neighbours but lies in the dissolve a run
    of fades seeds (``dissolve_spans``); its residuals are then the span's.
    """

    flags: np.ndarray
    residual: np.ndarray
    motion: np.ndarray
    loose: np.ndarray
    span: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """Fade residual over motion residual: small means the fade explains the middle far better."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.residual / self.motion


def fade_evidence(thumbs: np.ndarray, scene: np.ndarray, tolerance: float,
                  motion_ratio: float = MOTION_RATIO) -> FadeEvidence:
    """Drawings (of one source, in order) that are a cross-fade of their scene neighbours.

    A candidate must fit a fade (``is_fade``), not be one global shift, and have a fade
    residual at most ``motion_ratio`` times the motion residual: slow camera moves, a
    zoom or a flapping wing are nearly linear at thumbnail size and fit a fade within
    tolerance, but motion explains them about as well (ratio 0.37-1.0 measured, see
    module doc), while a dissolve or fade leaves motion three to fifty times the fade's
    error (ratio 0.02-0.35).
    """
    n = len(scene)
    flags, residual, motion = np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan)
    loose = np.zeros(n, bool)
    if n < 3:
        return FadeEvidence(flags, residual, motion, loose, np.zeros(n, bool))
    inner = np.flatnonzero(scene[:-2] == scene[2:]) + 1
    fit = fade_fit(thumbs[inner - 1], thumbs[inner], thumbs[inner + 1])
    loose[inner] = is_fade(fit, MARGIN_TOLERANCE * tolerance)
    keep = is_fade(fit, tolerance)
    inner, fit_res, contrast = inner[keep], fit.residual[keep], fit.contrast[keep]
    if len(inner):
        no_shift = global_shift(thumbs[inner - 1], thumbs[inner + 1]).explained < MAX_FADE_SHIFT
        inner, fit_res, contrast = inner[no_shift], fit_res[no_shift], contrast[no_shift]
    if len(inner):
        moved = motion_residual(thumbs[inner - 1], thumbs[inner], thumbs[inner + 1]) / contrast
        residual[inner], motion[inner] = fit_res, moved
        flags[inner] = fit_res <= motion_ratio * moved
    return FadeEvidence(flags, residual, motion, loose, np.zeros(n, bool))


def seed_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of every run of consecutive flagged drawings."""
    edge = np.diff(np.r_[0, flags.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edge == 1).tolist(), (np.flatnonzero(edge == -1) - 1).tolist()))


def fade_profile(thumbs: np.ndarray, start: int, end: int) -> np.ndarray:
    """Every drawing's position along the line from ``thumbs[start]`` to ``thumbs[end]``,
    in RMS grey levels (0 at ``start``, the ends' RMS difference at ``end``).

    A dissolve moves the picture along this line, animation under it mostly across it,
    so the position ramps through a dissolve and stays flat before and after it
    (Copying Is Not Theft, 102-125: about 4 grey levels a drawing, flat within 0.5 on
    either side, while the characters animate)."""
    flat = thumbs.reshape(len(thumbs), -1).astype(np.float64)
    line = flat[end] - flat[start]
    norm = np.sqrt((line @ line) * flat.shape[1])
    return (flat - flat[start]) @ line / norm if norm > 0 else np.zeros(len(flat))


def _still_moving(position: np.ndarray, j: int, step: int, settle: float, window: int) -> bool:
    """Is drawing ``j`` more than ``settle`` short of where the next ``window`` drawings
    in direction ``step`` (+1 later, -1 earlier) settle, on the ramp's side?"""
    ahead = np.arange(j + step, j + step * (window + 1), step)
    ahead = ahead[(ahead >= 0) & (ahead < len(position))]
    if len(ahead) == 0:
        return False
    return bool(step * (np.median(position[ahead]) - position[j]) > settle)


def ramp_extent(position: np.ndarray, first: int, last: int, settle: float = SETTLE_LEVEL,
                window: int = SETTLE_DRAWINGS) -> tuple[int, int]:
    """(lo, hi): the drawings of one scene's ``fade_profile`` (rising from ``first - 1``
    to ``last + 1``) that make the ramp through ``first..last``, walked out to where the
    picture settles.

    Later: every drawing still short of where the next ones settle is on the ramp, and
    so is the first that has arrived (``hi``): a drawing is its first frame, which may
    be the dissolve's last, faint blend (the Copying title card still dims at 25).
    Earlier: every drawing still above where the previous ones lie; the one that is not
    begins on a clean frame before the dissolve and is left out.
    """
    hi = last + 1
    while _still_moving(position, hi, 1, settle, window):
        hi += 1
    lo = first - 1
    while _still_moving(position, lo, -1, settle, window):
        lo -= 1
    return lo + 1, hi


def robust_rms(err: np.ndarray, share: float = ROBUST_SHARE) -> float:
    """RMS of the smallest ``share`` of the absolute values of ``err``: what a local
    disturbance (a moving hand, a title) leaves out."""
    values = np.sort(np.abs(err).ravel())
    kept = values[:max(1, int(round(share * len(values))))]
    return float(np.sqrt((kept**2).mean()))


def span_residuals(thumbs: np.ndarray, start: int, end: int) -> tuple[float, float]:
    """Robust fade and motion residuals (``robust_rms`` over all pixels, divided by the
    ends' RMS difference) of the drawings strictly between ``start`` and ``end``, each
    taken against those two ends; NaN when none lies between or the ends barely differ.

    Against the ends of a whole dissolve, a slow fade is large and animation small, and
    the robust share leaves the animation out; a warp still cannot change the
    brightness of the rest. Slow motion, linear between neighbours, is not over a span.
    """
    inner = np.arange(start + 1, end)
    if len(inner) == 0:
        return np.nan, np.nan
    mid = thumbs[inner]
    end0, end2 = np.broadcast_to(thumbs[start], mid.shape), np.broadcast_to(thumbs[end], mid.shape)
    fit = fade_fit(end0, mid, end2)
    contrast = float(fit.contrast[0])
    if contrast < MIN_FADE_CONTRAST:
        return np.nan, np.nan
    fade = robust_rms(fade_error(end0, mid, end2, fit.a))
    return fade / contrast, robust_rms(motion_error(end0, mid, end2)) / contrast


def dissolve_spans(thumbs: np.ndarray, scene: np.ndarray, seeds: FadeEvidence,
                   motion_ratio: float = MOTION_RATIO) -> FadeEvidence:
    """``seeds`` (``fade_evidence``) with the dissolve each run of fades belongs to.

    Around every run of fade drawings (one scene's: a fade has neighbours in its scene),
    the ramp of its scene's ``fade_profile`` (``ramp_extent``); it joins when its drawings, against the drawing before it and its last blend (the
    arrival, which may already animate, is left out), are a fade clearly better than
    motion (``span_residuals``, fade <= ``motion_ratio`` x motion). Its drawings that
    are no fade themselves are marked ``span`` and carry the span's residuals, the
    measure that decided them.
    """
    span, residual, motion = np.zeros(len(scene), bool), seeds.residual.copy(), seeds.motion.copy()
    edges = np.flatnonzero(np.r_[True, scene[1:] != scene[:-1], True])   # scene starts, then n
    for first, last in seed_runs(seeds.flags):
        start, stop = edges[edges <= first][-1], edges[edges > first][0]
        position = fade_profile(thumbs[start:stop], first - 1 - start, last + 1 - start)
        lo, hi = (start + k for k in ramp_extent(position, first - start, last - start))
        if (lo, hi - 1) == (first, last):
            continue
        fade, moved = span_residuals(thumbs, lo - 1, hi - 1)
        if not fade <= motion_ratio * moved:
            continue
        added = np.arange(lo, hi + 1)[~seeds.flags[lo:hi + 1]]
        span[added], residual[added], motion[added] = True, fade, moved
    return FadeEvidence(seeds.flags, residual, motion, seeds.loose, span)


def faded_drawings(evidence: FadeEvidence, scene: np.ndarray, margin: int) -> np.ndarray:
    """Drawings a fade or dissolve covers: the fades dilated by ``margin`` drawings into
    loosely fitting neighbours (``dilate``), and the dissolve spans, which already run
    through the drawing that completes the dissolve and so are not dilated."""
    return dilate(evidence.flags, scene, margin, evidence.loose) | evidence.span


def transition_evidence(thumbs: np.ndarray, scene: np.ndarray, tolerance: float,
                        motion_ratio: float = MOTION_RATIO) -> FadeEvidence:
    """Fade drawings (``fade_evidence``) and the dissolve spans they seed (``dissolve_spans``)."""
    seeds = fade_evidence(thumbs, scene, tolerance, motion_ratio)
    return dissolve_spans(thumbs, scene, seeds, motion_ratio)


@dataclass(frozen=True)
class Transitions:
    """Per drawing of one source, in order: whether it belongs to a transition, and the
    fade/motion ratio that decided it (:func:`fade_window_ratio`)."""

    flags: np.ndarray
    ratio: np.ndarray


def transition_drawings(thumbs: np.ndarray, mean: np.ndarray, std: np.ndarray, scene: np.ndarray,
                        tolerance: float, blank_std: float, jump: float,
                        motion_ratio: float = MOTION_RATIO, margin: int = 1) -> Transitions:
    """Every drawing (of one source, in order) that belongs to a transition: the one rule
    the filter stage and ``inbetweener inspect`` apply.

    Fades (dilated by ``margin`` drawings into loosely fitting neighbours, see module
    doc) and flash or blank frames. The first and last drawing of a scene have no pair
    of neighbours and are judged as flashes.
    """
    ev = transition_evidence(thumbs, scene, tolerance, motion_ratio)
    faded = faded_drawings(ev, scene, margin)
    flags = faded | is_flash(mean, std, scene, blank_std, jump)
    return Transitions(flags, fade_window_ratio(ev.ratio, ev.flags | ev.span, faded, scene, margin))


def fade_window_ratio(ratio: np.ndarray, own: np.ndarray, flagged: np.ndarray, scene: np.ndarray,
                      margin: int) -> np.ndarray:
    """Per drawing, the fade/motion ratio that decided it: a drawing flagged only as a
    fade's neighbour (``flagged`` but not ``own``) takes the smallest ratio of the
    fades within ``margin`` drawings in its scene; every other drawing keeps its own
    (NaN where no fade was fitted, above the motion ratio where motion explained it).
    So a triplet's ``fade_ratio``, the smallest of its three, is the measure behind a
    ``transition`` removal, and never a neighbour's on a kept row."""
    spread = np.where(own, ratio, np.nan)
    if len(ratio) == 0:
        return ratio.copy()
    same = scene[1:] == scene[:-1]
    for _ in range(margin):
        prev = np.r_[np.nan, np.where(same, spread[:-1], np.nan)]
        nxt = np.r_[np.where(same, spread[1:], np.nan), np.nan]
        spread = np.fmin(np.fmin(spread, prev), nxt)
    return np.where(flagged & ~own, spread, ratio)


def _upsampled(thumb: np.ndarray, factor: int) -> np.ndarray:
    """A thumbnail as uint8, enlarged by ``factor`` (bicubic) so DIS's 8 px patches fit."""
    grey = np.clip(np.rint(thumb), 0, 255).astype(np.uint8)
    if factor == 1:
        return grey
    return cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def predict_from(end: np.ndarray, mid: np.ndarray) -> np.ndarray:
    """``end`` warped onto ``mid`` along the DIS optical flow mid -> end (one thumbnail pair).

    The flow runs on copies enlarged to at least ``MOTION_SIDE`` px and is scaled back;
    borders are replicated, so content entering the frame is left to the other end.
    """
    h, w = mid.shape
    factor = max(1, -(-MOTION_SIDE // min(h, w)))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_upsampled(mid, factor), _upsampled(end, factor), None)
    if factor > 1:
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / factor
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(end.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def motion_error(end0: np.ndarray, mid: np.ndarray, end2: np.ndarray) -> np.ndarray:
    """(n, h, w) absolute error (grey levels) of predicting ``mid`` by moving its ends,
    each pixel taken from the end that predicts it better (occlusion: what the middle
    shows may be visible in one end only).

    Never a blend of the two ends: a blend with zero motion is exactly the fade model, so
    it could not tell the two apart. A warp moves pixels but cannot mix two pictures or
    change brightness, which is what a dissolve or a fade does.
    """
    out = np.zeros(mid.shape)
    for i in range(len(mid)):
        err0 = np.abs(predict_from(end0[i], mid[i]) - mid[i])
        err2 = np.abs(predict_from(end2[i], mid[i]) - mid[i])
        out[i] = np.minimum(err0, err2)
    return out


def motion_residual(end0: np.ndarray, mid: np.ndarray, end2: np.ndarray) -> np.ndarray:
    """Per row of (n, h, w) stacks: RMS of ``motion_error`` (grey levels)."""
    err = motion_error(end0, mid, end2)
    return np.sqrt((err**2).reshape(len(mid), -1).mean(axis=1))


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
