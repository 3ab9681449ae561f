"""Generate the synthetic set: plan, render, encode each clip; build the truth table.

:func:`generate` writes the clips and returns the truth table (``TRUTH_COLUMNS``), one row
per frame (grain, bars, telecine and film noise keep the rows; film repeats do not: see
:mod:`pipeline.synth.film`). Every column's exact meaning: docs/NOTES.md.

- ``shot``, ``drawing``: global ids, shared by all frames of one shot or held drawing
  (a repeated shot gets new ids; ``repeat_of``: the root original's shot id, else -1);
  ``hold``: frames the drawing is shown (int8, saturating at 127);
- ``is_cut_start``: first frame after a hard cut or a flash (never frame 0, nor after a
  dissolve or fade); ``look_alike``: such a cut into a look-alike palette;
- ``transition``: "" on shot frames, else "dissolve", "fade" or "flash" (then ``shot``,
  ``drawing``, ``cel``, ``repeat_of`` are -1, ``hold`` 0); ``camera`` ("", "pan",
  "pan_ones"), ``timing``, ``cel`` (under a pan on ones, the held cel's drawing id).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_path, write_parquet
from pipeline.core.config import SynthSpec
from pipeline.core.progress import Progress, progress
from pipeline.synth.effects import (
    grained,
    pulldown_fields,
    telecine_rate,
    telecined,
    with_bars,
)
from pipeline.synth.encode import H264Writer
from pipeline.synth.film import (
    FILM_COLUMNS,
    converted,
    converts,
    film_columns,
    film_frames,
    film_of,
    filmed,
)
from pipeline.synth.plan import (
    ClipPlan,
    SetPlan,
    ShotSlot,
    Transition,
    picture_size,
    plan_set,
)
from pipeline.synth.render import clip_frames

# String columns use pandas' own string type (``str``: object on pandas 2, the string
# dtype on pandas 3) so a table read back from Parquet compares equal to the original.
TRUTH_COLUMNS = {
    "source": str,
    "clip": str,
    "frame": np.int32,
    "pts": np.float64,
    "shot": np.int32,
    "drawing": np.int32,
    "hold": np.int8,
    "is_cut_start": bool,
    "is_static_shot": bool,
    "repeat_of": np.int32,
    "transition": str,
    "cel": np.int32,
    "camera": str,
    "timing": str,
    "look_alike": bool,
}

# One row per encoded frame of a telecined clip: which progressive frame (the truth's
# ``frame``) gives its top field and its bottom field; ``blended`` when they differ.
TELECINE_COLUMNS = {
    "source": str,
    "clip": str,
    "frame": np.int32,
    "top": np.int32,
    "bottom": np.int32,
    "blended": bool,
}


@dataclass(frozen=True)
class SynthOutput:
    """Written videos in clip order, the per-frame ground truth of all of them, and,
    for a telecined set, the field mapping of every encoded frame."""

    videos: list[Path]
    truth: pd.DataFrame
    telecine: pd.DataFrame | None = None


def clip_name(name: str, index: int) -> str:
    return f"{name}-{index:02d}"


def generate(spec: SynthSpec, out_dir: Path, name: str = "synthetic", show_progress: bool = False) -> SynthOutput:
    """Write one ``{name}-{i:02d}.mp4`` per clip into ``out_dir`` (each atomically).

    The truth table is returned, not written: the caller decides where it goes
    (see ``write_truth``).
    """
    plan = plan_set(spec)
    out_dir = Path(out_dir)
    total = sum(clip.frames for clip in plan.clips)
    videos: list[Path] = []
    with progress(total=total, unit="frame", desc=f"synth {name}", enabled=show_progress) as bar:
        for index, clip in enumerate(plan.clips):
            videos.append(write_clip(spec, clip, out_dir / f"{clip_name(name, index)}.mp4", bar, index))
    truth = truth_table(plan, name)
    tele = telecine_table(plan, name) if spec.telecine else None
    if show_progress:
        size = sum(v.stat().st_size for v in videos)
        print(f"synth {name}: {len(videos)} clips, {total} frames, {truth.shot.max() + 1} shots, {size} bytes")
    return SynthOutput(videos=videos, truth=truth, telecine=tele)


def progressive_frames(spec: SynthSpec, clip: ClipPlan, index: int) -> Iterator[tuple[np.ndarray, int]]:
    """The clip as the encoder (or the telecine filter) gets it: rendered, grained, barred.

    With every transfer effect off this is ``clip_frames`` itself, untouched, so the
    default output and its cost are what they were. Film noise (``pipeline.synth.film``)
    comes after the grain, on the film; its conversion repeats just before the encoder.
    """
    width, height = picture_size(spec)
    film = film_of(spec)
    frames = clip_frames(clip, width, height)
    if spec.grain > 0:
        frames = grained(frames, spec.grain, spec.seed, index)
    if film is not None:
        frames = filmed(frames, film, spec.seed, index)
    if spec.letterbox or spec.pillarbox:
        frames = with_bars(frames, spec.letterbox, spec.pillarbox)
    if every := converts(film, index):
        frames = converted(frames, film_frames(clip.frames, every))
    return frames


def write_clip(spec: SynthSpec, clip: ClipPlan, path: Path, bar: Progress | None = None, index: int = 0) -> Path:
    """Render and encode one clip, streaming; the file appears whole or not at all."""
    frames = progressive_frames(spec, clip, index)
    with atomic_path(path) as tmp:
        if spec.telecine:
            with H264Writer(tmp, spec.width, spec.height, telecine_rate(spec.fps), spec.crf) as writer:
                counted = _counted(frames, bar)
                for frame in telecined(counted, spec.width, spec.height, spec.fps, clip.frames):
                    writer.encode(frame)
            return path
        with H264Writer(tmp, spec.width, spec.height, spec.fps, spec.crf) as writer:
            for image, count in frames:
                writer.write(image, count)
                if bar is not None:
                    bar.update(count)
    return path


def _counted(frames: Iterator[tuple[np.ndarray, int]], bar: Progress | None) -> Iterator[tuple[np.ndarray, int]]:
    """The frames unchanged, counted on the progress bar as they pass."""
    for image, count in frames:
        yield image, count
        if bar is not None:
            bar.update(count)


def write_truth(df: pd.DataFrame, path: Path) -> None:
    """Write the truth table atomically as Parquet."""
    write_parquet(df, path)


def write_telecine_truth(df: pd.DataFrame, path: Path) -> None:
    """Write the telecine field mapping (``TELECINE_COLUMNS``) atomically as Parquet."""
    write_parquet(df, path)


def telecine_table(plan: SetPlan, source: str) -> pd.DataFrame:
    """One row per encoded (telecined) frame of every clip: its fields' progressive frames."""
    parts = []
    for index, clip in enumerate(plan.clips):
        fields = np.asarray(pulldown_fields(clip.frames), np.int32).reshape(-1, 2)
        n = len(fields)
        parts.append(pd.DataFrame({
            "source": np.full(n, source, object),
            "clip": np.full(n, clip_name(source, index), object),
            "frame": np.arange(n, dtype=np.int32),
            "top": fields[:, 0],
            "bottom": fields[:, 1],
            "blended": fields[:, 0] != fields[:, 1],
        }))
    return pd.concat(parts, ignore_index=True).astype(TELECINE_COLUMNS)


