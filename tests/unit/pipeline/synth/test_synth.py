"""The synthetic source: determinism, and its truth checked against the decoded files.

Every behavioural check decodes the written H.264 files with PyAV, so the tests measure
what downstream stages will see (codec noise included), not what the renderer meant.
The real-transfer features (grain, pans on ones, look-alike cuts, fades, slow motion,
bars, telecine) are checked the same way, plus, where an exact property is only visible
before the codec (object pixels held under a pan, bars exactly black), on the frames the
encoder receives (``progressive_frames``).
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
from PIL import Image, ImageDraw, ImageFilter
from support.real_like import (
    LETTERBOX_SPEC,
    REAL_LIKE_SPEC,
    TELECINE_SPEC,
    missing_features,
)

from pipeline.core import config
from pipeline.synth import (
    TELECINE_COLUMNS,
    TRUTH_COLUMNS,
    SynthOutput,
    SynthSpec,
    generate,
    picture_size,
    plan_set,
    truth_table,
    write_telecine_truth,
    write_truth,
)
from pipeline.synth.effects import grain_noise
from pipeline.synth.generate import progressive_frames
from pipeline.synth.plan import (
    MIN_SECTOR_GAP,
    SLOW_SPEED,
    ShotSlot,
    ShotTemplate,
    Transition,
    sector_gap,
)
from pipeline.synth.render import ShotRenderer, object_polygon

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


# --- what real transfers add (issue 12) -----------------------------------------------------

BASE = dict(width=160, height=120, seconds=3, min_shot_seconds=0.5, max_shot_seconds=1.5, repeat_prob=0.0)
GRAIN = SynthSpec(clips=1, seed=2, crf=8, static_prob=0.5, grain=6.0, **BASE)
PAN_ONES = SynthSpec(clips=2, seed=3, crf=10, static_prob=0.0, pan_ones_prob=1.0, **BASE)
SIMILAR = SynthSpec(clips=3, seed=4, static_prob=0.3, similar_cut_prob=0.6, **(BASE | dict(seconds=4)))
FADES = SynthSpec(clips=2, seed=13, static_prob=0.2, fade_prob=1.0, **BASE)
SLOW = SynthSpec(clips=1, seed=6, static_prob=0.0, slow_prob=1.0, crf=10, **(BASE | dict(seconds=8)))
BARS = SynthSpec(clips=1, seed=7, static_prob=0.3, grain=4.0, letterbox=16, pillarbox=8, **BASE)
TELECINE = SynthSpec(clips=1, seed=8, crf=10, static_prob=0.2, telecine=True,
                     **(BASE | dict(width=128, height=96, seconds=2)))


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of int RGB frames (..., 3) as float."""
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def shot_templates(spec: SynthSpec) -> dict[int, ShotTemplate]:
    """Global shot id -> template, from the plan (the truth every test starts from)."""
    return {i.shot_id: i.template for c in plan_set(spec).clips for i in c.items if isinstance(i, ShotSlot)}


def rendered(spec: SynthSpec, clip: int = 0) -> np.ndarray:
    """Every frame of a clip as the encoder receives it (grain and bars included)."""
    frames = progressive_frames(spec, plan_set(spec).clips[clip], clip)
    return np.stack([image for image, count in frames for _ in range(count)])


