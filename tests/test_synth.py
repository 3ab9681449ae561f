"""The synthetic source: determinism, and its truth checked against the decoded files.

Every behavioural check decodes the written H.264 files with PyAV, so the tests measure
what downstream stages will see (codec noise included), not what the renderer meant.
"""

from __future__ import annotations

import hashlib
import importlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from pipeline import config
from pipeline.synth import TRUTH_COLUMNS, SynthOutput, SynthSpec, generate, plan_set, truth_table, write_truth
from pipeline.synth.plan import MIN_SECTOR_GAP, ShotSlot, sector_gap

SMALL = SynthSpec(clips=3, seed=1, width=160, height=120, seconds=4, min_shot_seconds=0.5, max_shot_seconds=1.5)
TRANSITIONS = SynthSpec(
    clips=2, seed=3, width=160, height=120, seconds=4, min_shot_seconds=0.5, max_shot_seconds=1.0, transition_prob=1.0
)
HELD_MEAN = 1.5  # a held frame decodes within this mean abs difference of the previous one
REPEAT_MEAN = 3.0  # two separate encodes of the same pixels (each ~2 levels off the source)
CUT_MEAN = 20.0  # a hard cut changes the picture by more than this (mean abs, 0..255)
BIG_DIFF = 40  # a pixel "really changed" when a channel moves by more than this
MIN_CHANGED = 20  # a new drawing changes at least this many pixels really


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decode(path: Path) -> tuple[np.ndarray, list[Fraction]]:
    """All frames as int16 RGB (so differences do not wrap) and their exact times."""
    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(Fraction(frame.pts) * stream.time_base)
    return np.stack(frames).astype(np.int16), times


class Decoded:
    """A generated set, its truth, and its decoded frames aligned with the truth rows."""

    def __init__(self, out: SynthOutput) -> None:
        self.out = out
        self.truth = out.truth
        decoded = [decode(v) for v in out.videos]
        self.frames = np.concatenate([f for f, _ in decoded])
        self.times = [t for _, ts in decoded for t in ts]
        self.counts = [len(f) for f, _ in decoded]
        diff = np.abs(self.frames[1:] - self.frames[:-1])
        self.prev_mean = np.r_[np.nan, diff.mean(axis=(1, 2, 3))]
        self.prev_changed = np.r_[0, (diff.max(axis=3) > BIG_DIFF).sum(axis=(1, 2))]
        clip = self.truth["clip"].to_numpy()
        self.same_clip_as_prev = np.r_[False, clip[1:] == clip[:-1]]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    return Decoded(generate(SMALL, tmp_path_factory.mktemp("small")))


@pytest.fixture(scope="module")
def transitions(tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    return Decoded(generate(TRANSITIONS, tmp_path_factory.mktemp("transitions")))


# --- files and schema -------------------------------------------------------------------


def test_files_named_and_only_videos_written(small: Decoded) -> None:
    videos = small.out.videos
    assert [v.name for v in videos] == [f"synthetic-{i:02d}.mp4" for i in range(SMALL.clips)]
    assert sorted(p.name for p in videos[0].parent.iterdir()) == [v.name for v in videos]


def test_truth_schema(small: Decoded) -> None:
    truth = small.truth
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert {c: str(truth[c].dtype) for c in ("frame", "shot", "drawing", "repeat_of")} == dict.fromkeys(
        ("frame", "shot", "drawing", "repeat_of"), "int32"
    )
    assert truth["hold"].dtype == np.int8 and truth["pts"].dtype == np.float64
    assert truth["is_cut_start"].dtype == bool and truth["is_static_shot"].dtype == bool
    assert set(truth["source"]) == {"synthetic"}
    assert list(truth["clip"].unique()) == [v.stem for v in small.out.videos]
    assert (truth["transition"] == "").all()


def test_frame_counts_and_pts_match_truth(small: Decoded) -> None:
    truth = small.truth
    assert small.counts == [SMALL.clip_frames] * SMALL.clips
    assert len(truth) == sum(small.counts)
    for clip, group in truth.groupby("clip", sort=False):
        assert group["frame"].tolist() == list(range(len(group))), clip
    assert [Fraction(int(f), SMALL.fps) for f in truth["frame"]] == small.times
    assert np.array_equal(truth["pts"].to_numpy(), truth["frame"].to_numpy() / SMALL.fps)


def test_write_truth_round_trip(small: Decoded, tmp_path: Path) -> None:
    path = tmp_path / "truth.parquet"
    write_truth(small.truth, path)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, small.truth, check_dtype=True)
    assert [p.name for p in tmp_path.iterdir()] == ["truth.parquet"]


