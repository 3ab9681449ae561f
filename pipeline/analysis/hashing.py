"""Perceptual hashes of frames, as one uint64 each, and their Hamming distances.

The hashes are imagehash's ``phash`` and ``dhash`` (``hash_size=8``) of the analysis
frame as a PIL "L" image, bit for bit. Bit order (defined here only): the 8x8 matrix is
flattened row-major, its first element the most significant bit, i.e. ``int(str(h), 16)``
for an ``imagehash.ImageHash`` ``h``, so a stored value compares with any imagehash output.

- :func:`frame_hashes`: (phash, dhash) of a grey frame, by an exact re-implementation of
  Pillow's resize (it falls back to imagehash if Pillow ever resamples differently);
- :func:`reference_hashes`: the same from imagehash itself, the reference;
- :func:`pil_grey`: the "L" conversion the hashes are defined on, without Pillow's copies;
- :func:`hamming`: bit distances between hashes.

Why the re-implementation, how it stays exact, and its timings: docs/NOTES.md.
"""

from __future__ import annotations

import functools
import math

import cv2
import imagehash
import numpy as np
import scipy.fftpack
from PIL import Image

HASH_SIZE = 8
PHASH_SIDE = HASH_SIZE * 4  # imagehash's highfreq_factor 4: the DCT input is 32x32
_PRECISION_BITS = 22  # Pillow's 8-bit resampler: 32 - 8 - 2
_LANCZOS_SUPPORT = 3.0


def to_uint64(bits: np.ndarray) -> int:
    """An 8x8 boolean hash as an int in [0, 2**64): row-major, first bit most significant.

    Equal to ``int(str(h), 16)`` for the ImageHash ``h`` holding ``bits``.
    """
    flat = np.asarray(bits, dtype=bool).reshape(-1)
    if flat.size != 64:
        raise ValueError(f"expected a 64-bit hash, got {flat.size} bits")
    return int.from_bytes(np.packbits(flat).tobytes(), "big")


def reference_hashes(image: Image.Image) -> tuple[int, int]:
    """(phash, dhash) straight from imagehash: the definition ``frame_hashes`` matches."""
    return (to_uint64(imagehash.phash(image, hash_size=HASH_SIZE).hash),
            to_uint64(imagehash.dhash(image, hash_size=HASH_SIZE).hash))


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    """Pillow's truncated-sinc LANCZOS kernel, same operations in the same order."""
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


def _fixed(k: float) -> int:
    """Pillow's normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point."""
    scaled = k * (1 << _PRECISION_BITS)
    return int(scaled - 0.5) if k < 0 else int(scaled + 0.5)


