"""Planning: turn a SynthSpec into an explicit, frozen description of every clip.

Everything random is decided here, from one seeded generator, before any pixel is
drawn. The renderer and the truth table both read the same plan, so the ground truth
cannot drift from what was rendered, and a repeated shot is the same ``ShotTemplate``
object rendered twice, hence pixel-identical before encoding.

Vocabulary: a *template* is a shot's full description (length, timing, background,
objects); a *slot* is one placement of a template in a clip, with its own global shot
id. A repeat is a slot whose template was placed before. What real transfers add
(``pan_ones_prob``, ``similar_cut_prob``, ``fade_prob``, ``slow_prob``) comes from a
second generator seeded from the same seed, drawn from only when its feature is on: with
all four at zero the plan, and so the video bytes, are what they were before these
features existed.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.core.config import SynthSpec

HUE_SECTORS = 12
MIN_SECTOR_GAP = 3  # consecutive shots are >= 90 degrees apart in hue, so cuts are obvious
TIMINGS = ("ones", "twos", "threes", "mixed")
TIMING_WEIGHTS = (0.2, 0.35, 0.2, 0.25)
MEAN_HOLD = {"ones": 1.0, "twos": 2.0, "threes": 3.0, "mixed": 2.5, "static": 1.0, "slow": 1.0}
SHAPES = ("ellipse", "rect", "star", "polygon")
DISSOLVE_FRAMES = (4, 8)
FADE_FRAMES = (4, 12)  # each half of a fade (out, then in)
SLOW_SPEED = (0.05, 0.5)  # fastest outline point of a slow shot, pixels per frame
MIN_PICTURE = 32  # the picture inside letterbox/pillarbox bars keeps at least this, each way
EXTRA_STREAM = 0x12  # the second generator's key: np.random.default_rng([seed, EXTRA_STREAM])

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """Colours of one shot: background ramp, object fills, outline; keyed by hue sector."""

    sector: int
    bg_dark: RGB
    bg_light: RGB
    fills: tuple[RGB, ...]
    outline: RGB


@dataclass(frozen=True)
class Background:
    """A procedural texture (seeded) larger than the frame, cropped at a panning offset.

    ``pan`` is in pixels per frame; offsets are rounded to integers, so the background
    is an exact crop of one texture and a pan of zero is pixel-still.
    """

    seed: int
    pattern: str  # "stripes" | "dots" | "noise"
    period: float  # pattern period, pixels
    angle: float  # stripe direction, radians
    noise_cell: float  # size of a noise lattice cell, pixels
    pan: tuple[float, float]


@dataclass(frozen=True)
class ShapeObject:
    """One outlined flat-colour shape moving on an elliptic orbit while it spins and pulses.

    An orbit (rather than a straight line) keeps fast objects on screen for the whole
    shot and never stops them: speed stays between ``k`` and 1 times the peak, so every
    new drawing of a moving shot really differs from the previous one.
    Positions are functions of the shot-local frame index ``f``.
    """

    vertices: tuple[tuple[float, float], ...]  # unit-radius outline, counter-clockwise
    size: float  # radius in pixels
    fill: RGB
    outline: RGB
    outline_px: int
    center: tuple[float, float]
    orbit: tuple[float, float]  # semi-axes in pixels
    omega: float  # orbit angular speed, radians per frame (signed)
    phase: float
    angle0: float
    spin: float  # radians per frame
    pulse: float  # relative scale amplitude
    pulse_omega: float
    pulse_phase: float


@dataclass(frozen=True)
class ShotTemplate:
    """A shot's full description. ``holds`` lists how many frames each drawing is shown
    (sum = ``frames``); a static shot has a single drawing and nothing moves."""

    key: int
    frames: int
    timing: str  # one of TIMINGS, "static" or "slow" (sub-pixel motion on ones, no pan)
    holds: tuple[int, ...]
    palette: Palette
    background: Background
    objects: tuple[ShapeObject, ...]
    pan_ones: bool = False  # the background pans every frame (sub-pixel), cels keep ``holds``

    @property
    def static(self) -> bool:
        return self.timing == "static"

    @property
    def camera(self) -> str:
        """The truth's ``camera``: "" (still), "pan" (moves with the drawings) or "pan_ones"."""
        if self.pan_ones:
            return "pan_ones"
        return "pan" if self.background.pan != (0.0, 0.0) else ""

    def drawing_starts(self) -> list[tuple[int, int]]:
        """(first local frame, hold) of every drawing: each is rendered at its first frame."""
        starts = np.concatenate([[0], np.cumsum(self.holds)[:-1]])
        return [(int(s), int(h)) for s, h in zip(starts, self.holds)]


