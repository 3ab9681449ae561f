"""Is a triplet's middle explained by its ends? A check against cuts the detector missed.

A missed cut puts two shots in one scene, whose triplets are the worst training rows.
This check needs no detector, only a triplet's three 16x16 grey thumbnails: in a real
triplet every frame finds its pixels in the other two, near where they were. Principle,
parameters, measurements and cost: docs/NOTES.md.

- :func:`mismatch`: how much of one thumbnail has nothing like it nearby in the other
  (blurred, normalised to zero mean and unit contrast, local motion and a whole-frame
  shift allowed); unit: contrast (z-score), about 0.4-1.2 for two unrelated pictures;
- :func:`unexplained_score`: from the three pair mismatches, ``unrelated + (unrelated -
  near)``: about ``unrelated`` for fast motion, nearly twice that for a cut;
- :func:`triplet_scores`: the score of each triplet of a source's drawings. The filter
  removes one scoring at least ``filter.unexplained_limit``.
"""

from __future__ import annotations

import numpy as np

from pipeline.curation.transitions import global_shift

STD_FLOOR = 4.0        # grey levels: a flatter thumbnail is not stretched past this contrast
BLUR = 0.6             # thumbnail pixels (at 16 px): Gaussian sigma that removes aliased fine texture
TOLERANCE = 1          # thumbnail pixels (at 16 px) a pixel may move locally
QUANTILE = 0.85        # of per-pixel distances: the share of the picture that must match
ALIGN_ABOVE = 0.15     # contrast: a pair matching in place better than this is not shift-searched
CHUNK = 4096           # thumbnail pairs per vectorised block (bounds memory on long sources)


def smoothed(thumbs: np.ndarray, sigma: float) -> np.ndarray:
    """(n, h, w) thumbnails blurred by a separable Gaussian (borders replicated).

    A 16x16 box-filtered thumbnail aliases fine texture (stripes, hatching, grain): a
    sub-pixel pan turns it into another pattern. Blurring keeps the layout that tells
    two shots apart and drops the detail that only flickers."""
    radius = int(np.ceil(3 * sigma))
    if radius == 0:
        return thumbs
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    h, w = thumbs.shape[1:]
    out = np.pad(thumbs, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    out = sum(t * out[:, k:k + h] for k, t in enumerate(taps))
    out = np.pad(out, ((0, 0), (0, 0), (radius, radius)), mode="edge")
    return sum(t * out[:, :, k:k + w] for k, t in enumerate(taps))


def normalised(thumbs: np.ndarray) -> np.ndarray:
    """(n, h, w) thumbnails with zero mean and unit RMS contrast each (flicker-proof);
    contrast below ``STD_FLOOR`` is divided by the floor, so noise on a flat frame is
    not blown up into a picture."""
    mean = thumbs.mean(axis=(1, 2), keepdims=True)
    std = thumbs.std(axis=(1, 2), keepdims=True)
    return (thumbs - mean) / np.maximum(std, STD_FLOOR)


def prepared(thumbs: np.ndarray) -> np.ndarray:
    """Thumbnails as compared: float32, blurred (``BLUR``, scaled with the side), normalised."""
    sigma = BLUR * min(thumbs.shape[1:]) / 16
    return normalised(smoothed(thumbs.astype(np.float32), sigma))


def nearest_distance(a: np.ndarray, b: np.ndarray, radius: int) -> np.ndarray:
    """Per pixel of (n, h, w) ``a``: |a - b| at the closest value of ``b`` within
    ``radius`` pixels of the same place (borders replicated)."""
    h, w = a.shape[1:]
    padded = np.pad(b, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    best = np.full(a.shape, np.inf, np.float32)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            np.minimum(best, np.abs(a - padded[:, dy:dy + h, dx:dx + w]), out=best)
    return best


def _overlap(h: int, w: int, dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices of a and b where a[y, x] meets b[y + dy, x + dx]."""
    ay, by = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    ax, bx = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    return (ay, ax), (by, bx)


def _aligned_mismatch(za: np.ndarray, zb: np.ndarray, dy: int, dx: int, radius: int) -> np.ndarray:
    """Mismatch (both directions, the larger) of rows that share one shift (dy, dx)."""
    h, w = za.shape[1:]
    (ay, ax), (by, bx) = _overlap(h, w, dy, dx)
    a, b = za[:, ay, ax], zb[:, by, bx]
    n = len(a)
    forward = nearest_distance(a, b, radius).reshape(n, -1)
    backward = nearest_distance(b, a, radius).reshape(n, -1)
    return np.maximum(np.quantile(forward, QUANTILE, axis=1), np.quantile(backward, QUANTILE, axis=1))


def mismatch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row of two (n, h, w) thumbnail stacks: how much of the picture has no match
    (module doc), in contrast units; 0 for the same picture, moved or re-lit.

    Compared in place first; a pair above ``ALIGN_ABOVE`` there may have moved as a whole
    and takes the smaller of that and its mismatch at the best whole-frame shift (the
    shift search is most of the cost, and a pair that matches in place needs none)."""
    out = np.zeros(len(a))
    if len(a) == 0:
        return out
    radius = max(1, round(TOLERANCE * min(a.shape[1:]) / 16))
    for start in range(0, len(a), CHUNK):
        za, zb = prepared(a[start:start + CHUNK]), prepared(b[start:start + CHUNK])
        part = _aligned_mismatch(za, zb, 0, 0, radius)
        moved = np.flatnonzero(part > ALIGN_ABOVE)
        if len(moved):
            shift = global_shift(za[moved], zb[moved])
            dy, dx = np.rint(shift.dy).astype(int), np.rint(shift.dx).astype(int)
            for sy, sx in set(zip(dy.tolist(), dx.tolist())) - {(0, 0)}:
                rows = moved[(dy == sy) & (dx == sx)]
                part[rows] = np.minimum(part[rows], _aligned_mismatch(za[rows], zb[rows], sy, sx, radius))
        out[start:start + CHUNK] = part
    return out


def step_mismatch(thumbs: np.ndarray, step: int) -> np.ndarray:
    """Mismatch of every drawing with the one ``step`` later (NaN for the last ``step``):
    a source's triplets (d, d+1, d+2) read their three pair values from steps 1 and 2."""
    n = len(thumbs)
    out = np.full(n, np.nan)
    if n > step:
        out[:n - step] = mismatch(thumbs[:n - step], thumbs[step:])
    return out


def unexplained_score(m01: np.ndarray, m12: np.ndarray, m02: np.ndarray) -> np.ndarray:
    """Per triplet, from its pair mismatches (module doc): ``unrelated + (unrelated -
    near)``, where ``unrelated`` is the odd end's mismatch to the closer of the other two
    frames and ``near`` the middle's mismatch to its own end."""
    near = np.minimum(m01, m12)
    unrelated = np.minimum(np.maximum(m01, m12), m02)
    return 2 * unrelated - near


def triplet_scores(thumbs: np.ndarray, d0: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """``unexplained_score`` of triplets of consecutive drawings (d0, d1, d2) of one
    source (``thumbs`` in drawing order): each pair of drawings is measured once, as
    neighbours (step 1) or one apart (step 2), and every triplet reads its three."""
    if not (np.array_equal(d1, d0 + 1) and np.array_equal(d2, d0 + 2)):
        raise ValueError("triplets are not three consecutive drawings (tables out of date?)")
    one, two = step_mismatch(thumbs, 1), step_mismatch(thumbs, 2)
    return unexplained_score(one[d0], one[d1], two[d0])
