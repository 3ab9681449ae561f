"""Rendering: plan -> RGB drawings, streamed as (frame, repeat count) pairs.

A drawing is rendered once, at the time of its first frame, and handed to the encoder
with the number of frames it is held, so held frames cost no rendering and are
identical pixels. Each shot's background texture is built once per shot placement and
only cropped per drawing. Nothing here keeps more than one shot's texture and two
frames alive, so memory does not grow with clip length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageDraw

from pipeline.synth.plan import Background, ClipPlan, ShapeObject, ShotSlot, ShotTemplate, Transition


def pan_span(pan: float, frames: int) -> int:
    """Extra texture pixels a pan needs along one axis over the shot."""
    return int(math.ceil(abs(pan) * max(frames - 1, 0))) + 1


def pan_offset(pan: float, frame: int, span: int) -> int:
    """Integer crop offset at a shot-local frame; negative pans start at the far end."""
    start = span - 1 if pan < 0 else 0
    return min(max(int(round(start + pan * frame)), 0), span - 1)


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

    def drawing(self, frame: int) -> np.ndarray:
        """The RGB image of the drawing whose first frame is ``frame`` (shot-local)."""
        pan = self.template.background.pan
        ox = pan_offset(pan[0], frame, self.spans[0])
        oy = pan_offset(pan[1], frame, self.spans[1])
        crop = np.ascontiguousarray(self.texture[oy : oy + self.height, ox : ox + self.width])
        image = Image.fromarray(crop)
        draw = ImageDraw.Draw(image)
        for obj, unit in zip(self.template.objects, self.units):
            draw.polygon(object_polygon(obj, unit, frame), fill=obj.fill, outline=obj.outline, width=obj.outline_px)
        return np.asarray(image)

    def drawings(self) -> Iterator[tuple[np.ndarray, int]]:
        """Every drawing of the shot with its hold, in order."""
        for start, hold in self.template.drawing_starts():
            yield self.drawing(start), hold


def dissolve_frames(before: np.ndarray, after: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """Cross-dissolve k = 1..count with weight a = k / (count + 1) on ``after``."""
    a0, a1 = before.astype(np.float32), after.astype(np.float32)
    for k in range(1, count + 1):
        a = k / (count + 1)
        yield np.clip(np.rint((1 - a) * a0 + a * a1), 0, 255).astype(np.uint8)


def clip_frames(clip: ClipPlan, width: int, height: int) -> Iterator[tuple[np.ndarray, int]]:
    """Stream a clip as (RGB frame, number of consecutive frames showing it).

    A dissolve needs the next shot's first drawing, so the next shot's renderer is
    built early and reused when that shot starts.
    """
    last: np.ndarray | None = None
    pending: ShotRenderer | None = None
    for i, item in enumerate(clip.items):
        if isinstance(item, ShotSlot):
            renderer = pending or ShotRenderer(item.template, width, height)
            pending = None
            for image, hold in renderer.drawings():
                last = image
                yield image, hold
        elif isinstance(item, Transition) and item.kind == "flash":
            yield np.full((height, width, 3), item.level, np.uint8), 1
        else:
            nxt = clip.items[i + 1]
            assert isinstance(nxt, ShotSlot) and last is not None, "a dissolve sits between two shots"
            pending = ShotRenderer(nxt.template, width, height)
            for image in dissolve_frames(last, pending.drawing(0), item.frames):
                yield image, 1
