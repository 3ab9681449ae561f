"""Held drawings, decided frame by frame from pixels: one online rule for every caller.

A *drawing* is one distinct composited picture (issue 12): a cel held under a pan on
ones, or slow sub-pixel motion, is a new drawing every frame. :class:`HoldTracker`
judges one source's frames pushed in order (``push_grey``: analysis-size grey frame and
(phash, dhash)) and returns a :class:`HoldStep` each: a frame is compared with its
drawing's first frame (the anchor) by a local, a spread and a shift change, and starts a
drawing when any exceeds its gate (``HoldStep.change``, in gates, above 1). A gate is a
``triplets.hold_*`` factor times the source's noise level, learnt causally from
held-looking pairs, never below its floor; film scans (flicker, weave, dust) turn on a
film mode that cleans each comparison first. A slow drift found late makes the frames
since the anchor drawings of their own (``HoldStep.split_back``; applied by
:func:`drawing_ids`, ignored by ``interpolate``). Scenes are the callers' business.
The rule in full, why it is built so, and its measurements: docs/NOTES.md.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from pipeline.core.config import TripletParams

NOISE_HASH_BITS = 2  # a pair whose phash or dhash differ more is no noise sample
MIN_NOISE_PAIRS = 1  # fewer noise samples: no noise level yet, the floor decides
NOISE_MAX_SHIFT = 4.0  # a pair whose shift change passes this x the shift floor moves: no
#                        noise sample (a pan under a changing cel has two motions, so no
#                        common shift, and its hashes may agree)
NOISE_SHARE = 2.4  # a pair whose common shift explains this many times grain's share
#                    (1 / tiles) of its tiles' shifts is a camera move, no noise sample
FILM_SAMPLES = 64  # held-looking pairs the film-noise evidence keeps (the latest)
FILM_EVIDENCE = 3.0  # a pair counts as film evidence if the noise model leaves this many local gates
FILM_MIN_SAMPLES = 4  # fewer: no film noise assumed
FILM_WEAVE = 0.25  # px (analysis size): median jump of the whole-frame shift between held pairs: weave
FILM_FLICKER = 0.5  # grey levels: median mean-level change between held pairs: flicker
MAX_FLICKER = 0.08  # film flicker changes contrast by less than this share; a fade by more
WEAVE_COHERENCE = 0.6  # share of the tiles' shifts one whole-frame shift explains: weave, which
#                        moves the whole frame (a pan under a held cel moves part of it only)
NOISE_TAIL_PERCENTILE = 95  # of a pair's block changes: what grain alone shows in nearly every block
NOISE_TAIL = 2.5  # noise's largest block change, measured over its NOISE_TAIL_PERCENTILE-th
#                   percentile (Gaussian grain: 2.0; film and codec noise have longer tails)
NOISE_BINS = 1 << 12  # noise histogram over 0..64 grey levels (1/64 level per bin); a
NOISE_RANGE = 64.0    # larger sample is no noise and only counts in the last bin


def change_grid(grey: np.ndarray, block: int) -> np.ndarray:
    """Block means (float32) of a grey uint8 image: the input of the change measure.

    OpenCV's area resize is the block mean where the sides divide and weighs border
    pixels by their overlap otherwise; a side shorter than a block keeps one block.
    """
    h, w = grey.shape[:2]
    size = (max(1, w // block), max(1, h // block))
    return cv2.resize(grey.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def local_change(a: np.ndarray, b: np.ndarray, cells: int = 1) -> float:
    """Largest absolute block-mean difference of two grids over ``cells`` x ``cells``
    neighbouring blocks (grey levels): a small change anywhere (a mouth, a hand) shows
    nearly whole in one window, while a film speck, which fills a block at most, is
    divided by the window's area."""
    if a.shape != b.shape:
        raise ValueError(f"change grids differ in shape: {a.shape} vs {b.shape}")
    diff = cv2.absdiff(a, b)
    if cells > 1:
        diff = cv2.blur(diff, (cells, cells), borderType=cv2.BORDER_REPLICATE)
    return float(diff.max())


