"""Build detect_cuts-style analysis tables from synthetic clips, with scenes from the truth.

Stages after detect_cuts only read ``frames.parquet`` and ``scenes.parquet``. Tests of
those stages must not depend on how well the cut detector works, so this helper decodes
the synthetic clips itself (PyAV), computes the same per-frame columns as the
``frames.parquet`` contract (imagehash phash/dhash as uint64, luma stats, motion, grey
thumbnail) and takes ``scene`` from the truth's hard cuts.

Scene semantics follow the truth: a new scene starts at every ``is_cut_start`` frame, so
a flash frame ends the scene before it, and a dissolve (not a hard cut) sits inside one
scene together with the shots on both sides. That is what a good hard-cut detector
produces, and it is exactly the case the transition filter exists for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import imagehash
import numpy as np
import pandas as pd
from PIL import Image

from pipeline.atomic import write_parquet
from pipeline.synth import SynthSpec, generate

FRAME_COLUMNS = {
    "source": object,
    "frame": np.int64,
    "pts": np.float64,
    "scene": np.int32,
    "phash": np.uint64,
    "dhash": np.uint64,
    "luma_mean": np.float32,
    "luma_std": np.float32,
    "motion": np.float32,
    "score": np.float32,
    "thumb": object,
}
SCENE_COLUMNS = ("source", "scene", "first_frame", "last_frame", "frames", "start_pts", "end_pts", "duration")


def hash_uint64(h: imagehash.ImageHash) -> np.uint64:
    """imagehash's hex string as the uint64 the frames table stores."""
    return np.uint64(int(str(h), 16))


def frame_row(image: Image.Image, prev_grey: np.ndarray | None, thumb_size: int) -> tuple[dict, np.ndarray]:
    """The per-frame columns of one decoded RGB frame (scene, source, index added later)."""
    grey_img = image.convert("L")
    grey = np.asarray(grey_img, dtype=np.float32)
    motion = 0.0 if prev_grey is None else float(np.abs(grey - prev_grey).mean())
    thumb = np.asarray(grey_img.resize((thumb_size, thumb_size), Image.Resampling.BOX), dtype=np.uint8)
    row = {
        "phash": hash_uint64(imagehash.phash(image)),
        "dhash": hash_uint64(imagehash.dhash(image)),
        "luma_mean": grey.mean(),
        "luma_std": grey.std(),
        "motion": motion,
        "score": np.nan,
        "thumb": thumb.tobytes(),
    }
    return row, grey


def frames_from_images(images: list[np.ndarray], source: str, scenes: list[int] | None = None,
                       fps: float = 24.0, thumb_size: int = 16) -> pd.DataFrame:
    """A frames table from in-memory RGB (or grey) images: unit tests without any video."""
    rows: list[dict] = []
    prev: np.ndarray | None = None
    for index, array in enumerate(images):
        row, prev = frame_row(Image.fromarray(np.asarray(array, np.uint8)), prev, thumb_size)
        row.update(source=source, frame=index, pts=index / fps, scene=0 if scenes is None else scenes[index])
        rows.append(row)
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS)).astype(FRAME_COLUMNS)


def write_analysis(frames: pd.DataFrame, analysis_dir: Path) -> Path:
    """Write ``frames.parquet`` and the matching ``scenes.parquet``; returns the folder."""
    write_parquet(frames, analysis_dir / "frames.parquet")
    write_parquet(scenes_table(frames), analysis_dir / "scenes.parquet")
    return analysis_dir


def analyse_video(path: Path, source: str, thumb_size: int = 16) -> pd.DataFrame:
    """Decode every frame of ``path`` once; one row per frame, ``scene`` left at 0."""
    rows: list[dict] = []
    prev: np.ndarray | None = None
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            row, prev = frame_row(frame.to_image(), prev, thumb_size)
            row.update(source=source, frame=index, pts=float(frame.time), scene=0)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS)).astype(FRAME_COLUMNS)


def truth_scenes(truth: pd.DataFrame) -> np.ndarray:
    """Scene index per truth row: a new scene at every hard cut, 0-based per clip."""
    return truth.groupby("clip", sort=False)["is_cut_start"].cumsum().to_numpy(np.int32)


def scenes_table(frames: pd.DataFrame) -> pd.DataFrame:
    """``scenes.parquet`` from a frames table (one row per source and scene)."""
    g = frames.groupby(["source", "scene"], sort=True)
    out = g.agg(first_frame=("frame", "min"), last_frame=("frame", "max"),
                frames=("frame", "size"), start_pts=("pts", "min"), end_pts=("pts", "max")).reset_index()
    out["duration"] = out["end_pts"] - out["start_pts"]
    return out[list(SCENE_COLUMNS)].astype({"scene": np.int32, "first_frame": np.int64,
                                            "last_frame": np.int64, "frames": np.int64})