@dataclass(frozen=True)
class ShotSlot:
    """A template placed in a clip. ``repeat_of`` is the root original's shot id or -1."""

    shot_id: int
    template: ShotTemplate
    repeat_of: int
    look_alike: bool = False  # a hard cut into a palette chosen to look like the previous shot


@dataclass(frozen=True)
class Transition:
    """A gradual transition between the neighbouring shots of a clip.

    ``dissolve``: frames k = 1..n are (1 - a) * last frame before + a * first frame
    after, a = k / (n + 1); both end frames are held still during it. ``flash``: one
    uniform frame of grey level ``level`` (0 or 255). ``fade``: the first ``fade_out``
    frames go from the last frame before to the uniform ``level`` (a = k / fade_out on
    the colour, so the last of them is the pure colour), the other ``frames -
    fade_out`` come back from it to the first frame after (a = k / (n_in + 1) on that
    frame); both end frames are held still, as in a dissolve.
    """

    kind: str  # "dissolve" | "flash" | "fade"
    frames: int
    level: int = 255
    fade_out: int = 0


@dataclass(frozen=True)
class ClipPlan:
    """The items of one clip in order; shots and transitions, starting with a shot."""

    items: tuple[ShotSlot | Transition, ...]

    @property
    def frames(self) -> int:
        return sum(_item_frames(item) for item in self.items)


@dataclass(frozen=True)
class SetPlan:
    spec: SynthSpec
    clips: tuple[ClipPlan, ...]


def picture_size(spec: SynthSpec) -> tuple[int, int]:
    """(width, height) of the picture inside the letterbox/pillarbox bars.

    Raises ValueError naming the field when the bars leave less than MIN_PICTURE.
    """
    width, height = spec.width - 2 * spec.pillarbox, spec.height - 2 * spec.letterbox
    if width < MIN_PICTURE:
        raise ValueError(f"pillarbox: {spec.pillarbox} px bars leave a {width} px wide picture, need >= {MIN_PICTURE}")
    if height < MIN_PICTURE:
        raise ValueError(f"letterbox: {spec.letterbox} px bars leave a {height} px high picture, need >= {MIN_PICTURE}")
    return width, height


def _item_frames(item: ShotSlot | Transition) -> int:
    return item.template.frames if isinstance(item, ShotSlot) else item.frames


def plan_set(spec: SynthSpec) -> SetPlan:
    """Plan every clip of the set; deterministic for the spec."""
    planner = _Planner(spec)
    return SetPlan(spec=spec, clips=tuple(planner.plan_clip(c) for c in range(spec.clips)))


def sector_gap(a: int, b: int) -> int:
    """Circular distance between two hue sectors."""
    d = abs(a - b) % HUE_SECTORS
    return min(d, HUE_SECTORS - d)


@dataclass
class _Placed:
    """Bookkeeping for a template already placed: its root shot id and its clip."""

    template: ShotTemplate
    root_shot: int
    clip: int


