"""Build detect_cuts-style analysis tables from synthetic clips, with scenes from the truth.

Stages after detect_cuts only read ``frames.parquet`` and ``scenes.parquet``. Tests of
those stages must not depend on how well the cut detector works, so this helper decodes
the synthetic clips itself and takes ``scene`` from the truth's hard cuts, but measures
every other column with detect_cuts' own per-frame code (``FrameFeatures``: hashes, luma
stats, motion, thumbnail, and the hold rule's ``drawing``, ``change``, ``gate``) and
reads the clips through the pipeline's reader at the analysis size, so what the tests
see is what the stage writes, not a second implementation of it.

Scene semantics follow the truth: a new scene starts at every ``is_cut_start`` frame, so
a flash frame ends the scene before it, and a dissolve (not a hard cut) sits inside one
scene together with the shots on both sides. That is what a good hard-cut detector
produces, and it is exactly the case the transition filter exists for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis.features import FRAME_COLUMNS as STAGE_FRAME_COLUMNS
from pipeline.analysis.features import FrameFeatures
from pipeline.core.atomic import write_parquet
from pipeline.core.config import CutsParams, TripletParams
from pipeline.media.video import Frame, open_reader
from pipeline.synth import SynthSpec, generate

FRAME_COLUMNS = {**STAGE_FRAME_COLUMNS, "source": object}
SCENE_COLUMNS = ("source", "scene", "first_frame", "last_frame", "frames", "start_pts", "end_pts", "duration")


def features_table(frames: Iterable[Frame], source: str, thumb_size: int = 16,
                   holds: TripletParams | None = None) -> pd.DataFrame:
    """frames.parquet rows of one source measured by detect_cuts' ``FrameFeatures``
    (``score`` NaN: no detector runs here; ``scene`` 0, for the caller to set)."""
    features = FrameFeatures(thumb_size, holds)
    for frame in frames:
        features.add(frame, float("nan"))
    cols = features.arrays()
    thumbs = cols.pop("thumb")
    df = pd.DataFrame(cols)
    df.insert(0, "source", source)
    df["scene"] = 0
    df["thumb"] = [row.tobytes() for row in thumbs]
    return df[list(FRAME_COLUMNS)].astype(FRAME_COLUMNS)


def frames_from_images(images: list[np.ndarray], source: str, scenes: list[int] | None = None,
                       fps: float = 24.0, thumb_size: int = 16,
                       holds: TripletParams | None = None) -> pd.DataFrame:
    """A frames table from in-memory RGB (or grey) images: unit tests without any video."""
    frames = (Frame(i, i / fps, np.asarray(a, np.uint8)) for i, a in enumerate(images))
    df = features_table(frames, source, thumb_size, holds)
    if scenes is not None:
        df["scene"] = np.asarray(scenes, np.int32)
    return df


def write_analysis(frames: pd.DataFrame, analysis_dir: Path) -> Path:
    """Write ``frames.parquet`` and the matching ``scenes.parquet``; returns the folder."""
    write_parquet(frames, analysis_dir / "frames.parquet")
    write_parquet(scenes_table(frames), analysis_dir / "scenes.parquet")
    return analysis_dir


def analyse_video(path: Path, source: str, thumb_size: int = 16,
                  holds: TripletParams | None = None) -> pd.DataFrame:
    """Decode every frame of ``path`` once, as detect_cuts does (PyAV, analysis size);
    one row per frame, ``scene`` left at 0."""
    with open_reader(path, CutsParams().analysis_size, "pyav") as reader:
        return features_table(reader, source, thumb_size, holds)


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


def build_tables(video_dir: Path, truth: pd.DataFrame, thumb_size: int = 16,
                 holds: TripletParams | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """frames and scenes tables of every clip in ``truth``, scenes taken from the truth."""
    parts = []
    for clip, rows in truth.groupby("clip", sort=True):
        frames = analyse_video(video_dir / f"{clip}.mp4", clip, thumb_size, holds)
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


def synthetic_analysis(root: Path, spec: SynthSpec, name: str = "synthetic",
                       holds: TripletParams | None = None) -> AnalysisSet:
    """Generate ``spec`` into ``root/raw`` and write ``root/analysis/{frames,scenes}.parquet``
    (``holds``: the hold rule's params, the defaults when None)."""
    out = generate(spec, root / "raw", name=name)
    frames, scenes = build_tables(root / "raw", out.truth, holds=holds)
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