def build_tables(video_dir: Path, truth: pd.DataFrame, thumb_size: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """frames and scenes tables of every clip in ``truth``, scenes taken from the truth."""
    parts = []
    for clip, rows in truth.groupby("clip", sort=True):
        frames = analyse_video(video_dir / f"{clip}.mp4", clip, thumb_size)
        if len(frames) != len(rows):
            raise ValueError(f"{clip}: decoded {len(frames)} frames, truth has {len(rows)}")
        frames["scene"] = truth_scenes(rows)
        parts.append(frames)
    frames = pd.concat(parts, ignore_index=True)
    return frames, scenes_table(frames)


@dataclass(frozen=True)
class AnalysisSet:
    """A synthetic set with its analysis tables written under ``analysis_dir``."""

    root: Path
    analysis_dir: Path
    frames: pd.DataFrame
    scenes: pd.DataFrame
    truth: pd.DataFrame
    spec: SynthSpec


def synthetic_analysis(root: Path, spec: SynthSpec, name: str = "synthetic") -> AnalysisSet:
    """Generate ``spec`` into ``root/raw`` and write ``root/analysis/{frames,scenes}.parquet``."""
    out = generate(spec, root / "raw", name=name)
    frames, scenes = build_tables(root / "raw", out.truth)
    analysis_dir = write_analysis(frames, root / "analysis")
    return AnalysisSet(root, analysis_dir, frames, scenes, out.truth, spec)


def truth_drawing_ids(truth: pd.DataFrame) -> np.ndarray:
    """The truth's drawing id per frame, with every transition frame its own drawing."""
    ids = truth["drawing"].to_numpy(np.int64).copy()
    transition = ids < 0
    ids[transition] = -1 - np.arange(int(transition.sum()))
    return ids


def our_drawing_ids(drawings: pd.DataFrame) -> np.ndarray:
    """Our drawing id per frame (a global row number), frames in source -> frame order."""
    ordered = drawings.sort_values(["source", "first_frame"], kind="stable")
    return np.repeat(np.arange(len(ordered)), ordered["hold"].to_numpy())


@dataclass(frozen=True)
class PairingAccuracy:
    """Consecutive-frame agreement with the truth's drawings.

    For every frame but a clip's first: does it show the same drawing as the previous
    frame? ``accuracy`` is the share of frames where our answer equals the truth's.
    ``splits``: one truth drawing cut in two (harmful: the "middle" may equal an end);
    ``merges``: two truth drawings taken as one (benign: the triplet skips a drawing,
    its t still matches the frames it uses).
    """

    frames: int
    accuracy: float
    splits: int
    merges: int


def pairing_accuracy(drawings: pd.DataFrame, truth: pd.DataFrame) -> PairingAccuracy:
    """Compare our drawings with the truth frame by frame (both in clip/source order)."""
    truth = truth.sort_values(["clip", "frame"], kind="stable")
    ours, theirs = our_drawing_ids(drawings), truth_drawing_ids(truth)
    if len(ours) != len(theirs):
        raise ValueError(f"drawings cover {len(ours)} frames, truth has {len(theirs)}")
    clip = truth["clip"].to_numpy()
    inside = clip[1:] == clip[:-1]
    same_ours, same_truth = (ours[1:] == ours[:-1])[inside], (theirs[1:] == theirs[:-1])[inside]
    return PairingAccuracy(
        frames=int(inside.sum()),
        accuracy=float((same_ours == same_truth).mean()),
        splits=int((same_truth & ~same_ours).sum()),
        merges=int((same_ours & ~same_truth).sum()),
    )


def with_truth(triplets: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Triplets plus the truth of their frames: ``{shot,drawing,transition,static,repeat_of}{k}``
    for f0..f2, and ``start{k}``, the first frame of the truth drawing shown at f{k}."""
    by_frame = truth.set_index(["clip", "frame"])
    starts = truth[truth["drawing"] >= 0].groupby(["clip", "drawing"])["frame"].min()
    out = triplets.copy()
    for k in range(3):
        rows = by_frame.loc[pd.MultiIndex.from_arrays([out["source"], out[f"f{k}"]])]
        for name, column in (("shot", "shot"), ("drawing", "drawing"), ("transition", "transition"),
                             ("static", "is_static_shot"), ("repeat_of", "repeat_of")):
            out[f"{name}{k}"] = rows[column].to_numpy()
        keys = pd.MultiIndex.from_arrays([out["source"], out[f"drawing{k}"]])
        out[f"start{k}"] = starts.reindex(keys).to_numpy()
    return out


# The ground-truth set of the triplet and filter tests: small, and the lowest seed whose
# plan has every feature (all timings, static shots, repeats across clips, dissolves and
# a flash), so no feature is missing by chance.
GROUND_TRUTH_SPEC = SynthSpec(
    clips=6, seed=1, width=128, height=96, fps=24, seconds=5.0,
    min_shot_seconds=0.75, max_shot_seconds=2.0,
    static_prob=0.2, repeat_prob=0.3, transition_prob=0.3,
)