@dataclass
class _Planner:
    """Mutable planning state; walks clips in order so ids and repeats are sequential.

    Guarantees (so the ground-truth tests always see every feature): the first new
    templates of the set cycle through every timing (ones, twos, threes, mixed) and,
    when ``static_prob > 0``, one static shot, in a seeded order (then one slow shot
    when ``slow_prob > 0``); with two or more clips and ``repeat_prob > 0``, clip 1
    opens with a repeat of a clip-0 shot (reused footage across videos, like an opening
    or recap). When ``similar_cut_prob > 0`` the first clip opens with two static shots
    cut hard into each other with look-alike palettes (the cut a colour histogram
    misses); when ``pan_ones_prob > 0`` the first panning shot held on twos, threes or
    mixed pans on ones.
    """

    spec: SynthSpec
    rng: np.random.Generator = field(init=False)
    extra: np.random.Generator = field(init=False)  # only drawn from by the features that are on
    placed: list[_Placed] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    next_shot: int = 0
    width: int = field(init=False)
    height: int = field(init=False)
    pending_pan_ones: bool = field(init=False)
    pending_similar: bool = field(init=False)  # the forced static -> static look-alike cut is still to come
    anchor: ShotSlot | None = None  # the static shot that opens that forced pair

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.spec.seed)
        self.extra = np.random.default_rng([self.spec.seed, EXTRA_STREAM])
        self.width, self.height = picture_size(self.spec)
        forced = list(TIMINGS) + (["static"] if self.spec.static_prob > 0 else [])
        self.forced = [forced[i] for i in self.rng.permutation(len(forced))]
        if self.spec.slow_prob > 0:
            self.forced.append("slow")
        self.pending_pan_ones = self.spec.pan_ones_prob > 0
        self.pending_similar = self.spec.similar_cut_prob > 0

    def plan_clip(self, clip: int) -> ClipPlan:
        """Fill one clip with shots (and optional transitions) up to its frame count."""
        total, items, used = self.spec.clip_frames, [], 0
        prev: ShotSlot | None = None
        while used < total:
            hard_cut = bool(items) and isinstance(items[-1], ShotSlot)
            slot = self._next_slot(clip, total - used, prev, hard_cut)
            items.append(slot)
            used += slot.template.frames
            prev = slot
            if slot is self.anchor:
                continue  # the forced look-alike partner follows by a hard cut
            transition = self._maybe_transition(total - used) or self._maybe_fade(total - used)
            if transition is not None:
                items.append(transition)
                used += transition.frames
        return ClipPlan(items=tuple(items))

    def _next_slot(self, clip: int, remaining: int, prev: ShotSlot | None, hard_cut: bool) -> ShotSlot:
        """A repeat when chosen and possible, else a new template."""
        if self.anchor is not None and prev is self.anchor:
            self.anchor, self.pending_similar = None, False
            return self._new_slot(clip, self._new_length(remaining), prev, timing="static", look_alike=True)
        forced_repeat = clip == 1 and prev is None and self.spec.repeat_prob > 0
        if forced_repeat or self.rng.random() < self.spec.repeat_prob:
            source = self._pick_repeat(clip, remaining, prev, forced_repeat)
            if source is not None:
                return self._slot(source.template, source.root_shot)
        length = self._new_length(remaining)
        if self.pending_similar and self.anchor is None and remaining >= 2 * self.spec.min_shot_frames:
            slot = self._new_slot(clip, min(length, remaining - self.spec.min_shot_frames), prev, timing="static",
                                  look_alike=self._look_alike(prev, hard_cut))
            self.anchor = slot
            return slot
        return self._new_slot(clip, length, prev, look_alike=self._look_alike(prev, hard_cut))

    def _look_alike(self, prev: ShotSlot | None, hard_cut: bool) -> bool:
        """With ``similar_cut_prob``, a new shot after a hard cut copies the previous look."""
        if prev is None or not hard_cut or self.spec.similar_cut_prob <= 0:
            return False
        return bool(self.extra.random() < self.spec.similar_cut_prob)

    def _new_slot(self, clip: int, frames: int, prev: ShotSlot | None, timing: str | None = None,
                  look_alike: bool = False) -> ShotSlot:
        """Place a fresh template (recorded for later repeats)."""
        template = self._new_template(frames, prev, timing, look_alike)
        self.placed.append(_Placed(template, self.next_shot, clip))
        return self._slot(template, -1, look_alike)

    def _slot(self, template: ShotTemplate, repeat_of: int, look_alike: bool = False) -> ShotSlot:
        slot = ShotSlot(shot_id=self.next_shot, template=template, repeat_of=repeat_of, look_alike=look_alike)
        self.next_shot += 1
        return slot

    def _pick_repeat(self, clip: int, remaining: int, prev: ShotSlot | None, forced: bool) -> _Placed | None:
        """An earlier template that fits the remaining frames whole and would not make an
        invisible cut (same template or too-close palette right after the previous shot).
        The forced cross-clip repeat draws from clip 0, preferring moving shots."""
        min_f = self.spec.min_shot_frames
        pool = [p for p in self.placed if p.template.frames <= remaining]
        if forced:
            pool = [p for p in pool if p.clip == 0]
            pool = [p for p in pool if not p.template.static] or pool
        else:
            pool = [p for p in pool if not 0 < remaining - p.template.frames < min_f]
        if prev is not None:
            key, sector = prev.template.key, prev.template.palette.sector
            pool = [
                p for p in pool
                if p.template.key != key and sector_gap(p.template.palette.sector, sector) >= MIN_SECTOR_GAP
            ]
        if not pool:
            return None
        return pool[int(self.rng.integers(len(pool)))]

    def _new_length(self, remaining: int) -> int:
        """A random length, leaving either nothing or at least a minimum shot behind."""
        min_f, max_f = self.spec.min_shot_frames, self.spec.max_shot_frames
        if remaining <= max_f:
            return remaining
        n = int(self.rng.integers(min_f, max_f + 1))
        if remaining - n < min_f:
            n = max(1, remaining - min_f)
        return n

    def _maybe_transition(self, remaining: int) -> Transition | None:
        """With ``transition_prob``, a dissolve or a flash, if a full shot still fits after."""
        if remaining <= 0 or self.rng.random() >= self.spec.transition_prob:
            return None
        if self.rng.random() < 0.5:
            t = Transition("dissolve", int(self.rng.integers(DISSOLVE_FRAMES[0], DISSOLVE_FRAMES[1] + 1)))
        else:
            t = Transition("flash", 1, level=int(self.rng.choice([0, 255])))
        return t if remaining - t.frames >= self.spec.min_shot_frames else None

    def _maybe_fade(self, remaining: int) -> Transition | None:
        """With ``fade_prob``, a fade out to black or white and back in, if a full shot fits after."""
        if self.spec.fade_prob <= 0 or remaining <= 0 or self.extra.random() >= self.spec.fade_prob:
            return None
        lo, hi = FADE_FRAMES
        n_out, n_in = int(self.extra.integers(lo, hi + 1)), int(self.extra.integers(lo, hi + 1))
        fade = Transition("fade", n_out + n_in, level=int(self.extra.choice([0, 255])), fade_out=n_out)
        return fade if remaining - fade.frames >= self.spec.min_shot_frames else None

    def _new_timing(self) -> str:
        if self.forced:
            return self.forced.pop(0)
        if self.rng.random() < self.spec.static_prob:
            return "static"
        if self.spec.slow_prob > 0 and self.extra.random() < self.spec.slow_prob:
            return "slow"
        return str(self.rng.choice(TIMINGS, p=TIMING_WEIGHTS))

    def _new_template(self, frames: int, prev: ShotSlot | None, timing: str | None = None,
                      look_alike: bool = False) -> ShotTemplate:
        """A fresh shot: timing, palette far from the previous shot's (or, for a
        look-alike cut, copied from it), background, objects."""
        timing = timing or self._new_timing()
        if look_alike and prev is not None:
            palette = look_alike_palette(prev.template.palette, self.extra)
            pattern = prev.template.background.pattern
        else:
            prev_sector = prev.template.palette.sector if prev is not None else None
            palette, pattern = make_palette(self._pick_sector(prev_sector), self.rng), None
        static, slow = timing == "static", timing == "slow"
        mean_hold = MEAN_HOLD[timing]
        n_objects = int(self.rng.integers(1, 5))
        objects = tuple(self._new_object(palette, i, static, mean_hold, slow) for i in range(n_objects))
        holds = make_holds(timing, frames, self.rng)
        background = self._new_background(static or slow, mean_hold, pattern)
        return ShotTemplate(
            key=len(self.placed),
            frames=frames,
            timing=timing,
            holds=holds,
            palette=palette,
            background=background,
            objects=objects,
            pan_ones=self._pans_on_ones(timing, background),
        )

    def _pans_on_ones(self, timing: str, background: Background) -> bool:
        """With ``pan_ones_prob``, a panning shot's camera moves every frame."""
        if self.spec.pan_ones_prob <= 0 or background.pan == (0.0, 0.0):
            return False
        held = timing in ("twos", "threes", "mixed")
        chosen = (self.pending_pan_ones and held) or bool(self.extra.random() < self.spec.pan_ones_prob)
        if chosen and held:
            self.pending_pan_ones = False
        return chosen

    def _pick_sector(self, prev_sector: int | None) -> int:
        choices = [s for s in range(HUE_SECTORS) if prev_sector is None or sector_gap(s, prev_sector) >= MIN_SECTOR_GAP]
        return int(self.rng.choice(choices))

    def _new_background(self, still: bool, mean_hold: float, pattern: str | None = None) -> Background:
        """Texture parameters and a pan that is zero for still (static, slow) shots and
        ~30% of others; ``pattern`` forces the pattern kind (a look-alike shot)."""
        w, h = self.width, self.height
        pan = (0.0, 0.0)
        if not still and self.rng.random() >= 0.3:
            per_drawing = _log_uniform(self.rng, max(1.0, 0.004 * w), 0.05 * w)
            direction = self.rng.uniform(0, 2 * math.pi)
            speed = per_drawing / mean_hold
            pan = (speed * math.cos(direction), speed * math.sin(direction))
        seed = int(self.rng.integers(2**31))
        drawn = str(self.rng.choice(["stripes", "dots", "noise"]))
        return Background(
            seed=seed,
            pattern=drawn if pattern is None else pattern,
            period=float(self.rng.uniform(0.06, 0.2) * min(w, h)),
            angle=float(self.rng.uniform(0, math.pi)),
            noise_cell=float(self.rng.uniform(0.12, 0.4) * min(w, h)),
            pan=pan,
        )

    def _new_object(self, palette: Palette, index: int, static: bool, mean_hold: float,
                    slow: bool = False) -> ShapeObject:
        """A shape with a per-drawing speed from a few pixels to ~15% of the width (a slow
        shot's: see ``slow_motion``)."""
        w, h = self.width, self.height
        rng, side = self.rng, min(w, h)
        size = float(rng.uniform(0.07, 0.18) * side)
        radius = float(rng.uniform(0.08, 0.3) * side)
        per_drawing = _log_uniform(rng, max(2.0, 0.01 * w), 0.15 * w)
        radius = max(radius, per_drawing / 1.2)  # <= ~70 degrees of orbit per drawing
        omega = per_drawing / (radius * mean_hold) * float(rng.choice([-1.0, 1.0]))
        spin = _log_uniform(rng, 0.02, 0.35) / mean_hold * float(rng.choice([-1.0, 1.0]))
        pulse_omega = float(rng.uniform(0.02, 0.15)) / mean_hold
        motion = 0.0 if static else 1.0
        obj = ShapeObject(
            vertices=make_shape(str(rng.choice(SHAPES)), rng),
            size=size,
            fill=palette.fills[index % len(palette.fills)],
            outline=palette.outline,
            outline_px=max(1, int(round(rng.uniform(2.0, 4.0) * side / 240))),
            center=(float(rng.uniform(0.2, 0.8) * w), float(rng.uniform(0.2, 0.8) * h)),
            orbit=(radius, radius * float(rng.uniform(0.6, 1.0))),
            omega=omega * motion,
            phase=float(rng.uniform(0, 2 * math.pi)),
            angle0=float(rng.uniform(0, 2 * math.pi)),
            spin=spin * motion,
            pulse=float(rng.uniform(0.0, 0.25)) * motion,
            pulse_omega=pulse_omega,
            pulse_phase=float(rng.uniform(0, 2 * math.pi)),
        )
        return slow_motion(obj, self.extra) if slow else obj