# --- determinism --------------------------------------------------------------------------


def test_same_spec_same_bytes_other_seed_other_bytes(small: Decoded, tmp_path: Path) -> None:
    again = generate(SMALL, tmp_path / "again")
    assert [sha256(v) for v in again.videos] == [sha256(v) for v in small.out.videos]
    pd.testing.assert_frame_equal(again.truth, small.truth)
    other = generate(SMALL.model_copy(update={"seed": SMALL.seed + 1, "clips": 1}), tmp_path / "other")
    assert sha256(other.videos[0]) != sha256(small.out.videos[0])


def test_container_is_bitexact(small: Decoded) -> None:
    """No muxer version string: the bytes do not depend on the libavformat build."""
    assert b"Lavf" not in small.out.videos[0].read_bytes()


def test_failed_clip_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = importlib.import_module("pipeline.synth.generate")  # the module, not the function

    def broken(*args: object, **kwargs: object):
        yield np.zeros((SMALL.height, SMALL.width, 3), np.uint8), 3
        raise RuntimeError("render failed")

    monkeypatch.setattr(gen, "clip_frames", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        generate(SMALL, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- truth against decoded pixels -----------------------------------------------------------


def test_held_frames_repeat_previous_frame(small: Decoded) -> None:
    drawing = small.truth["drawing"].to_numpy()
    held = small.same_clip_as_prev & np.r_[False, drawing[1:] == drawing[:-1]]
    assert held.sum() > 100
    assert small.prev_mean[held].max() < HELD_MEAN
    assert small.prev_changed[held].max() < MIN_CHANGED


def test_new_drawings_of_moving_shots_differ(small: Decoded) -> None:
    t = small.truth
    drawing = t["drawing"].to_numpy()
    new = small.same_clip_as_prev & np.r_[False, drawing[1:] != drawing[:-1]]
    moving_new = new & ~t["is_cut_start"].to_numpy() & ~t["is_static_shot"].to_numpy()
    assert moving_new.sum() > 50
    assert small.prev_changed[moving_new].min() >= MIN_CHANGED


def test_cuts_differ_strongly_and_frame0_is_not_a_cut(small: Decoded) -> None:
    t = small.truth
    cuts = t["is_cut_start"].to_numpy()
    assert not cuts[t["frame"].to_numpy() == 0].any()
    assert cuts.sum() >= SMALL.clips
    assert small.prev_mean[cuts].min() > CUT_MEAN
    shot = t["shot"].to_numpy()
    shot_change = small.same_clip_as_prev & np.r_[False, shot[1:] != shot[:-1]]
    assert np.array_equal(shot_change, cuts)  # no transitions: every shot change is a hard cut


def test_static_shots_have_one_drawing(small: Decoded) -> None:
    static = small.truth[small.truth["is_static_shot"]]
    assert len(static) > 0
    assert (static.groupby("shot")["drawing"].nunique() == 1).all()


def test_holds_match_drawing_runs(small: Decoded) -> None:
    runs = small.truth.groupby("drawing").agg(hold=("hold", "first"), n=("frame", "size"), shots=("shot", "nunique"))
    assert (runs["shots"] == 1).all()
    assert (runs["hold"] == runs["n"].clip(upper=127)).all()


def test_repeated_shots_decode_like_their_original(small: Decoded) -> None:
    t = small.truth
    repeats = t[t["repeat_of"] >= 0]
    assert len(repeats) > 0
    for shot, rows in repeats.groupby("shot"):
        original = t[t["shot"] == rows["repeat_of"].iloc[0]]
        assert (original["repeat_of"] == -1).all()  # points to the root
        assert set(rows["drawing"]).isdisjoint(original["drawing"])  # new ids
        assert len(rows) == len(original)
        diff = np.abs(small.frames[rows.index] - small.frames[original.index])
        # two encodes of the same pixels: codec noise only (no moved edge anywhere)
        assert diff.mean(axis=(1, 2, 3)).max() < REPEAT_MEAN, shot
        assert (diff.max(axis=3) > BIG_DIFF).sum(axis=(1, 2)).max() < MIN_CHANGED, shot
        assert rows["hold"].tolist() == original["hold"].tolist()


def test_every_feature_present(small: Decoded) -> None:
    t = small.truth
    assert set(t["hold"]) >= {1, 2, 3}
    holds_per_clip = t[~t["is_static_shot"]].groupby("clip")["hold"].agg(lambda h: set(h) & {1, 2, 3})
    assert holds_per_clip.map(len).max() >= 2  # a clip mixes timings
    assert t["is_static_shot"].any()
    clip_of_shot = t.groupby("shot")["clip"].first()
    rep = t[t["repeat_of"] >= 0].drop_duplicates("shot")
    assert (rep["clip"].to_numpy() != clip_of_shot[rep["repeat_of"]].to_numpy()).any()  # across clips


# --- planning rules on the default spec (truth only, no rendering) ---------------------------


@pytest.mark.parametrize("seed", range(4))
def test_default_spec_plans_every_feature(seed: int) -> None:
    spec = SynthSpec(seed=seed)
    plan = plan_set(spec)
    t = truth_table(plan, "synthetic")
    assert len(t) == spec.clips * spec.clip_frames
    assert set(t["hold"]) >= {1, 2, 3} and t["is_static_shot"].any()
    mixed = t[~t["is_static_shot"]].groupby("shot")["hold"].agg(lambda h: {2, 3} <= set(h.iloc[:-1]))
    assert mixed.any()
    first = t.drop_duplicates("shot")
    clip_of = dict(zip(first["shot"], first["clip"]))
    assert any(clip_of[r.repeat_of] != r.clip for r in first.itertuples() if r.repeat_of >= 0)


@pytest.mark.parametrize("spec", [SynthSpec(seed=5), SynthSpec(seed=6, repeat_prob=0.6, clips=3), TRANSITIONS])
def test_neighbouring_shots_never_share_template_or_palette(spec: SynthSpec) -> None:
    for clip in plan_set(spec).clips:
        shots = [item for item in clip.items if isinstance(item, ShotSlot)]
        for a, b in zip(shots, shots[1:]):
            assert a.template.key != b.template.key
            assert sector_gap(a.template.palette.sector, b.template.palette.sector) >= MIN_SECTOR_GAP


def test_no_guaranteed_features_when_probabilities_are_zero() -> None:
    t = truth_table(plan_set(SynthSpec(static_prob=0.0, repeat_prob=0.0, clips=3)), "s")
    assert not t["is_static_shot"].any() and (t["repeat_of"] == -1).all()


# --- transitions ------------------------------------------------------------------------------


def test_transition_truth_semantics(transitions: Decoded) -> None:
    t = transitions.truth
    kinds = set(t["transition"]) - {""}
    assert kinds == {"dissolve", "flash"}
    trans = t[t["transition"] != ""]
    assert (trans["shot"] == -1).all() and (trans["drawing"] == -1).all() and (trans["hold"] == 0).all()
    assert not trans["is_cut_start"].any() and (trans["repeat_of"] == -1).all()
    kind_before = t["transition"].shift(1).fillna("")
    starts = (t["shot"] >= 0) & (t["shot"] != t["shot"].shift(1)) & (t["frame"] > 0)
    after_dissolve = starts & (kind_before == "dissolve")
    after_flash = starts & (kind_before == "flash")
    after_shot = starts & (kind_before == "")
    assert after_dissolve.any() and after_flash.any()
    assert not t.loc[after_dissolve, "is_cut_start"].any()
    assert t.loc[after_flash | after_shot, "is_cut_start"].all()
    assert t["is_cut_start"].sum() == (after_flash | after_shot).sum()


def test_dissolves_blend_neighbours(transitions: Decoded) -> None:
    t = transitions.truth
    is_d = (t["transition"] == "dissolve").to_numpy()
    run_id = np.cumsum(np.r_[True, is_d[1:] != is_d[:-1]])
    checked = 0
    for rid in np.unique(run_id[is_d]):
        rows = np.flatnonzero(run_id == rid)
        assert 4 <= len(rows) <= 8
        before = transitions.frames[rows[0] - 1].astype(np.float64)
        after = transitions.frames[rows[-1] + 1].astype(np.float64)
        for k, row in enumerate(rows, start=1):
            a = k / (len(rows) + 1)
            expected = (1 - a) * before + a * after
            assert np.abs(transitions.frames[row] - expected).mean() < 2.5, (row, k)
        far = np.abs(transitions.frames[rows[len(rows) // 2]] - before).mean()
        assert far > 5  # really a blend, not a copy of the previous frame
        checked += 1
    assert checked > 0


def test_flash_frames_are_uniform(transitions: Decoded) -> None:
    rows = np.flatnonzero((transitions.truth["transition"] == "flash").to_numpy())
    assert len(rows) > 0
    for row in rows:
        frame = transitions.frames[row]
        assert frame.std() < 3.0
        assert frame.mean() < 20 or frame.mean() > 235
        assert transitions.prev_mean[row] > CUT_MEAN or transitions.prev_mean[row + 1] > CUT_MEAN


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clips", 0),
        ("clips", 1001),
        ("seed", -1),
        ("width", 33),
        ("width", 16),
        ("width", 3842),
        ("height", 31),
        ("height", 2162),
        ("width", True),
        ("fps", 0),
        ("fps", 121),
        ("fps", 24.0),
        ("seconds", 0),
        ("seconds", 0.01),
        ("seconds", 3601.0),
        ("crf", 52),
        ("min_shot_seconds", -1.0),
        ("max_shot_seconds", 0.5),
        ("static_prob", 1.5),
        ("repeat_prob", -0.1),
        ("transition_prob", 2),
    ],
)
def test_spec_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        SynthSpec(**{field: value})


def test_spec_fields_are_declared_once() -> None:
    """SynthSpec and a ``kind: synthetic`` source share one declaration, so they cannot
    drift: every spec field is a source field with the very same default and bounds, and
    no class but one declares it."""
    source = config.SyntheticSource.model_fields
    for name, spec_field in SynthSpec.model_fields.items():
        assert name in source, name
        assert repr(source[name]) == repr(spec_field), name
        declaring = [c for c in config.SyntheticSource.__mro__ + SynthSpec.__mro__
                     if name in vars(c).get("__annotations__", {})]
        assert len(set(declaring)) == 1, (name, declaring)
    extra = set(source) - set(SynthSpec.model_fields)
    assert extra == {"name", "kind", "license", "attribution", "split"}


def test_source_spec_is_the_same_spec() -> None:
    params = config.parse_params({"sources": [{"kind": "synthetic", "name": "s", "clips": 2, "seconds": 4}]})
    assert params.sources[0].spec() == SynthSpec(clips=2, seconds=4.0)
