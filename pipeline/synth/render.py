"""Rendering: plan -> RGB drawings, streamed as (frame, repeat count) pairs.

A drawing is rendered once, at the time of its first frame, and handed to the encoder
with the number of frames it is held: held frames cost no rendering and are identical
pixels (grain, added later in ``pipeline.synth.effects``, makes them differ). A shot
placement builds its background texture once and crops it per drawing; no more than
one shot's texture and two frames are alive, so memory does not grow with clip length.

Two kinds of shot are rendered frame by frame: a pan *on ones* composites its held cels
over the background cropped at each frame's exact sub-pixel offset (bilinear between
the four neighbouring integer crops); a *slow* shot draws its objects at
``SUPERSAMPLE`` times the size and box-averages them down, over a still background.
Why: docs/NOTES.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageDraw

from pipeline.synth.plan import (
    Background,
    ClipPlan,
    ShapeObject,
    ShotSlot,
    ShotTemplate,
    Transition,
)

SUPERSAMPLE = 4  # a slow shot's objects are drawn this many times larger, then averaged down


def pan_span(pan: float, frames: int) -> int:
    """Extra texture pixels a pan needs along one axis over the shot."""
    return int(math.ceil(abs(pan) * max(frames - 1, 0))) + 1


def pan_offset(pan: float, frame: int, span: int) -> int:
    """Integer crop offset at a shot-local frame; negative pans start at the far end."""
    start = span - 1 if pan < 0 else 0
    return min(max(int(round(start + pan * frame)), 0), span - 1)


def exact_pan_offset(pan: float, frame: int, span: int) -> float:
    """The crop offset of a pan on ones: ``pan_offset`` before rounding."""
    start = span - 1 if pan < 0 else 0
    return min(max(start + pan * frame, 0.0), float(span - 1))


def subpixel_crop(texture: np.ndarray, ox: float, oy: float, width: int, height: int) -> np.ndarray:
    """The ``height`` x ``width`` window of ``texture`` at a fractional offset, bilinear.

    The texture needs one spare row and column past the furthest window (the renderer
    pads it), so a window at an integer offset is an exact crop.
    """
    ix, iy = int(math.floor(ox)), int(math.floor(oy))
    fx, fy = np.float32(ox - ix), np.float32(oy - iy)
    win = texture[iy : iy + height + 1, ix : ix + width + 1].astype(np.float32)
    top = win[:-1, :-1] * (1 - fx) + win[:-1, 1:] * fx
    bottom = win[1:, :-1] * (1 - fx) + win[1:, 1:] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def smooth_noise(rng: np.random.Generator, width: int, height: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random lattice upsampled bicubically."""
    gw, gh = int(width / cell) + 3, int(height / cell) + 3
    lattice = Image.fromarray(rng.random((gh, gw), dtype=np.float32), mode="F")
    noise = np.asarray(lattice.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    lo, hi = float(noise.min()), float(noise.max())
    return (noise - lo) / max(hi - lo, 1e-6)


def pattern_field(bg: Background, width: int, height: int) -> np.ndarray:
    """Stripes or dots in [0, 1] (zeros for the plain-noise pattern)."""
    y, x = np.ogrid[0:height, 0:width]
    if bg.pattern == "stripes":
        u = (x * math.cos(bg.angle) + y * math.sin(bg.angle)) / bg.period
        return np.clip(0.5 + 1.5 * np.sin(2 * math.pi * u), 0.0, 1.0).astype(np.float32)
    if bg.pattern == "dots":
        dx = (x % bg.period) - bg.period / 2
        dy = (y % bg.period) - bg.period / 2
        return ((dx * dx + dy * dy) < (0.25 * bg.period) ** 2).astype(np.float32)
    return np.zeros((height, width), np.float32)


def make_texture(template: ShotTemplate, width: int, height: int) -> np.ndarray:
    """The shot's background texture: frame size plus the pan's travel, palette-tinted."""
    bg, pal = template.background, template.palette
    tw = width + pan_span(bg.pan[0], template.frames) - 1
    th = height + pan_span(bg.pan[1], template.frames) - 1
    rng = np.random.default_rng(bg.seed)
    value = 0.65 * smooth_noise(rng, tw, th, bg.noise_cell) + 0.35 * pattern_field(bg, tw, th)
    dark = np.asarray(pal.bg_dark, np.float32)
    light = np.asarray(pal.bg_light, np.float32)
    rgb = dark + value[..., None] * (light - dark)
    return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def object_polygon(obj: ShapeObject, unit: np.ndarray, frame: int) -> list[tuple[float, float]]:
    """The shape's outline at a shot-local frame: orbit position, spin and pulse."""
    a = obj.omega * frame + obj.phase
    cx = obj.center[0] + obj.orbit[0] * math.cos(a)
    cy = obj.center[1] + obj.orbit[1] * math.sin(a)
    theta = obj.angle0 + obj.spin * frame
    scale = obj.size * (1.0 + obj.pulse * math.sin(obj.pulse_omega * frame + obj.pulse_phase))
    c, s = math.cos(theta) * scale, math.sin(theta) * scale
    rot = np.array([[c, s], [-s, c]])
    pts = unit @ rot + (cx, cy)
    return [(float(px), float(py)) for px, py in pts]


class ShotRenderer:
    """Renders drawings of one shot; built once per shot placement (texture cached)."""

    def __init__(self, template: ShotTemplate, width: int, height: int) -> None:
        self.template = template
        self.width, self.height = width, height
        self.texture = make_texture(template, width, height)
        self.spans = (
            pan_span(template.background.pan[0], template.frames),
            pan_span(template.background.pan[1], template.frames),
        )
        self.units = [np.asarray(obj.vertices, np.float64) for obj in template.objects]
        if template.pan_ones:
            self.texture = np.pad(self.texture, ((0, 1), (0, 1), (0, 0)), mode="edge")

    def background(self, frame: int) -> np.ndarray:
        """The background crop at a shot-local frame (sub-pixel when panning on ones)."""
        pan = self.template.background.pan
        if self.template.pan_ones:
            ox = exact_pan_offset(pan[0], frame, self.spans[0])
            oy = exact_pan_offset(pan[1], frame, self.spans[1])
            return subpixel_crop(self.texture, ox, oy, self.width, self.height)
        ox = pan_offset(pan[0], frame, self.spans[0])
        oy = pan_offset(pan[1], frame, self.spans[1])
        return np.ascontiguousarray(self.texture[oy : oy + self.height, ox : ox + self.width])

    def drawing(self, frame: int, cel: int | None = None) -> np.ndarray:
        """The RGB picture at shot-local ``frame``: its background with the objects of
        the cel first shown at ``cel`` (default ``frame``)."""
        cel = frame if cel is None else cel
        if self.template.timing == "slow":
            return self._supersampled(self.background(frame), cel)
        image = Image.fromarray(self.background(frame))
        draw = ImageDraw.Draw(image)
        for obj, unit in zip(self.template.objects, self.units):
            draw.polygon(object_polygon(obj, unit, cel), fill=obj.fill, outline=obj.outline, width=obj.outline_px)
        return np.asarray(image)

    def _supersampled(self, background: np.ndarray, cel: int) -> np.ndarray:
        """Objects drawn at SUPERSAMPLE x over the nearest-upscaled background, box-averaged
        down: anti-aliased edges, and a background whose pixels come back unchanged."""
        k = SUPERSAMPLE
        big = Image.fromarray(np.repeat(np.repeat(background, k, axis=0), k, axis=1))
        draw = ImageDraw.Draw(big)
        for obj, unit in zip(self.template.objects, self.units):
            # pixel centres: x in the small image covers [k x, k x + k) in the big one
            pts = [(k * x + (k - 1) / 2, k * y + (k - 1) / 2) for x, y in object_polygon(obj, unit, cel)]
            draw.polygon(pts, fill=obj.fill, outline=obj.outline, width=obj.outline_px * k)
        # exact integer box mean (rounded half up): rows first, then columns, in uint16
        rows = np.asarray(big).reshape(self.height, k, self.width * k * 3).sum(axis=1, dtype=np.uint16)
        total = rows.reshape(self.height, self.width, k, 3).sum(axis=2, dtype=np.uint16)
        return ((total + k * k // 2) // (k * k)).astype(np.uint8)

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        """The shot as (picture, frames showing it): one per drawing with its hold, or,
        when the camera pans on ones, every frame with the cel it holds."""
        for start, hold in self.template.drawing_starts():
            if not self.template.pan_ones:
                yield self.drawing(start), hold
                continue
            for k in range(hold):
                yield self.drawing(start + k, start), 1


def dissolve_frames(before: np.ndarray, after: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """Cross-dissolve k = 1..count with weight a = k / (count + 1) on ``after``."""
    a0, a1 = before.astype(np.float32), after.astype(np.float32)
    for k in range(1, count + 1):
        a = k / (count + 1)
        yield np.clip(np.rint((1 - a) * a0 + a * a1), 0, 255).astype(np.uint8)


def fade_frames(before: np.ndarray, after: np.ndarray, fade: Transition) -> Iterator[np.ndarray]:
    """Fade out to the uniform ``fade.level`` (the last fade-out frame is the pure colour),
    then in from it (see ``Transition``)."""
    a0, a1 = before.astype(np.float32), after.astype(np.float32)
    level = np.float32(fade.level)
    n_out, n_in = fade.fade_out, fade.frames - fade.fade_out
    for k in range(1, n_out + 1):
        a = k / n_out
        yield np.clip(np.rint((1 - a) * a0 + a * level), 0, 255).astype(np.uint8)
    for k in range(1, n_in + 1):
        a = k / (n_in + 1)
        yield np.clip(np.rint((1 - a) * level + a * a1), 0, 255).astype(np.uint8)


def clip_frames(clip: ClipPlan, width: int, height: int) -> Iterator[tuple[np.ndarray, int]]:
    """Stream a clip as (RGB frame, number of consecutive frames showing it).

    A dissolve or a fade needs the next shot's first drawing, so the next shot's
    renderer is built early and reused when that shot starts.
    """
    last: np.ndarray | None = None
    pending: ShotRenderer | None = None
    for i, item in enumerate(clip.items):
        if isinstance(item, ShotSlot):
            renderer = pending or ShotRenderer(item.template, width, height)
            pending = None
            for image, hold in renderer.frames():
                last = image
                yield image, hold
        elif isinstance(item, Transition) and item.kind == "flash":
            yield np.full((height, width, 3), item.level, np.uint8), 1
        else:
            nxt = clip.items[i + 1]
            assert isinstance(nxt, ShotSlot) and last is not None, f"a {item.kind} sits between two shots"
            pending = ShotRenderer(nxt.template, width, height)
            first = pending.drawing(0)
            if item.kind == "dissolve":
                blend = dissolve_frames(last, first, item.frames)
            else:
                blend = fade_frames(last, first, item)
            for image in blend:
                yield image, 1