def slow_motion(obj: ShapeObject, rng: np.random.Generator) -> ShapeObject:
    """The object slowed so no outline point moves more than SLOW_SPEED[1] per frame.

    A speed s (log-uniform in SLOW_SPEED) is split 70/30 between the orbit (peak speed
    omega * larger semi-axis) and the spin (speed spin * size at the outline); the pulse
    is off. Velocities add, so every point moves at most s pixels between two frames.
    """
    s = _log_uniform(rng, *SLOW_SPEED)
    omega = 0.7 * s / max(obj.orbit) * float(rng.choice([-1.0, 1.0]))
    spin = 0.3 * s / obj.size * float(rng.choice([-1.0, 1.0]))
    return replace(obj, omega=omega, spin=spin, pulse=0.0)


def look_alike_palette(prev: Palette, rng: np.random.Generator) -> Palette:
    """A palette that reads as the same place: the previous one's sector, every colour's
    hue within ~4 degrees, saturation within 8%, brightness within 0.04 (the same
    characters in the next shot of a scene, so only the layout tells the cut)."""

    def near(rgb: RGB) -> RGB:
        h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        return _hsv(h + rng.uniform(-0.01, 0.01), s * rng.uniform(0.92, 1.08), v + rng.uniform(-0.04, 0.04))

    return Palette(
        sector=prev.sector,
        bg_dark=near(prev.bg_dark),
        bg_light=near(prev.bg_light),
        fills=tuple(near(f) for f in prev.fills),
        outline=prev.outline,
    )


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Log-uniform: as many slow objects as fast ones, across a wide range of speeds."""
    lo, hi = min(lo, hi), max(lo, hi)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def make_holds(timing: str, frames: int, rng: np.random.Generator) -> tuple[int, ...]:
    """Hold lengths of the drawings; the last one is cut short by the shot's end."""
    if timing == "static":
        return (frames,)
    fixed = {"ones": 1, "twos": 2, "threes": 3, "slow": 1}.get(timing)
    holds: list[int] = []
    left = frames
    while left > 0:
        hold = fixed if fixed is not None else int(rng.integers(2, 4))
        holds.append(min(hold, left))
        left -= holds[-1]
    return tuple(holds)


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (int(round(r * 255)), int(round(g * 255)), int(round(b * 255)))