def truth_table(plan: SetPlan, source: str) -> pd.DataFrame:
    """One row per frame of every clip, in clip then frame order (see module doc); with
    any film option on, as the conversion shows the frames, plus ``FILM_COLUMNS``."""
    parts: list[pd.DataFrame] = []
    next_drawing = 0
    film = film_of(plan.spec)
    columns = TRUTH_COLUMNS if film is None else TRUTH_COLUMNS | FILM_COLUMNS
    for index, clip in enumerate(plan.clips):
        cols, next_drawing = _clip_columns(clip, next_drawing)
        if film is not None:
            cols = film_columns(cols, converts(film, index))
        n = len(cols["shot"])
        frame = np.arange(n, dtype=np.int32)
        cols.update(
            source=np.full(n, source, object),
            clip=np.full(n, clip_name(source, index), object),
            frame=frame,
            pts=frame / float(plan.spec.fps),
        )
        parts.append(pd.DataFrame(cols))
    df = pd.concat(parts, ignore_index=True)[list(columns)]
    return df.astype(columns)


def _clip_columns(clip: ClipPlan, next_drawing: int) -> tuple[dict[str, np.ndarray], int]:
    """Per-frame columns of one clip's items; returns the next free drawing id."""
    pieces: list[dict[str, np.ndarray]] = []
    prev: ShotSlot | Transition | None = None
    for item in clip.items:
        if isinstance(item, ShotSlot):
            cut = prev is not None and (isinstance(prev, ShotSlot) or prev.kind == "flash")
            pieces.append(_shot_columns(item, next_drawing, cut))
            next_drawing += item.template.frames if item.template.pan_ones else len(item.template.holds)
        else:
            pieces.append(_transition_columns(item))
        prev = item
    cols = {key: np.concatenate([p[key] for p in pieces]) for key in pieces[0]}
    return cols, next_drawing


def _shot_columns(slot: ShotSlot, first_drawing: int, cut: bool) -> dict[str, np.ndarray]:
    """A shot's rows; under a pan on ones each frame is a drawing and ``cel`` the held cel."""
    template = slot.template
    holds = np.asarray(template.holds)
    n = template.frames
    is_cut = np.zeros(n, bool)
    is_cut[0] = cut
    look_alike = np.zeros(n, bool)
    look_alike[0] = cut and slot.look_alike
    if template.pan_ones:
        starts = np.concatenate([[0], np.cumsum(holds)[:-1]])
        drawing = first_drawing + np.arange(n)
        cel = first_drawing + np.repeat(starts, holds)
        hold = np.ones(n, int)
    else:
        drawing = cel = first_drawing + np.repeat(np.arange(len(holds)), holds)
        hold = np.minimum(np.repeat(holds, holds), 127)
    return {
        "shot": np.full(n, slot.shot_id),
        "drawing": drawing,
        "hold": hold,
        "is_cut_start": is_cut,
        "is_static_shot": np.full(n, template.static),
        "repeat_of": np.full(n, slot.repeat_of),
        "transition": np.full(n, "", object),
        "cel": cel,
        "camera": np.full(n, template.camera, object),
        "timing": np.full(n, template.timing, object),
        "look_alike": look_alike,
    }


def _transition_columns(item: Transition) -> dict[str, np.ndarray]:
    n = item.frames
    return {
        "shot": np.full(n, -1),
        "drawing": np.full(n, -1),
        "hold": np.zeros(n, int),
        "is_cut_start": np.zeros(n, bool),
        "is_static_shot": np.zeros(n, bool),
        "repeat_of": np.full(n, -1),
        "transition": np.full(n, item.kind, object),
        "cel": np.full(n, -1),
        "camera": np.full(n, "", object),
        "timing": np.full(n, "", object),
        "look_alike": np.zeros(n, bool),
    }