@functools.lru_cache(maxsize=64)
def _weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) fixed-point LANCZOS weights (Pillow's precompute_coeffs)."""
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support, inv = _LANCZOS_SUPPORT * filterscale, 1.0 / filterscale
    out = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - xmin
        taps = [_lanczos((x + xmin - center + 0.5) * inv) for x in range(count)]
        total = 0.0
        for w in taps:  # sequential, as in C (Python's sum() may compensate)
            total += w
        for x, w in enumerate(taps):
            out[xx, xmin + x] = _fixed(w / total if total != 0.0 else w)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def _weights_t(in_size: int, out_size: int) -> np.ndarray:
    """``_weights`` transposed and contiguous (a strided operand makes matmul ~20x slower)."""
    out = np.ascontiguousarray(_weights(in_size, out_size).T)
    out.setflags(write=False)
    return out


def _clip8(acc: np.ndarray) -> np.ndarray:
    """Pillow's clip8: add half, shift right 22 (floor), clamp to [0, 255]."""
    half = float(1 << (_PRECISION_BITS - 1))
    return np.clip(np.floor((acc + half) / float(1 << _PRECISION_BITS)), 0.0, 255.0)


def _resample(grey: np.ndarray, width: int, height: int, order: str) -> np.ndarray:
    """Both fixed-point passes, horizontal then vertical ("hv") or the reverse ("vh")."""
    h, w = grey.shape
    pixels = grey.astype(np.float64)
    for axis in order:
        if axis == "h" and width != w:
            pixels = _clip8(pixels @ _weights_t(w, width))
        elif axis == "v" and height != h:
            pixels = _clip8(_weights(h, height) @ pixels)
    return pixels.astype(np.uint8)


@functools.lru_cache(maxsize=32)
def _pass_order(width: int, height: int, out_width: int, out_height: int) -> str | None:
    """The order Pillow runs its two passes in for these sizes, asked of Pillow itself.

    Pillow 13 no longer always goes horizontal first, and the rule is not part of its
    API, so we compare both orders with Pillow on noise and gradient probes, once per
    size. None when neither reproduces Pillow exactly (a future resampler change):
    callers then use imagehash itself.
    """
    rng = np.random.default_rng(0)
    ramp = np.add.outer(np.arange(height) * 7, np.arange(width) * 3) % 256
    probes = [rng.integers(0, 256, (height, width), dtype=np.uint8), ramp.astype(np.uint8)]
    wanted = [np.asarray(Image.fromarray(p).resize((out_width, out_height), Image.LANCZOS))
              for p in probes]
    for order in ("hv", "vh"):
        if all(np.array_equal(_resample(p, out_width, out_height, order), want)
               for p, want in zip(probes, wanted)):
            return order
    return None


def lanczos_resize(grey: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """``Image.fromarray(grey).resize((width, height), LANCZOS)`` as uint8, or None
    when this Pillow resamples in a way we do not reproduce."""
    order = _pass_order(grey.shape[1], grey.shape[0], width, height)
    return None if order is None else _resample(grey, width, height, order)


@functools.lru_cache(maxsize=32)
def _joint_weights(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Both hashes' weights for one frame size when Pillow goes horizontal first for both
    (it does for every analysis size measured): the two horizontal passes as one
    (width, 32 + 9) matrix, so one product serves both, and the two vertical ones.
    None otherwise (``frame_hashes`` then resamples each size on its own)."""
    if (_pass_order(width, height, PHASH_SIDE, PHASH_SIDE) != "hv"
            or _pass_order(width, height, HASH_SIZE + 1, HASH_SIZE) != "hv"
            or width in (PHASH_SIDE, HASH_SIZE + 1) or height in (PHASH_SIDE, HASH_SIZE)):
        return None  # a pass Pillow skips (same size) is not worth a special case here
    joint = np.ascontiguousarray(np.concatenate(
        [_weights_t(width, PHASH_SIDE), _weights_t(width, HASH_SIZE + 1)], axis=1))
    out = (joint, _weights(height, PHASH_SIDE), _weights(height, HASH_SIZE))
    for a in out:
        a.setflags(write=False)
    return out


def _clip8_inplace(acc: np.ndarray) -> np.ndarray:
    """``_clip8`` without temporaries (same float64 operations, so the same values)."""
    acc += float(1 << (_PRECISION_BITS - 1))
    acc /= float(1 << _PRECISION_BITS)
    np.floor(acc, out=acc)
    return np.clip(acc, 0.0, 255.0, out=acc)


def _resized_pair(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The 32x32 and 9x8 LANCZOS resizes of ``grey`` (uint8-valued float64), or None."""
    h, w = grey.shape
    joint = _joint_weights(w, h)
    if joint is None:
        small = lanczos_resize(grey, PHASH_SIDE, PHASH_SIDE)
        row = lanczos_resize(grey, HASH_SIZE + 1, HASH_SIZE)
        return None if small is None or row is None else (small, row)
    across, down_p, down_d = joint
    wide = _clip8_inplace(grey.astype(np.float64) @ across)  # (h, 41): both passes at once
    small = _clip8_inplace(down_p @ np.ascontiguousarray(wide[:, :PHASH_SIDE]))
    row = _clip8_inplace(down_d @ np.ascontiguousarray(wide[:, PHASH_SIDE:]))
    return small.astype(np.uint8), row.astype(np.uint8)


_BIT_WEIGHTS = np.array([1 << (63 - i) for i in range(64)], dtype=np.uint64)


def _bits_uint64(bits: np.ndarray) -> int:
    """``to_uint64`` for an 8x8 boolean array, without the byte round trip."""
    return int(_BIT_WEIGHTS[bits.reshape(-1)].sum(dtype=np.uint64))


def frame_hashes(grey: np.ndarray) -> tuple[int, int]:
    """(phash, dhash) of a uint8 grey ("L") frame, bit-identical to ``reference_hashes``.

    Both resizes share one horizontal product (``_joint_weights``); the DCT, median and
    comparisons are imagehash's own operations on the same uint8 pixels.
    """
    pair = _resized_pair(grey)
    if pair is None:
        return reference_hashes(Image.fromarray(grey))
    small, row = pair
    dct = scipy.fftpack.dct(scipy.fftpack.dct(small, axis=0), axis=1)[:HASH_SIZE, :HASH_SIZE]
    return _bits_uint64(dct > np.median(dct)), _bits_uint64(row[:, 1:] > row[:, :-1])


# PIL's "L" conversion (ITU-R 601-2 luma, Pillow's ``rgb2l``): L = (R * 19595 + G * 38470
# + B * 7471 + 0x8000) >> 16. Every term and the sum are integers below 2**24, so float32
# holds them exactly; scaling by 2**-16 is exact too and truncation is the shift.
_L_WEIGHTS = np.array([[19595, 38470, 7471, 0x8000]], dtype=np.float32)


def _transform_grey(rgb: np.ndarray) -> np.ndarray:
    acc = cv2.transform(rgb.astype(np.float32), _L_WEIGHTS)
    acc *= np.float32(1.0 / 65536.0)
    return acc.astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _transform_is_pillow() -> bool:
    """Whether ``_transform_grey`` still equals this Pillow's "L" (asked once, on random
    colours and the extremes): a Pillow that changes its formula gets Pillow itself."""
    rng = np.random.default_rng(0)
    probe = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    probe[0, :8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                    [255, 255, 0], [0, 255, 255], [255, 0, 255]]
    return np.array_equal(_transform_grey(probe), np.asarray(Image.fromarray(probe).convert("L")))


def pil_grey(rgb: np.ndarray) -> np.ndarray:
    """``np.asarray(Image.fromarray(rgb).convert("L"))``, bit for bit: one OpenCV transform
    for a uint8 RGB frame, a copy for a grey one, Pillow itself for anything else.

    Why: the analysis pass converts every frame the way imagehash does, and Pillow's
    round trip (array -> image -> array, two copies) costs ~0.2 ms per analysis frame;
    this is one OpenCV transform (~0.09 ms). Checked equal to Pillow 13 on all 2**24
    colours (one 4096 x 4096 image holding each once) and on decoded real frames;
    ``cv2.cvtColor`` is not (its 14-bit weights differ on ~22k colours). The result is
    always a new array (never a view of ``rgb``).
    """
    if rgb.dtype == np.uint8 and rgb.ndim == 2:
        return rgb.copy()  # already "L": Pillow's convert is a copy
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or not _transform_is_pillow():
        return np.asarray(Image.fromarray(rgb).convert("L")).copy()
    return _transform_grey(rgb)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Number of differing bits between uint64 hashes, element-wise (broadcasts).

    Vectorised popcount: ``np.bitwise_count`` (numpy >= 2.0), else a byte lookup table.
    """
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.uint8)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    as_bytes = np.ascontiguousarray(x)[..., None].view(np.uint8)
    return table[as_bytes].sum(axis=-1, dtype=np.uint8)