def make_palette(sector: int, rng: np.random.Generator) -> Palette:
    """Background ramp in the sector's hue; saturated fills in contrasting hues."""
    hue = (sector + rng.uniform(-0.3, 0.3)) / HUE_SECTORS
    fills = tuple(
        _hsv(hue + rng.uniform(0.25, 0.75), rng.uniform(0.65, 1.0), rng.uniform(0.75, 1.0)) for _ in range(4)
    )
    return Palette(
        sector=sector,
        bg_dark=_hsv(hue, rng.uniform(0.5, 0.8), rng.uniform(0.3, 0.45)),
        bg_light=_hsv(hue + rng.uniform(-0.03, 0.03), rng.uniform(0.3, 0.55), rng.uniform(0.8, 0.95)),
        fills=fills,
        outline=_hsv(hue, 0.5, rng.uniform(0.05, 0.12)),
    )


def make_shape(kind: str, rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    """Unit-radius outline of a shape as a polygon, so every shape rotates the same way."""
    if kind == "ellipse":
        aspect = rng.uniform(0.5, 1.0)
        a = np.linspace(0, 2 * math.pi, 36, endpoint=False)
        pts = np.stack([np.cos(a), aspect * np.sin(a)], axis=1)
    elif kind == "rect":
        aspect = rng.uniform(0.4, 1.0)
        pts = np.array([[-1, -aspect], [1, -aspect], [1, aspect], [-1, aspect]], float) / math.hypot(1, aspect)
    elif kind == "star":
        k, inner = int(rng.integers(5, 8)), rng.uniform(0.4, 0.6)
        a = np.linspace(0, 2 * math.pi, 2 * k, endpoint=False)
        r = np.where(np.arange(2 * k) % 2 == 0, 1.0, inner)
        pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    else:
        k = int(rng.integers(3, 9))
        a = np.linspace(0, 2 * math.pi, k, endpoint=False) + rng.uniform(-0.15, 0.15, k)
        r = rng.uniform(0.8, 1.0, k)
        pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    return tuple((float(x), float(y)) for x, y in pts)
