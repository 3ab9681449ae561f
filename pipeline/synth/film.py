"""What an old film print and its transfer add: flicker, gate weave, dust, conversion repeats.

The options of :class:`FilmSpec`, a :class:`SynthSpec` with four more fields (all off by
default, and then the output is byte for byte the plain spec's):

- ``flicker``: the largest jump of a frame's mean level; a ramp and a bump add unevenness;
- ``weave``: each frame shifts as a whole at random, clipped to +-``weave`` px;
- ``dust``: on average ``dust`` specks a frame (Poisson), 1-3 px, one frame each;
- ``repeat_every``: one film frame shown twice per period, one dropped (:func:`film_frames`).

They run after grain, before bars and encoder (dust, weave, flicker, then repeats), each
from its own generator, so turning one on changes no other. Truth: pixels change, never
``drawing`` or ``hold``, but a converted clip's rows are those of the film frames shown;
any option adds ``FILM_COLUMNS`` (``repeat``, ``film_frame``). Exact rules: docs/NOTES.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from pydantic import Field, field_validator

from pipeline.core.config import SynthSpec
from pipeline.synth.render import subpixel_crop

FLICKER_STREAM = 0x6B  # generator keys: np.random.default_rng([seed, STREAM, clip])
WEAVE_STREAM = 0x6C
DUST_STREAM = 0x6D
DUST_SIZES = (1, 2, 3)  # px: a speck's side
DUST_DARK, DUST_BRIGHT = (0, 50), (205, 256)  # grey level ranges of a dark and a bright speck
FILM_COLUMNS = {"repeat": bool, "film_frame": np.float64}

Frames = Iterator[tuple[np.ndarray, int]]  # (RGB picture, consecutive frames showing it)


class FilmSpec(SynthSpec):
    """A synthetic set on old film: ``SynthSpec`` plus the four film options (module doc).

    ``repeat_every`` N (0: off, else >= 2) applies to clips ``repeat_from_clip`` on, so one
    set can hold converted and clean clips side by side.
    """

    flicker: float = Field(0.0, ge=0, le=128)  # grey levels: largest mean-level jump between frames
    weave: float = Field(0.0, ge=0, le=16)  # px: largest whole-frame shift per axis
    dust: float = Field(0.0, ge=0, le=100)  # specks per frame, on average
    repeat_every: int = Field(0, ge=0, le=100)  # a conversion repeat every N frames (0: off)
    repeat_from_clip: int = Field(0, ge=0)  # the first clip converted

    @field_validator("repeat_every")
    @classmethod
    def _a_period(cls, value: int) -> int:
        if value == 1:
            raise ValueError("1 would repeat every frame: use 0 (off) or a period >= 2")
        return value


def film_of(spec: SynthSpec) -> FilmSpec | None:
    """The spec's film options when any is on, else None (a plain or all-off spec)."""
    if not isinstance(spec, FilmSpec):
        return None
    on = spec.flicker > 0 or spec.weave > 0 or spec.dust > 0 or spec.repeat_every > 0
    return spec if on else None


def converts(film: FilmSpec | None, clip: int) -> int:
    """The clip's conversion period (0: shown as filmed)."""
    return film.repeat_every if film is not None and clip >= film.repeat_from_clip else 0


