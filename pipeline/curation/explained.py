"""Is a triplet's middle explained by its ends? A check against cuts the detector missed.

Scenes come from the cut detector, and a triplet is three consecutive drawings of one
scene; a cut the detector misses puts two shots in one scene, and the triplets over it
(the boat, then Mickey at the wheel) are the worst training rows there are. This check
needs no detector: it looks only at the triplet's three 16x16 grey thumbnails.

Principle. In a real triplet the middle lies between its ends: the three frames show
one picture, each a little moved, so every frame finds its pixels in the other two,
near where they were. Across a cut one end is another picture: it matches neither the
middle nor the other end, while the middle matches its own side closely. Motion, even
fast, changes *part* of the frame (the moving figure) or moves all of it by one shift
(a pan); a cut changes nearly every pixel.

Mismatch of two thumbnails (``mismatch``). Each thumbnail is blurred a little
(``BLUR``: a 16x16 box-filtered thumbnail aliases stripes, hatching and grain into a
new pattern at every sub-pixel move) and normalised to zero mean and unit contrast
(film flicker and exposure change gain and offset, not the picture). Every pixel of
one then takes its distance to the closest value within ``TOLERANCE`` thumbnail
pixels of the same place in the other (local motion); the mismatch is the
``QUANTILE`` (0.85) of those distances, the larger of the two directions: "15 % of
the picture has nothing like it nearby". A pair that does not match in place
(``ALIGN_ABOVE``) is also compared after the best integer whole-frame shift (a pan,
``pipeline.curation.transitions.global_shift``) over the overlap, and keeps the smaller value.
A figure moving over a kept background leaves most pixels matched; a new shot leaves
few. Unit: contrast (z-score); two unrelated pictures measure about 0.4-1.2.

Score (``unexplained_score``). From the three pair mismatches: the odd end is the end
farther from the middle; ``unrelated`` is its mismatch to the closer of the other two
frames (``min(max(m01, m12), m02)``: both its links are bad), and ``near`` is the
middle's mismatch to its own end (``min(m01, m12)``). Score = ``unrelated + (unrelated
- near)``: how foreign the odd end is, plus how much more foreign than the middle is
to its own side. Fast motion all over the frame (three links poor alike) scores about
``unrelated``; a cut (one link close, two far) nearly twice that.

Measured (the filter's ``unexplained_limit`` is 0.55). Synthetic sets with exact truth,
every hard cut hidden from the scenes (13 sets: the clean set and the real-like one
with grain, pans on ones, look-alike cuts, fast and slow motion, over several seeds
and sizes): 213 triplets across a cut that no other reason removed score 0.72-2.4,
all caught; 2600 single-shot triplets score at most 0.40, none removed (none either
with the true scenes). Real clips (``data/real/truth``) with every scene merged: the
19 kept triplets across a hand-checked cut score 0.78-1.7 (the lowest: Popeye and
Bluto, wide -> close), all caught; of about 1850 single-shot triplets two moments
score above the limit (4 triplets, 0.2 %), a bird sweeping its wings over half the
frame and jumping at the camera (Popeye part 3, frames 108-111 and 270-273); the
next highest is 0.43. With PySceneDetect's ``content`` detector, which misses the two
Steamboat Willie cuts and one Popeye cut, all 5 kept triplets across them are caught
(1.1-1.6), and the 2 that enter the Copying Is Not Theft title dissolve.

Cost: about 0.15 ms per drawing on one core (two pairs: the next drawing and the one
after), most of it the shift search, which runs only on pairs that do not match in
place; about what ``is_pan`` costs per triplet.
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