def noise_local_change(a: np.ndarray, b: np.ndarray, cells: int = 1) -> float:
    """The local change (:func:`local_change`) the pair would show if all of it were
    noise: ``NOISE_TAIL`` x the ``NOISE_TAIL_PERCENTILE``-th percentile of its block
    changes, a uniform offset removed. Noise touches every block, so its bulk predicts its
    maximum; a small real change (a steam puff, a mouth) sets the maximum but barely moves
    the bulk, so a pair that holds one still yields its noise, not its change."""
    diff = b - a
    diff = np.abs(diff - np.float32(np.median(diff)))
    if cells > 1:
        diff = cv2.blur(diff, (cells, cells), borderType=cv2.BORDER_REPLICATE)
    flat = diff.ravel()
    k = min(flat.size - 1, int(flat.size * NOISE_TAIL_PERCENTILE / 100))
    return NOISE_TAIL * float(np.partition(flat, k)[k])


def spread_change(a: np.ndarray, b: np.ndarray, cells: int) -> float:
    """RMS over coarse blocks (``cells`` x ``cells`` grid cells) of the mean difference
    (grey levels): a faint change over much of the frame (a sub-pixel pan over texture)
    adds up here where no single block stands out of the grain."""
    if a.shape != b.shape:
        raise ValueError(f"change grids differ in shape: {a.shape} vs {b.shape}")
    diff = a - b
    h, w = diff.shape
    coarse = cv2.resize(diff, (max(1, w // cells), max(1, h // cells)), interpolation=cv2.INTER_AREA)
    return float(cv2.norm(coarse, cv2.NORM_L2)) / math.sqrt(coarse.size)


@dataclass(frozen=True)
class Gradient:
    """What comparing later frames with a grid by :func:`shift_change` needs of it,
    computed once per frame (so a comparison costs one product and one tile mean).

    ``ixy``: Sobel derivatives (grey levels per block), channels x and y. ``inverse``:
    per tile, the inverse of the 2 x 2 normal matrix of a tile shift (tile means of the
    gradient products) as (xx, xy, yy), shape (3, rows, columns). ``weight``: per tile,
    1 / its gradient energy; ``common``: the inverse normal matrix of one shift of the
    whole frame with tiles so weighted (xx, xy, yy). ``tiles``: (columns, rows).
    """

    ixy: np.ndarray
    inverse: np.ndarray
    weight: np.ndarray
    common: tuple[float, float, float]
    tiles: tuple[int, int]

    def tile_means(self, a: np.ndarray) -> np.ndarray:
        """Means over each tile of a channels-last image: (rows, columns, channels)."""
        cols, rows = self.tiles
        return cv2.resize(a, self.tiles, interpolation=cv2.INTER_AREA).reshape(rows, cols, -1)


class Picture:
    """A frame as the hold rule keeps it: its change grid and that grid's gradient.

    The gradient is computed on first use and kept: only a drawing's anchor and the
    previous frame in a drift check are ever compared from, so most frames held on
    ones (and every frame that only ends a hold) never need it. Same values either way
    (:func:`gradient` is a pure function of the grid); ~0.1 ms saved per such frame.
    """

    __slots__ = ("grid", "across", "_gradient", "_noise_fit")

    def __init__(self, grid: np.ndarray, across: int) -> None:
        self.grid, self.across = grid, across
        self._gradient: Gradient | None = None
        self._noise_fit: NoiseFit | None = None

    @property
    def gradient(self) -> Gradient:
        """:func:`gradient` of the grid over ``across`` tiles, computed once."""
        if self._gradient is None:
            self._gradient = gradient(self.grid, self.across)
        return self._gradient

    @property
    def noise_fit(self) -> NoiseFit:
        """:func:`noise_fit` of the grid, computed once (anchors, and each frame once as
        the previous one of the film-noise evidence)."""
        if self._noise_fit is None:
            self._noise_fit = noise_fit(self.grid, self.gradient.ixy)
        return self._noise_fit


@dataclass(frozen=True)
class NoiseFit:
    """What removing film noise from a comparison with a grid needs, computed once per
    frame it is compared from: the design matrix of the noise model, flattened (columns:
    the grid (a gain), 1, then u, v, u², uv, v² over the frame (a smooth brightness
    field), then the grid's x and y gradient (a small whole-frame shift, linearised)),
    and the inverse of its normal matrix."""

    design: np.ndarray  # (cells, 9) float64
    normal_inv: np.ndarray  # (9, 9)

    def solve(self, b: np.ndarray, shift: bool = True) -> np.ndarray:
        """Least-squares coefficients of ``b`` (9 values: gain, offset, the field's
        five, the shift's two, 0 when ``shift`` is False)."""
        rhs = self.design.T @ b.ravel().astype(np.float64)
        if shift:
            return self.normal_inv @ rhs
        normal = (self.design[:, :-2].T @ self.design[:, :-2])
        return np.r_[np.linalg.solve(normal + np.eye(len(normal)) * 1e-6, rhs[:-2]), 0.0, 0.0]


@functools.lru_cache(maxsize=8)
def brightness_field(shape: tuple[int, int]) -> np.ndarray:
    """The smooth brightness field's columns over a grid of ``shape``: 1, u, v, u², uv,
    v² (u, v from -0.5 to 0.5 across), (cells, 6), read-only; the same for every frame
    of a source, so built once per size."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = (x.ravel() - w / 2) / w, (y.ravel() - h / 2) / h
    columns = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    columns.flags.writeable = False
    return columns


def noise_fit(grid: np.ndarray, ixy: np.ndarray) -> NoiseFit:
    """The :class:`NoiseFit` of a change grid and its Sobel gradient (``Gradient.ixy``)."""
    smooth = brightness_field(grid.shape)
    design = np.empty((grid.size, 9), np.float64)
    design[:, 0] = grid.ravel()
    design[:, 1:7] = smooth
    design[:, 7] = ixy[..., 0].ravel()
    design[:, 8] = ixy[..., 1].ravel()
    normal = design.T @ design + np.eye(9) * 1e-6  # a flat grid: no gradient, no shift
    return NoiseFit(design, np.linalg.inv(normal))


def remove_film_noise(anchor: Picture, b: np.ndarray, block: int, max_weave: float) -> np.ndarray:
    """``b`` with what film noise explains of its difference from ``anchor`` removed.

    Film and its transfers change a held picture in ways no drawing does: the
    brightness flickers (a gain and an offset, often brighter on one side or in the
    middle: a smooth field), and the gate weaves (the whole frame shifts by up to a
    pixel or two). A least-squares fit of ``b`` on the anchor's grid, a constant and a
    quadratic field over the frame (and, linearised on the anchor's gradient, a
    whole-frame shift) takes them out; a drawing change (a mouth, a puff of steam) is
    local and barely moves a whole-frame fit, so it stays. A gain change over
    ``MAX_FLICKER`` is a fade, not flicker: nothing is removed.
    A shift over ``max_weave`` px (analysis size) is no weave but a camera move, which is
    every frame a new picture: it is not removed, and only the photometric part is fit.
    A slow pan whose steps stay under ``max_weave`` adds up against the anchor until it
    passes, and the drift rule then splits its frames (module doc).
    """
    fit = anchor.noise_fit
    coef = fit.solve(b)
    dx, dy = coef[-2] * block, coef[-1] * block
    if math.hypot(dx, dy) > max_weave:
        coef = fit.solve(b, shift=False)
    if abs(coef[0] - 1.0) > MAX_FLICKER:
        return b  # a fade, not flicker: the drift rule splits its frames
    model = (fit.design @ coef).reshape(b.shape)
    return (b - model + anchor.grid).astype(np.float32)


def inverse_2x2(xx: np.ndarray, xy: np.ndarray, yy: np.ndarray, eps: float) -> np.ndarray:
    """(xx, xy, yy) of the inverse of symmetric 2 x 2 matrices, stacked (determinant at
    least eps: a flat tile, whose gradient is only grain, explains nothing)."""
    det = np.maximum(xx * yy - xy * xy, eps)
    return np.stack([yy, -xy, xx]) / det


def gradient(grid: np.ndarray, across: int) -> Gradient:
    """The :class:`Gradient` of a change grid over square tiles, ``across`` of them side by
    side (as many rows as fit): a fixed number of tiles whatever the frame size, so the
    shift change's noise has the same spread (2 degrees of freedom per tile)."""
    h, w = grid.shape
    tile = max(1, w // across)
    tiles = (max(1, w // tile), max(1, h // tile))
    ix = cv2.Sobel(grid, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
    iy = cv2.Sobel(grid, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
    shape = Gradient(cv2.merge([ix, iy]), np.zeros(0), np.zeros(0), (0.0, 0.0, 0.0), tiles)
    g = shape.tile_means(cv2.merge([ix * ix, ix * iy, iy * iy]))
    xx, xy, yy = g[..., 0], g[..., 1], g[..., 2]
    weight = 1.0 / np.maximum(xx + yy, 1e-6)
    sxx, sxy, syy = ((weight[..., None] * g).sum(axis=(0, 1), dtype=np.float64)).tolist()
    det = max(sxx * syy - sxy * sxy, 1e-12)
    return replace(shape, inverse=inverse_2x2(xx, xy, yy, 1e-6), weight=weight,
                   common=(syy / det, -sxy / det, sxx / det))


def shift_change(a: np.ndarray, grad: Gradient, b: np.ndarray) -> tuple[float, float]:
    """How much of the change from ``a`` to ``b`` a small shift of ``a`` explains, and how
    coherent that shift is across the frame.

    First: the RMS over tiles of the per-block energy that each tile's least-squares
    shift (Lucas-Kanade, linearised on ``a``'s gradient ``grad``) removes, in grey
    levels. A camera move over texture shifts every textured tile coherently, a
    fraction of a pixel each frame: each block changes by gradient x shift, below the
    grain, but the fit gathers it over the tile. Grain fits a shift only by chance (2 of
    a tile's degrees of freedom). The mean change is removed first, so flicker is no
    shift. Why tiles and not one global shift (``cv2.phaseCorrelate``): under a held
    cel the picture has two motions, and the held cel's edges win (measured: phase
    correlation reports 0.0 px with response 0.86 over a 0.63 px pan); a tile over
    background alone fits the pan whatever the cels do.

    Second: the share of that energy one common shift of the whole frame explains
    (0..1), every tile weighted alike (else a held cel's strong outlines outweigh the
    background and pull the common shift to zero). Grain's tile shifts point anywhere,
    so one shift explains about 1 / tiles of them; a camera move's agree. It tells the
    noise estimate a pan from a hold.
    """
    d = cv2.subtract(b, a)
    d -= np.float32(cv2.mean(d)[0])
    bxy = grad.tile_means(cv2.multiply(grad.ixy, cv2.merge([d, d])))
    bx, by = bxy[..., 0], bxy[..., 1]
    inv = grad.inverse
    energy = inv[0] * bx * bx + 2 * inv[1] * bx * by + inv[2] * by * by
    gx, gy = float((grad.weight * bx).sum()), float((grad.weight * by).sum())
    cxx, cxy, cyy = grad.common
    common = cxx * gx * gx + 2 * cxy * gx * gy + cyy * gy * gy
    weighted = float((grad.weight * energy).sum())
    coherence = min(common / weighted, 1.0) if weighted > 0 else 0.0
    return math.sqrt(max(float(energy.mean()), 0.0)), coherence


def near(a: tuple[int, ...], b: tuple[int, ...], bits: int = NOISE_HASH_BITS) -> bool:
    """Whether every hash of ``a`` is within ``bits`` of the same hash of ``b``."""
    return all((x ^ y).bit_count() <= bits for x, y in zip(a, b, strict=True))


@dataclass
class NoiseLevel:
    """Running quantile of a source's noise samples (see module doc)."""

    quantile: float
    counts: np.ndarray = field(default_factory=lambda: np.zeros(NOISE_BINS, np.int64))
    total: int = 0
    _value: float | None = None  # cached: recomputed only after a new sample
    _stale: bool = False

    def add(self, value: float) -> None:
        """Count one sample (grey levels, >= 0)."""
        self.counts[min(int(value * NOISE_BINS / NOISE_RANGE), NOISE_BINS - 1)] += 1
        self.total += 1
        self._stale = True

    @property
    def value(self) -> float | None:
        """The quantile (its bin's upper edge); None before ``MIN_NOISE_PAIRS`` samples."""
        if self.total < MIN_NOISE_PAIRS:
            return None
        if self._stale:
            rank = int(np.searchsorted(np.cumsum(self.counts), self.quantile * self.total))
            self._value, self._stale = (rank + 1) * NOISE_RANGE / NOISE_BINS, False
        return self._value


@dataclass(frozen=True)
class HoldStep:
    """The decision for one frame.

    ``drawing``: 0-based per source, scenes ignored. ``change``: how far the frame is
    from the anchor it was compared with, in gates (the largest of the local, spread and
    shift measures, each over its own gate): above 1 it starts a drawing; 0 for a
    source's first frame. ``split_back``: how many frames just before this one the
    drift rule has just made drawings of their own (ids ``drawing - split_back`` to
    ``drawing - 1``).
    """

    drawing: int
    change: float
    split_back: int = 0


class FilmNoise:
    """Whether a source shows film's noise: gate weave and brightness flicker.

    Judged from consecutive pairs whose hashes agree (held or nearly so), by the noise
    model's fit (:class:`NoiseFit`): weave makes the whole-frame shift jump from pair to
    pair (a camera pan keeps it steady), flicker moves the mean level. A digital master,
    a clean scan and a synthetic clip show neither, and the film noise removal, which
    could only blur their small changes, stays off for them.
    """

    def __init__(self) -> None:
        self.jitter: deque[float] = deque(maxlen=FILM_SAMPLES)
        self.level: deque[float] = deque(maxlen=FILM_SAMPLES)
        self.last: tuple[float, float, float] | None = None  # the previous pair's shift and level change
        self._active: bool | None = False

    def add(self, coef: np.ndarray, mean: float, block: int) -> None:
        """One held-looking pair's fit: how its whole-frame shift and its mean level
        change differ from the previous pair's (a pan or a fade changes them steadily)."""
        step = (float(coef[-2]) * block, float(coef[-1]) * block,
                float(coef[1]) + (float(coef[0]) - 1.0) * mean)
        if self.last is not None:
            self.jitter.append(math.hypot(step[0] - self.last[0], step[1] - self.last[1]))
            self.level.append(abs(step[2] - self.last[2]))
            self._active = None
        self.last = step

    def skip(self) -> None:
        """A pair that is no noise sample breaks the run."""
        self.last = None

    @property
    def active(self) -> bool:
        """Whether the source is film now (recomputed only after a new sample)."""
        if self._active is None:
            self._active = len(self.level) >= FILM_MIN_SAMPLES and (
                float(np.median(self.jitter)) >= FILM_WEAVE or float(np.median(self.level)) >= FILM_FLICKER)
        return self._active


class HoldTracker:
    """Drawing ids of one source's frames, pushed in order (module doc: the rule).

    Used as is by detect_cuts' analysis pass and by ``interpolate``'s streaming
    analysis, so both decide alike.
    """

    def __init__(self, params: TripletParams) -> None:
        self.params = params
        self.noise = tuple(NoiseLevel(params.hold_noise_quantile) for _ in range(3))
        self.floors = (params.hold_min_change, params.hold_min_spread, params.hold_min_shift)
        self.factors = (params.hold_noise_factor,) * 2 + (params.hold_shift_factor,)
        self.anchor: Picture | None = None
        self.prev: Picture | None = None
        self.anchor_hashes: tuple[int, ...] = ()
        self.since_anchor = 0  # frames pushed since the anchor
        self.first_moved = 0.0  # the change (in gates) of the frame after the anchor
        self.identical = False  # whether the last noise candidate was bit-identical to its anchor
        self.drawing = -1
        self.film = FilmNoise()
        self.prev_hashes: tuple[int, ...] = ()

    def gates(self) -> tuple[float, float, float]:
        """The local, spread and shift change a held frame may show now: its factor x
        the noise level of each, at least its floor."""
        out = []
        scale = self.params.hold_film_factor / self.params.hold_noise_factor if self.film.active else 1.0
        for noise, floor, factor in zip(self.noise, self.floors, self.factors):
            level = noise.value
            out.append(floor if level is None else max(floor, scale * factor * level))
        return out[0], out[1], out[2]

    def _compare(self, a: Picture, b: np.ndarray,
                 clean: bool = True) -> tuple[tuple[float, float, float], float, np.ndarray]:
        """The three change measures from ``a`` to ``b``, the shift's coherence, and ``b``
        as measured (film noise removed in film mode)."""
        p = self.params
        shift, coherence = shift_change(a.grid, a.gradient, b)
        if clean and p.hold_max_weave >= 0 and self.film.active:
            weave = p.hold_max_weave if coherence >= WEAVE_COHERENCE else 0.0
            b = remove_film_noise(a, b, p.hold_block, weave)
            shift, _ = shift_change(a.grid, a.gradient, b)
        return (local_change(a.grid, b, self.local_cells),
                spread_change(a.grid, b, p.hold_spread_cells), shift), coherence, b

    @property
    def local_cells(self) -> int:
        """Blocks per side of the local measure's window (film: a speck fills one)."""
        return self.params.hold_film_local_cells if self.film.active else 1

    @staticmethod
    def _in_gates(measures: tuple[float, ...], gates: tuple[float, ...]) -> float:
        """The largest measure over its gate (a zero gate: any change is infinitely far)."""
        return max(m / g if g > 0 else (math.inf if m > 0 else 0.0)
                   for m, g in zip(measures, gates))

    def _learn_noise(self, change: tuple[float, float, float], coherence: float,
                     hashes_near: bool, measured: np.ndarray) -> None:
        """Count a frame's change from its anchor in the noise levels if it looks held
        (module doc: the noise level). The local sample is at most what the pair's bulk
        says noise alone would reach (:func:`noise_local_change`): hashes let small real
        changes through, and a source whose first shot holds nothing would otherwise
        learn them as its noise."""
        identical = change[0] == 0.0
        assert self.anchor is not None
        tiles = self.anchor.gradient.tiles
        coherent = coherence * tiles[0] * tiles[1] >= NOISE_SHARE
        moving = change[2] > NOISE_MAX_SHIFT * self.params.hold_min_shift
        if hashes_near and not coherent and not moving and not (identical and self.identical):
            local = min(change[0], noise_local_change(self.anchor.grid, measured, self.local_cells))
            for noise, value in zip(self.noise, (local,) + change[1:]):
                noise.add(value)
        self.identical = identical

    def _learn_film(self, prev: Picture, grid: np.ndarray, hashes_near: bool) -> None:
        """Count a consecutive pair in the film-noise evidence if it looks held."""
        if self.params.hold_max_weave < 0:
            return
        p = self.params
        if hashes_near:
            clean = remove_film_noise(prev, grid, p.hold_block, p.hold_max_weave)
            hashes_near = local_change(prev.grid, clean, p.hold_film_local_cells) <= FILM_EVIDENCE * max(
                self.gates()[0], p.hold_min_change)
        if hashes_near:
            self.film.add(prev.noise_fit.solve(grid), float(prev.grid.mean()), p.hold_block)
        else:
            self.film.skip()

    def _restart(self, picture: Picture, hashes: tuple[int, ...]) -> None:
        self.anchor, self.anchor_hashes, self.since_anchor = picture, hashes, 0
        self.drawing += 1

    def push_grey(self, grey: np.ndarray, hashes: tuple[int, ...]) -> HoldStep:
        """Judge the next frame from its grey image (analysis size) and (phash, dhash)."""
        return self.push(change_grid(grey, self.params.hold_block), hashes)

    def push(self, grid: np.ndarray, hashes: tuple[int, ...]) -> HoldStep:
        """Judge the next frame from its :func:`change_grid` and (phash, dhash)."""
        picture = Picture(grid, self.params.hold_shift_tiles)
        prev, self.prev = self.prev, picture
        if self.anchor is None or prev is None or grid.shape != prev.grid.shape:
            self._restart(picture, hashes)
            self.prev_hashes = hashes
            return HoldStep(self.drawing, 0.0 if self.drawing == 0 else math.inf)
        self._learn_film(prev, grid, near(hashes, self.prev_hashes))
        self.prev_hashes = hashes
        change, coherence, measured = self._compare(self.anchor, grid)
        self._learn_noise(change, coherence, near(hashes, self.anchor_hashes), measured)
        self.since_anchor += 1
        gates = self.gates()
        moved = self._in_gates(change, gates)
        if self.since_anchor == 1:
            self.first_moved = moved
        if moved <= 1.0:
            return HoldStep(self.drawing, moved)
        slow = (self.since_anchor >= 2 and self.first_moved < self.params.hold_drift * moved
                and self._in_gates(self._compare(prev, grid, clean=False)[0], gates) < self.params.hold_drift * moved)
        drift = self.since_anchor - 1 if slow else 0
        self.drawing += drift
        self._restart(picture, hashes)
        return HoldStep(self.drawing, moved, drift)


def drawing_ids(steps: list[HoldStep]) -> np.ndarray:
    """Per-frame drawing ids with every drift revision applied (the pipeline's view)."""
    ids = np.array([s.drawing for s in steps], np.int64)
    for i, s in enumerate(steps):
        if s.split_back:
            ids[i - s.split_back:i] = np.arange(s.drawing - s.split_back, s.drawing)
    return ids