@pytest.fixture(scope="module")
def grainy(tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    return Decoded(generate(GRAIN, tmp_path_factory.mktemp("grain")))


def test_grain_noise_has_the_sd_and_a_one_pixel_correlation() -> None:
    noise = grain_noise(np.random.default_rng(0), 400, 400, 6.0).astype(np.float64)
    assert abs(noise.std() - 6.0) < 0.1 and abs(noise.mean()) < 0.1
    # [1, 2, 1] / 4 blur: neighbours correlate 2/3, two pixels apart 1/6, farther 0
    lag = [np.corrcoef(noise[:, :-k].ravel(), noise[:, k:].ravel())[0, 1] for k in (1, 2, 3)]
    assert abs(lag[0] - 2 / 3) < 0.02 and abs(lag[1] - 1 / 6) < 0.02 and abs(lag[2]) < 0.02


def test_grain_keeps_truth_and_plan(grainy: Decoded) -> None:
    clean = GRAIN.model_copy(update={"grain": 0.0})
    pd.testing.assert_frame_equal(grainy.truth, truth_table(plan_set(clean), "synthetic"))


def test_held_frames_differ_by_luma_grain_yet_average_to_the_drawing(grainy: Decoded) -> None:
    t = grainy.truth
    drawing = t["drawing"].to_numpy()
    held = np.flatnonzero(grainy.same_clip_as_prev & np.r_[False, drawing[1:] == drawing[:-1]])
    assert len(held) > 30
    diff = luma(grainy.frames[held]) - luma(grainy.frames[held - 1])
    sd = diff.std(axis=(1, 2)) / np.sqrt(2)  # two independent grains
    assert sd.min() > 0.6 * GRAIN.grain and np.median(sd) < 1.15 * GRAIN.grain, (sd.min(), np.median(sd))
    # luma-only: the chroma of a held frame stays put while its luma shakes
    yuv = [grainy.frames[i].astype(np.float64) for i in (held[0] - 1, held[0])]
    cb = [(f[..., 2] - luma(f)) for f in yuv]
    assert np.abs(cb[1] - cb[0]).mean() < 0.35 * np.abs(diff[0]).mean()
    # the longest static drawing: its frames' mean is the clean drawing, each frame is not
    static = t[t["is_static_shot"]]
    rows = static.groupby("drawing").filter(lambda g: len(g) >= 20)
    assert len(rows) >= 20
    shot = int(rows["shot"].iloc[0])
    rows = rows[rows["shot"] == shot].index.to_numpy()
    clean = ShotRenderer(shot_templates(GRAIN)[shot], GRAIN.width, GRAIN.height).drawing(0)
    each = np.abs(luma(grainy.frames[rows]) - luma(clean)).mean(axis=(1, 2))
    mean = np.abs(luma(grainy.frames[rows]).mean(axis=0) - luma(clean)).mean()
    assert each.min() > 0.5 * GRAIN.grain and mean < 0.35 * each.min(), (each.min(), mean)


def test_grain_is_on_every_frame_and_deterministic() -> None:
    frames = rendered(GRAIN).astype(np.float64)
    assert np.array_equal(frames, rendered(GRAIN))
    residual = frames - rendered(GRAIN.model_copy(update={"grain": 0.0}))
    unclipped = ((frames > 0) & (frames < 255)).all(axis=-1)
    assert unclipped.mean() > 0.95
    assert np.array_equal(residual[..., 0][unclipped], residual[..., 2][unclipped])  # the same on R, G, B
    sd = residual[..., 0].std(axis=(1, 2))
    assert np.all(np.abs(sd - GRAIN.grain) < 0.6), sd  # clipping at 0/255 takes a little
    assert np.all(np.abs(residual[1:, ..., 0] - residual[:-1, ..., 0]).mean(axis=(1, 2)) > 3)  # fresh per frame


def object_mask(template: ShotTemplate, width: int, height: int, cel: int) -> np.ndarray:
    """Pixels the shot's objects cover in the cel first shown at local frame ``cel``."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    for obj in template.objects:
        draw.polygon(object_polygon(obj, np.asarray(obj.vertices), cel), fill=255, outline=255, width=obj.outline_px)
    return np.asarray(image) > 0


def background_shift(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sub-pixel translation (dx, dy) with b(x) ~ a(x + d) over ``mask``: OpenCV's ECC."""
    import cv2

    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    _, warp = cv2.findTransformECC(luma(a).astype(np.float32), luma(b).astype(np.float32), warp,
                                   cv2.MOTION_TRANSLATION, criteria, mask.astype(np.uint8), 1)
    return -warp[:, 2].astype(np.float64)  # ECC maps b onto a: the crop moved by minus that


@pytest.fixture(scope="module")
def pans(tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    return Decoded(generate(PAN_ONES, tmp_path_factory.mktemp("pan_ones")))


def test_pan_ones_truth_every_frame_a_drawing_cels_held(pans: Decoded) -> None:
    t, templates = pans.truth, shot_templates(PAN_ONES)
    ones = t[t["camera"] == "pan_ones"]
    assert set(ones["timing"]) & {"twos", "threes", "mixed"}
    assert ones["drawing"].is_unique and (ones["hold"] == 1).all()
    for shot, rows in ones.groupby("shot"):
        template = templates[shot]
        assert template.pan_ones and template.background.pan != (0.0, 0.0)
        runs = rows.groupby("cel", sort=False)["frame"].size().tolist()
        assert runs == list(template.holds), shot  # cels keep the objects' timing
        first = rows.groupby("cel")["drawing"].min()
        assert (first.index == first.to_numpy()).all()  # a cel's id is its first frame's drawing
    rest = t[t["camera"] != "pan_ones"]
    assert (rest["cel"] == rest["drawing"]).all()
    assert (t.loc[t["shot"] >= 0, "camera"] == [templates[s].camera for s in t.loc[t["shot"] >= 0, "shot"]]).all()


def test_pan_ones_moves_the_background_every_frame_under_held_cels(pans: Decoded) -> None:
    t, templates = pans.truth, shot_templates(PAN_ONES)
    w, h = PAN_ONES.width, PAN_ONES.height
    clean = np.concatenate([rendered(PAN_ONES, c) for c in range(PAN_ONES.clips)]).astype(np.int16)
    errors: list[float] = []
    for shot, rows in t[t["camera"] == "pan_ones"].groupby("shot"):
        template, idx = templates[shot], rows.index.to_numpy()
        cels = rows["cel"].to_numpy() - rows["drawing"].iloc[0]
        for k in range(len(idx) - 1):
            a, b = object_mask(template, w, h, cels[k]), object_mask(template, w, h, cels[k + 1])
            background = ~(a | b)
            assert np.abs(clean[idx[k + 1]] - clean[idx[k]])[background].mean() > 0.5  # the camera moved
            if cels[k] == cels[k + 1]:  # the same cel: its pixels are held exactly
                assert np.array_equal(clean[idx[k + 1]][a], clean[idx[k]][a])
            if template.background.pattern != "dots":
                continue  # stripes and smooth noise leave a shift unobservable along them
            inner = np.array(Image.fromarray(background).filter(ImageFilter.MinFilter(5)))
            inner[:4], inner[-4:], inner[:, :4], inner[:, -4:] = False, False, False, False
            shift = background_shift(pans.frames[idx[k]], pans.frames[idx[k + 1]], inner)
            errors.append(np.abs(shift - template.background.pan).max())
    # per frame, the decoded background moved by the truth's sub-pixel pan rate
    assert len(errors) > 20
    # (a background held still would be off by the whole pan, 0.4 px and more here)
    assert np.median(errors) < 0.1 and np.quantile(errors, 0.9) < 0.15 and max(errors) < 0.3, sorted(errors)[-5:]


@pytest.fixture(scope="module")
def similar(tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    return Decoded(generate(SIMILAR, tmp_path_factory.mktemp("similar")))


def test_look_alike_cuts_are_real_cuts_of_close_colour(similar: Decoded) -> None:
    t, templates = similar.truth, shot_templates(SIMILAR)
    look = np.flatnonzero(t["look_alike"].to_numpy())
    other = np.flatnonzero((t["is_cut_start"] & ~t["look_alike"]).to_numpy())
    assert len(look) >= 2 and len(other) >= 2
    assert t.loc[look, "is_cut_start"].all()
    assert any(t.at[i, "is_static_shot"] and t.at[i - 1, "is_static_shot"] for i in look)  # static -> static
    for i in look:  # the plan: same place, new layout
        a, b = templates[int(t.at[i - 1, "shot"])], templates[int(t.at[i, "shot"])]
        assert a.palette.sector == b.palette.sector and a.background.pattern == b.background.pattern
        assert a.background.seed != b.background.seed and a.objects != b.objects

    def colour_gap(i: int) -> float:
        return float(np.abs(similar.frames[i].mean(axis=(0, 1)) - similar.frames[i - 1].mean(axis=(0, 1))).max())

    gaps = [colour_gap(i) for i in look]
    assert max(gaps) < 20 and np.median(gaps) < 0.5 * np.median([colour_gap(i) for i in other]), gaps
    # ...yet the picture really changes: a human sees the cut
    frame_px = SIMILAR.width * SIMILAR.height
    assert similar.prev_mean[look].min() > 10 and similar.prev_changed[look].min() > 0.05 * frame_px


def test_no_look_alike_when_off() -> None:
    t = truth_table(plan_set(SynthSpec(seed=3, clips=3)), "s")
    assert not t["look_alike"].any()
    assert (t["cel"] == t["drawing"]).all() and set(t["camera"]) <= {"", "pan"}
    assert set(t["timing"]) <= {"ones", "twos", "threes", "mixed", "static"} and not (t["transition"] == "fade").any()


@pytest.fixture(scope="module")
def fades(tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    return Decoded(generate(FADES, tmp_path_factory.mktemp("fades")))


def test_fades_reach_the_colour_and_come_back(fades: Decoded) -> None:
    t = fades.truth
    plan_fades = [i for c in plan_set(FADES).clips for i in c.items if isinstance(i, Transition)]
    assert plan_fades and all(f.kind == "fade" for f in plan_fades)
    assert {f.level for f in plan_fades} == {0, 255}  # to black and to white
    is_fade = (t["transition"] == "fade").to_numpy()
    starts = np.flatnonzero(is_fade & ~np.r_[False, is_fade[:-1]])
    assert len(starts) == len(plan_fades)
    for start, fade in zip(starts, plan_fades):
        rows = np.arange(start, start + fade.frames)
        assert is_fade[rows].all() and not is_fade[rows[-1] + 1] and not is_fade[start - 1]
        assert not t.at[rows[-1] + 1, "is_cut_start"] and (t.loc[rows, "drawing"] == -1).all()
        assert (t.loc[rows, "timing"] == "").all() and (t.loc[rows, "cel"] == -1).all()
        before, after = fades.frames[start - 1].astype(np.float64), fades.frames[rows[-1] + 1].astype(np.float64)
        black_or_white = fades.frames[rows[fade.fade_out - 1]]
        assert black_or_white.std() < 3 and abs(black_or_white.mean() - fade.level) < 4
        n_in = fade.frames - fade.fade_out
        for k, row in enumerate(rows, start=1):
            if k <= fade.fade_out:
                a = k / fade.fade_out
                expected = (1 - a) * before + a * fade.level
            else:
                a = (k - fade.fade_out) / (n_in + 1)
                expected = (1 - a) * fade.level + a * after
            assert np.abs(fades.frames[row] - expected).mean() < 2.5, (row, k)
        # monotone: the picture approaches the colour, then leaves it
        gap = np.abs(fades.frames[rows].astype(np.float64) - fade.level).mean(axis=(1, 2, 3))
        assert np.all(np.diff(gap[: fade.fade_out]) < 0) and np.all(np.diff(gap[fade.fade_out - 1 :]) > 0)


def test_slow_shots_move_sub_pixel_on_ones() -> None:
    t, templates = truth_table(plan_set(SLOW), "synthetic"), shot_templates(SLOW)
    slow = t[t["timing"] == "slow"]
    assert slow["shot"].nunique() >= 2
    assert (slow["hold"] == 1).all() and slow["drawing"].is_unique and (slow["camera"] == "").all()
    frames = rendered(SLOW).astype(np.int16)
    for shot, rows in slow.groupby("shot"):
        template, idx = templates[shot], rows.index.to_numpy()
        assert template.background.pan == (0.0, 0.0)
        # the truth of the motion: how far each outline point moves from frame to frame
        step = []
        for obj in template.objects:
            unit = np.asarray(obj.vertices)
            pts = np.array([object_polygon(obj, unit, f) for f in range(template.frames)])
            step.append(np.linalg.norm(np.diff(pts, axis=0), axis=2).max(axis=1))
        fastest = np.max(step, axis=0)
        assert fastest.max() <= SLOW_SPEED[1] and fastest.min() >= 0.3 * SLOW_SPEED[0], (shot, fastest.min())
        # every frame is a new (anti-aliased) drawing, yet frame-to-frame changes are faint
        diff = np.abs(frames[idx[1:]] - frames[idx[:-1]])
        assert (diff.reshape(len(idx) - 1, -1).max(axis=1) > 0).all()
        assert diff.mean(axis=(1, 2, 3)).max() < 0.5
        # and they accumulate into visible motion over the shot
        drift = np.abs(frames[idx[-1]] - frames[idx[0]]).mean()
        assert drift > 4 * diff.mean(axis=(1, 2, 3)).mean(), (shot, drift)


def test_bars_are_exact_black_and_frame_the_same_picture(tmp_path: Path) -> None:
    lb, pb = BARS.letterbox, BARS.pillarbox
    frames = rendered(BARS)
    picture = rendered(BARS.model_copy(update={"width": BARS.width - 2 * pb, "height": BARS.height - 2 * lb,
                                               "letterbox": 0, "pillarbox": 0}))
    assert frames.shape[1:3] == (BARS.height, BARS.width)
    assert np.array_equal(frames[:, lb:-lb, pb:-pb], picture)  # the picture is the plan at its own size
    bars = np.ones(frames.shape[1:3], bool)
    bars[lb:-lb, pb:-pb] = False
    assert (frames[:, bars] == 0).all()  # no grain on the bars
    assert (frames[:, [lb, -lb - 1], pb:-pb].max(axis=(1, 2, 3)) > 0).all()  # picture right up to them
    out = generate(BARS, tmp_path)
    decoded, _ = decode(out.videos[0])
    assert decoded.shape[1:3] == (BARS.height, BARS.width)
    assert decoded[:, bars].max() <= 16  # codec ringing next to the picture only
    assert np.median(decoded[:, bars]) == 0
    pd.testing.assert_frame_equal(out.truth, truth_table(plan_set(BARS), "synthetic"))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("letterbox", 46, "letterbox: 46 px bars leave a 28 px high picture"),
    ("pillarbox", 66, "pillarbox: 66 px bars leave a 28 px wide picture"),
])
def test_bars_must_leave_a_picture(field: str, value: int, message: str) -> None:
    spec = SynthSpec(width=160, height=120, **{field: value})
    with pytest.raises(ValueError, match=f"^{message}"):
        picture_size(spec)
    with pytest.raises(ValueError, match=f"^{message}"):
        plan_set(spec)


@pytest.mark.parametrize(("field", "value"), [("letterbox", 3), ("pillarbox", -2), ("grain", -1.0), ("grain", 65),
                                              ("pan_ones_prob", 1.5), ("similar_cut_prob", -0.1),
                                              ("fade_prob", 2), ("slow_prob", -1)])
def test_real_transfer_fields_validated(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        SynthSpec(**{field: value})


def luma_planes(frames: list[np.ndarray]) -> np.ndarray:
    """Y plane (as the encoder's yuv420p conversion makes it) of RGB frames, float."""
    return np.stack([
        av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p").to_ndarray()[: f.shape[0]]
        for f in frames
    ]).astype(np.float64)


@pytest.fixture(scope="module")
def telecined(tmp_path_factory: pytest.TempPathFactory) -> SynthOutput:
    return generate(TELECINE, tmp_path_factory.mktemp("telecine"))


def test_telecine_table_and_stream(telecined: SynthOutput, tmp_path: Path) -> None:
    table, n = telecined.telecine, TELECINE.clip_frames
    assert table is not None and list(table.columns) == list(TELECINE_COLUMNS)
    assert len(telecined.truth) == n and np.array_equal(telecined.truth["pts"], np.arange(n) / TELECINE.fps)
    assert len(table) == n * 5 // 4 and table["blended"].sum() == n * 2 // 4  # 2 woven frames in 5
    assert (table["blended"] == (table["top"] != table["bottom"])).all()
    assert sorted(set(table["top"]) | set(table["bottom"])) == list(range(n))  # every progressive frame shown
    with av.open(str(telecined.videos[0])) as container:
        stream = container.streams.video[0]
        times = [Fraction(f.pts) * stream.time_base for f in container.decode(stream)]
    assert times == [Fraction(k, TELECINE.fps * 5 // 4) for k in range(len(table))]
    write_telecine_truth(table, tmp_path / "telecine.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "telecine.parquet"), table)


def test_telecine_fields_come_from_the_progressive_frames_the_table_names(telecined: SynthOutput) -> None:
    table = telecined.telecine
    progressive = luma_planes(list(rendered(TELECINE)))
    with av.open(str(telecined.videos[0])) as container:
        decoded = luma_planes([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert len(decoded) == len(table)
    pinned_blends = 0
    for row in table.itertuples():
        pinned = 0
        for parity, source in ((0, row.top), (1, row.bottom)):
            err = np.abs(decoded[row.frame, parity::2] - progressive[:, parity::2]).mean(axis=(1, 2))
            assert err[source] < 2.5 and err[source] <= err.min() + 0.5, (row, parity, err.argmin())
            pinned += bool(np.sort(err)[1] > err[source] + 3)  # no other progressive frame fits
        pinned_blends += row.blended and pinned == 2
    # woven frames whose two fields each fit exactly one progressive frame, and not the same
    assert pinned_blends >= table["blended"].sum() // 4, pinned_blends


def test_real_like_specs_have_every_feature() -> None:
    assert missing_features(truth_table(plan_set(REAL_LIKE_SPEC), "s")) == []
    assert picture_size(LETTERBOX_SPEC) == (224, 120) and TELECINE_SPEC.telecine


def test_everything_on_is_deterministic(tmp_path: Path) -> None:
    spec = SynthSpec(clips=1, seed=9, width=96, height=80, seconds=2, min_shot_seconds=0.5, max_shot_seconds=1.0,
                     grain=5.0, pan_ones_prob=0.5, similar_cut_prob=0.5, fade_prob=0.5, slow_prob=0.5,
                     transition_prob=0.3, letterbox=8, pillarbox=4, telecine=True)
    a, b = generate(spec, tmp_path / "a"), generate(spec, tmp_path / "b")
    assert sha256(a.videos[0]) == sha256(b.videos[0])
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.telecine, b.telecine)