def film_frames(frames: int, every: int) -> np.ndarray:
    """The film frame each of ``frames`` output frames shows, for a repeat every ``every``.

    Frame i of period k (i = k N + r) shows film frame i - 1 for k >= 1 and r < N // 2,
    else i: so i % N == 0 repeats i - 1, film frame k N + N // 2 - 1 is dropped, and the
    output never runs ahead of the film (every index stays inside the clip).
    """
    index = np.arange(frames)
    if every <= 0:
        return index
    behind = (index >= every) & (index % every < every // 2)
    return index - behind


def flicker_field(rng: np.random.Generator, height: int, width: int, jump: float) -> np.ndarray:
    """One frame's brightness offset, float32 H x W: mean level plus a ramp and a centre bump."""
    level, ramp, bump = rng.uniform(-0.5, 0.5) * jump, rng.uniform(-0.25, 0.25) * jump, rng.uniform(-0.25, 0.25) * jump
    angle = rng.uniform(0, 2 * math.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (x - (width - 1) / 2) / max(width / 2, 1), (y - (height - 1) / 2) / max(height / 2, 1)
    across = np.clip(u * math.cos(angle) + v * math.sin(angle), -1, 1)
    centre = np.exp(-2 * (u * u + v * v))
    field = level + ramp * (across - across.mean()) + bump * (centre - centre.mean())
    return field.astype(np.float32)


def brightened(rgb: np.ndarray, field: np.ndarray) -> np.ndarray:
    """The picture with the offset added to every channel alike, rounded, clipped to 0..255."""
    offset = np.rint(field).astype(np.int16)[..., None]
    return np.clip(rgb.astype(np.int16) + offset, 0, 255).astype(np.uint8)


def weave_shift(rng: np.random.Generator, most: float) -> tuple[float, float]:
    """One frame's (dx, dy) in px: normal, sd ``most`` / 2, clipped to +-``most``."""
    dx, dy = np.clip(rng.normal(0.0, most / 2, 2), -most, most)
    return float(dx), float(dy)


def shifted(rgb: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The picture moved by (dx, dy) px (right, down), same size, edges replicated."""
    pad = int(math.ceil(max(abs(dx), abs(dy)))) + 1
    padded = np.pad(rgb, ((pad, pad + 1), (pad, pad + 1), (0, 0)), mode="edge")
    height, width = rgb.shape[:2]
    return subpixel_crop(padded, pad - dx, pad - dy, width, height)


def dusted(rgb: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """The picture with Poisson(``rate``) dark or bright specks (module doc)."""
    out = rgb.copy()
    height, width = rgb.shape[:2]
    for _ in range(int(rng.poisson(rate))):
        side = int(rng.choice(DUST_SIZES))
        y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        low, high = DUST_DARK if rng.random() < 0.5 else DUST_BRIGHT
        out[y : y + side, x : x + side] = int(rng.integers(low, high))
    return out


def filmed(frames: Frames, film: FilmSpec, seed: int, clip: int) -> Frames:
    """Every film frame with its own dust, weave and flicker (those that are on): a
    drawing held n frames becomes n different frames."""
    if film.flicker <= 0 and film.weave <= 0 and film.dust <= 0:
        yield from frames
        return
    rngs = {key: np.random.default_rng([seed, key, clip]) for key in (FLICKER_STREAM, WEAVE_STREAM, DUST_STREAM)}
    for image, count in frames:
        for _ in range(count):
            yield film_frame_noise(image, film, rngs), 1


def film_frame_noise(image: np.ndarray, film: FilmSpec, rngs: dict[int, np.random.Generator]) -> np.ndarray:
    """One film frame: dust, then weave, then flicker (each only when on)."""
    if film.dust > 0:
        image = dusted(image, rngs[DUST_STREAM], film.dust)
    if film.weave > 0:
        image = shifted(image, *weave_shift(rngs[WEAVE_STREAM], film.weave))
    if film.flicker > 0:
        image = brightened(image, flicker_field(rngs[FLICKER_STREAM], image.shape[0], image.shape[1], film.flicker))
    return image


def converted(frames: Frames, shown: np.ndarray) -> Frames:
    """The film frames as the conversion shows them: film frame j ``count(shown == j)``
    times (0: dropped, 2: repeated, the same array both times)."""
    times = np.bincount(shown, minlength=int(shown.max()) + 1 if len(shown) else 0)
    start = 0
    for image, count in frames:
        out = int(times[start : start + count].sum())
        start += count
        if out:
            yield image, out


def film_columns(cols: dict[str, np.ndarray], every: int) -> dict[str, np.ndarray]:
    """One clip's truth columns as the conversion shows them, plus ``FILM_COLUMNS``."""
    n = len(cols["shot"])
    shown = film_frames(n, every)
    out = {key: value[shown] for key, value in cols.items()}
    # a cut start or look-alike cut survives on the next frame shown when its frame is dropped
    for key in ("is_cut_start", "look_alike"):
        seen = np.r_[0, np.cumsum(cols[key])]  # seen[j]: flags among film frames < j
        out[key] = np.r_[cols[key][shown[0]], seen[shown[1:] + 1] - seen[shown[:-1] + 1] > 0]
    out["hold"] = recounted_holds(out["drawing"], cols["hold"][shown], every)
    out["repeat"] = np.r_[False, shown[1:] == shown[:-1]]
    out["film_frame"] = shown.astype(np.float64)
    return out


def recounted_holds(drawing: np.ndarray, hold: np.ndarray, every: int) -> np.ndarray:
    """Frames each drawing is shown once converted (0 on transition frames, at most 127);
    unconverted, the holds as planned (a shot's last drawing may have been cut short)."""
    if every <= 0:
        return hold
    _, inverse, counts = np.unique(drawing, return_inverse=True, return_counts=True)
    return np.where(drawing >= 0, np.minimum(counts[inverse], 127), 0)
