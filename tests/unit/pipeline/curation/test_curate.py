"""filter: transition, flash, pan, static, motion and near-duplicate tests; groups and
splits; the stage against the synthetic ground truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw
from support.analysis_tables import (
    GROUND_TRUTH_SPEC,
    frames_from_images,
    synthetic_analysis,
    with_truth,
    write_analysis,
)

from pipeline.core.atomic import write_parquet
from pipeline.core.config import FilterParams, SplitFractions, TripletParams
from pipeline.core.tables import SOURCES_TABLE, source_splits
from pipeline.curation.curate import (
    FILTERED_COLUMNS,
    assign_reasons,
    is_static,
    noise_floor,
    run_filter,
)
from pipeline.curation.extract import run_extract, write_outputs
from pipeline.curation.splits import (
    UnionFind,
    group_splits,
    scene_groups,
    split_for,
    unit_hash,
)
from pipeline.curation.transitions import (
    dilate,
    fade_fit,
    fade_window_ratio,
    global_shift,
    is_flash,
    is_pan,
    thumb_array,
    transition_drawings,
)
from pipeline.curation.triplets import REASONS
from pipeline.dataset.report import (
    caption,
    decided_by,
    pick_removed,
    removed_sheet,
    wanted_frames,
    write_removed_sheet,
)
from pipeline.stages.filter import main
from pipeline.synth.render import smooth_noise

W, H = 128, 96


# --- image helpers ----------------------------------------------------------------------

def texture(seed: int, width: int = 2 * W, height: int = 2 * H) -> np.ndarray:
    """A smooth grey texture, larger than a frame so that it can be panned."""
    noise = smooth_noise(np.random.default_rng(seed), width, height, cell=24)
    return (30 + 190 * noise).astype(np.uint8)


def with_disk(background: np.ndarray, x: float, y: float, r: float = 12, fill: int = 250) -> np.ndarray:
    image = Image.fromarray(background[:H, :W].copy())
    ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=0, width=2)
    return np.asarray(image)


def moving_disk(seed: int, drawings: int, hold: int = 2, step: float = 6.0, x0: float = 20) -> list[np.ndarray]:
    """A disk moving over a still texture, on ``hold``s (each drawing repeated)."""
    bg = texture(seed)
    frames = []
    for d in range(drawings):
        frames += [with_disk(bg, x0 + step * d, 40 + 2 * d)] * hold
    return frames


def panning(seed: int, drawings: int, hold: int = 2, step: int = 6) -> list[np.ndarray]:
    bg = texture(seed)
    frames = []
    for d in range(drawings):
        frames += [bg[10 : 10 + H, step * d : step * d + W]] * hold
    return frames


def thumbs_of(images: list[np.ndarray]) -> np.ndarray:
    return thumb_array(frames_from_images(images, "x")["thumb"].tolist())


def blend(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    return np.clip(np.rint((1 - weight) * a.astype(np.float32) + weight * b), 0, 255).astype(np.uint8)


def dissolve(a: np.ndarray, b: np.ndarray, n: int = 4) -> list[np.ndarray]:
    return [blend(a, b, k / (n + 1)) for k in range(1, n + 1)]


# --- transitions ------------------------------------------------------------------------

def flags_of(images: list[np.ndarray], params: FilterParams = FilterParams()) -> np.ndarray:
    table = frames_from_images(images, "x")
    return transition_drawings(
        thumb_array(table["thumb"].tolist()), table["luma_mean"].to_numpy(np.float64),
        table["luma_std"].to_numpy(np.float64), np.zeros(len(images), int),
        params.transition_tolerance, params.blank_std, params.flash_jump,
        params.transition_motion_ratio, params.transition_margin).flags


def test_a_dissolve_is_a_transition():
    a = with_disk(texture(1), 40, 40)
    b = with_disk(texture(2), 90, 60, fill=10)
    seq = moving_disk(1, 3, hold=1) + dissolve(a, b, 4) + [b]
    seq[2] = a
    flags = flags_of(seq)
    assert flags[3:7].all(), flags                # the four dissolve frames
    assert not flags[:3].any() and not flags[7]   # clean ends fit no fade: the margin skips them


def test_the_fade_fit_recovers_the_weight():
    a, b = texture(3)[:H, :W], texture(4)[:H, :W]
    thumbs = thumbs_of([a, blend(a, b, 0.3), b])
    fit = fade_fit(thumbs[:1], thumbs[1:2], thumbs[2:])
    assert fit.a[0] == pytest.approx(0.7, abs=0.02)
    assert fit.residual[0] < 0.05


@pytest.mark.parametrize("step", [3.0, 8.0, 16.0])
def test_real_motion_is_not_a_transition(step):
    assert not flags_of(moving_disk(5, 8, hold=1, step=step)).any()


@pytest.mark.parametrize("step", [2, 6, 12])
def test_a_pan_is_not_a_transition(step):
    """A sub-pixel pan is linear at thumbnail size, like a fade; one global shift explains it."""
    assert not flags_of(panning(6, 8, hold=1, step=step)).any()


def test_a_fade_to_black_is_a_transition():
    a = with_disk(texture(7), 50, 50)
    seq = [a, blend(a, np.zeros_like(a), 0.3), blend(a, np.zeros_like(a), 0.6), np.full_like(a, 4)]
    assert flags_of(seq)[1:].all()


def test_flash_and_blank_frames():
    seq = moving_disk(8, 6, hold=1)
    seq[3] = np.full_like(seq[3], 255)                                      # white flash
    assert flags_of(seq).tolist() == [False, False, False, True, False, False]
    seq = moving_disk(8, 6, hold=1)
    seq[2] = np.clip(seq[2].astype(int) + 90, 0, 255).astype(np.uint8)      # much brighter, textured
    assert flags_of(seq).tolist() == [False, False, True, False, False, False]


def test_flash_at_a_scene_end_is_judged_against_its_one_neighbour():
    mean = np.array([100.0, 102, 250, 101, 99])
    std = np.full(5, 20.0)
    scene = np.array([0, 0, 0, 1, 1])
    assert is_flash(mean, std, scene, blank_std=4, jump=50).tolist() == [False, False, True, False, False]


def test_dilate_stays_inside_the_scene():
    flags = np.array([False, False, True, False, False])
    assert dilate(flags, np.array([0, 0, 0, 1, 1])).tolist() == [False, True, True, False, False]
    assert dilate(flags, np.array([0, 0, 0, 0, 1]), 2).tolist() == [True, True, True, True, False]
    assert dilate(flags, np.array([0, 0, 0, 0, 1]), 0).tolist() == flags.tolist()


def test_fade_ratio_is_the_deciding_fades_own_or_its_neighbours_within_the_scene():
    ratio = np.array([np.nan, 0.1, np.nan, 0.9, np.nan, 0.05])
    own = np.array([False, True, False, False, False, True])
    scene = np.array([0, 0, 0, 0, 1, 1])
    flagged = dilate(own, scene, 1, eligible=np.array([True, True, True, True, False, True]))
    assert flagged.tolist() == [True, True, True, False, False, True]      # 4: not eligible
    got = fade_window_ratio(ratio, own, flagged, scene, 1)
    assert np.allclose(got, [0.1, 0.1, 0.1, 0.9, np.nan, 0.05], equal_nan=True)
    assert np.allclose(fade_window_ratio(ratio, own, own, scene, 1), ratio, equal_nan=True)
    assert len(fade_window_ratio(np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, int), 1)) == 0


# --- pan --------------------------------------------------------------------------------

def test_pan_tag_on_a_shifted_texture():
    bg = texture(9)
    a, b = bg[20 : 20 + H, 30 : 30 + W], bg[24 : 24 + H, 42 : 42 + W]     # 12 px right, 4 px down
    thumbs = thumbs_of([a, b])
    shift = global_shift(thumbs[:1], thumbs[1:])
    assert shift.dx[0] == pytest.approx(-12 * 16 / W, abs=0.25)
    assert shift.dy[0] == pytest.approx(-4 * 16 / H, abs=0.25)
    assert shift.explained[0] > 0.95
    assert is_pan(thumbs[:1], thumbs[1:], 0.8).tolist() == [True]


def test_no_pan_for_objects_over_a_still_background_or_equal_ends():
    seq = moving_disk(10, 3, hold=1, step=10)
    thumbs = thumbs_of(seq)
    assert is_pan(thumbs[:1], thumbs[2:], 0.8).tolist() == [False]
    assert is_pan(thumbs[:1], thumbs[:1], 0.8).tolist() == [False]


# --- table tests ------------------------------------------------------------------------

def test_static_means_equal_ends_by_both_hashes():
    table = pd.DataFrame({"phash0": [1, 1, 1], "phash2": [1, 0b1111, 1], "dhash0": [5, 5, 5], "dhash2": [5, 5, 0xFF]},
                         dtype=np.uint64)
    assert is_static(table, 2).tolist() == [True, False, False]


def test_first_reason_wins_and_earlier_reasons_stay():
    table = pd.DataFrame({"keep": [False, True, True, True], "reason": ["too_long_span", "", "", ""]})
    out = assign_reasons(table, {"static": np.array([True, True, False, False]),
                                 "transition": np.array([True, True, True, False])})
    assert out["reason"].tolist() == ["too_long_span", "static", "transition", ""]
    assert out["keep"].tolist() == [False, False, False, True]


def test_noise_floor_uses_hash_identical_neighbours_only():
    frames = pd.DataFrame({"scene": [0, 0, 0, 0, 1], "phash": [1, 1, 2, 2, 2], "dhash": [1, 1, 2, 2, 2],
                           "motion": [0.0, 0.5, 9.0, 0.7, 0.6]}).astype({"phash": np.uint64, "dhash": np.uint64})
    assert noise_floor(frames) == pytest.approx(0.6)     # frames 1 and 3 (4 starts a scene)


# --- groups and splits ------------------------------------------------------------------

def test_union_find_groups_are_sorted_by_smallest_member():
    uf = UnionFind(["d", "a", "c", "b"])
    uf.union("d", "b")
    assert uf.groups() == [["a"], ["b", "d"], ["c"]]


def test_split_is_deterministic_and_shared_by_a_group():
    scenes = [("a", 0), ("a", 1), ("b", 0), ("b", 3), ("c", 2)]
    groups = scene_groups(scenes, [(("b", 3), ("a", 1)), (("c", 2), ("b", 3))])
    assert groups == {("a", 0): 0, ("a", 1): 1, ("b", 3): 1, ("c", 2): 1, ("b", 0): 2}
    splits = group_splits(groups, seed=0, fractions=SplitFractions())
    assert splits[1] == split_for(("a", 1), 0, SplitFractions())
    assert splits == group_splits(dict(reversed(list(groups.items()))), 0, SplitFractions())
    # a pin on any member binds the group: test over train over auto
    pinned = group_splits(groups, 0, SplitFractions(), pins={"c": "test", "b": "train"})
    assert pinned[1] == "test" and pinned[2] == split_for(("b", 0), 0, SplitFractions(), "train")
    assert pinned[0] == splits[0]
    assert unit_hash(("a", 1), 0) == unit_hash(("a", 1), 0) != unit_hash(("a", 1), 1)


def test_split_fractions_are_respected_over_many_groups():
    fractions = SplitFractions(train=0.7, val=0.2, test=0.1)
    got = pd.Series([split_for(("s", i), 3, fractions) for i in range(20000)]).value_counts(normalize=True)
    assert got["train"] == pytest.approx(0.7, abs=0.015)
    assert got["val"] == pytest.approx(0.2, abs=0.015)
    assert got["test"] == pytest.approx(0.1, abs=0.015)


# --- the stage on image-made tables -----------------------------------------------------

def reused_footage_tables(tmp_path):
    """Source "a": two scenes of motion; source "b": its own scene, then a copy of a's
    scene 1 with a grey-level of noise (reused footage, re-encoded)."""
    rng = np.random.default_rng(0)
    a0, a1 = moving_disk(11, 8, hold=2), moving_disk(12, 8, hold=3, step=9)
    b0 = moving_disk(13, 8, hold=2, step=7, x0=30)
    copy = [np.clip(f.astype(int) + rng.integers(-1, 2, f.shape), 0, 255).astype(np.uint8) for f in a1]
    frames = pd.concat([
        frames_from_images(a0 + a1, "a", scenes=[0] * len(a0) + [1] * len(a1)),
        frames_from_images(b0 + copy, "b", scenes=[0] * len(b0) + [1] * len(copy)),
    ], ignore_index=True)
    analysis = write_analysis(frames, tmp_path / "analysis")
    write_outputs(run_extract(analysis, TripletParams()), tmp_path / "triplets")
    return analysis, tmp_path / "triplets"


def test_reused_footage_in_another_source_is_a_near_duplicate_in_the_same_group(tmp_path):
    analysis, triplets = reused_footage_tables(tmp_path)
    out = run_filter(analysis, triplets, FilterParams()).filtered
    a1, b1 = out[(out.source == "a") & (out.scene == 1)], out[(out.source == "b") & (out.scene == 1)]
    assert len(a1) == len(b1) == 6
    assert a1["keep"].all() and (b1["reason"] == "near_duplicate").all()
    assert a1["group"].nunique() == 1 and set(b1["group"]) == set(a1["group"])
    assert set(b1["split"]) == set(a1["split"])
    others = out[out.scene == 0]
    assert others["keep"].all() and not set(others["group"]) & set(a1["group"])


def test_motion_thresholds_and_output_schema(tmp_path):
    analysis, triplets = reused_footage_tables(tmp_path)
    out = run_filter(analysis, triplets, FilterParams(min_motion=200.0, max_motion=255.0)).filtered
    assert (out["reason"] == "too_little_motion").all()
    out = run_filter(analysis, triplets, FilterParams(min_motion=0.0, max_motion=0.5)).filtered
    assert (out["reason"] == "too_much_motion").all()
    assert dict(out.dtypes) == {k: np.dtype(v) for k, v in FILTERED_COLUMNS.items()}
    assert (out[["motion01", "motion12"]] > 1).all().all()


def test_main_writes_the_table_and_sorted_metrics(tmp_path, capsys):
    analysis, triplets = reused_footage_tables(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text("sources:\n  - {name: s, kind: synthetic}\nfilter:\n  seed: 3\n")
    metrics = tmp_path / "metrics" / "data.json"
    raw = tmp_path / "raw"
    write_parquet(pd.DataFrame({"name": ["a", "b"], "split": ["auto", "test"]}), raw / SOURCES_TABLE)
    argv = ["--params", str(params), "--raw", str(raw), "--analysis", str(analysis),
            "--triplets", str(triplets), "--metrics", str(metrics)]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert line.startswith("filter: kept 18 of 24 triplets") and "near_duplicate: 6" in line
    text = metrics.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert data["frames"] == 80 and data["scenes"] == 4 and data["cuts"] == 2
    assert data["held_frames"] == data["frames"] - data["drawings"]
    assert all(isinstance(v, int) for v in data.values())  # flat: one key, one count
    removed = {k: v for k, v in data.items() if k.startswith("removed_")}
    assert data["kept"] + sum(removed.values()) == data["candidates"] == 24
    assert data["kept_train"] + data["kept_val"] + data["kept_test"] == data["kept"]
    table = pd.read_parquet(triplets / "filtered.parquet")
    assert len(table) == 24 and table["split"].isin(["train", "val", "test"]).all()
    assert set(table.loc[table["source"] == "b", "split"]) == {"test"}  # b's pin, from sources.parquet
    assert set(table.loc[table["scene"] == 1, "split"]) == {"test"}  # a's scene 1 is b's footage
    first = (triplets / "filtered.parquet").read_bytes()
    assert main(argv) == 0
    assert (triplets / "filtered.parquet").read_bytes() == first


def test_split_pins_must_cover_every_source_and_old_tables_are_refused(tmp_path):
    analysis, triplets = reused_footage_tables(tmp_path)
    with pytest.raises(ValueError, match="source.s. b have no split"):
        run_filter(analysis, triplets, FilterParams(), pins={"a": "auto"})
    raw = tmp_path / "raw"
    write_parquet(pd.DataFrame({"name": ["a", "b"], "license": ["x", "y"]}), raw / SOURCES_TABLE)
    with pytest.raises(ValueError, match="missing column.s. split .*re-run the download stage"):
        source_splits(raw)


# --- ground truth -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def truth_run(tmp_path_factory):
    """The synthetic set through extract_triplets and filter, with default params."""
    root = tmp_path_factory.mktemp("gt")
    data = synthetic_analysis(root, GROUND_TRUTH_SPEC)
    write_outputs(run_extract(data.analysis_dir, TripletParams()), root / "triplets")
    result = run_filter(data.analysis_dir, root / "triplets", FilterParams())
    print(f"\nground truth set: {result.metrics}")
    return data, with_truth(result.filtered, data.truth)


def has_frame(table: pd.DataFrame, prefix: str, test) -> pd.Series:
    return test(table[f"{prefix}0"]) | test(table[f"{prefix}1"]) | test(table[f"{prefix}2"])


def test_static_shots_give_no_kept_triplet(truth_run):
    data, out = truth_run
    static = has_frame(out, "static", lambda c: c.astype(bool))
    n_static = data.truth.loc[data.truth["is_static_shot"], "shot"].nunique()
    print(f"\n{n_static} static shots, {int(static.sum())} triplets touch one, {int((static & out.keep).sum())} kept")
    assert n_static >= 1
    assert not (static & out["keep"]).any()


def test_no_kept_triplet_contains_a_transition_frame(truth_run):
    data, out = truth_run
    trans = has_frame(out, "transition", lambda c: c != "")
    kinds = data.truth.loc[data.truth["transition"] != "", "transition"].value_counts().to_dict()
    clean = (out["shot0"] >= 0) & (out["shot0"] == out["shot2"]) & ~trans
    flagged = out[clean & (out["reason"] == "transition")]
    print(f"\ntransition frames {kinds}; {int(trans.sum())} triplets contain one, "
          f"kept {int((trans & out.keep).sum())}; clean one-shot triplets flagged transition "
          f"{len(flagged)} of {int(clean.sum())}")
    assert set(kinds) == {"dissolve", "flash"}
    assert trans.sum() > 0 and not (trans & out["keep"]).any()
    assert len(flagged) <= 0.01 * clean.sum()
    transition_frames = data.truth[data.truth["transition"] != ""].groupby("clip")["frame"].apply(np.array)
    for row in flagged.itertuples():          # only the dilation margin, never mid-shot
        gap = np.abs(transition_frames.get(row.source, np.array([10**9]))[:, None] - np.array([row.f0, row.f2])).min()
        assert gap <= 3, (row.source, row.f0, row.f2, gap)


def test_repeated_shots_are_near_duplicates_in_the_same_split(truth_run):
    data, out = truth_run
    in_repeat = (out["repeat_of0"] >= 0) & (out["shot0"] == out["shot2"])
    eligible = in_repeat & out["reason"].isin(["", "near_duplicate"])
    dup = eligible & (out["reason"] == "near_duplicate")
    wrong = (out["reason"] == "near_duplicate") & ~in_repeat
    print(f"\nrepeated-shot triplets {int(in_repeat.sum())}, not dropped earlier {int(eligible.sum())}, "
          f"near_duplicate {int(dup.sum())} ({dup.sum() / eligible.sum():.3f}); "
          f"near_duplicate outside repeats {int(wrong.sum())}")
    assert dup.sum() >= 0.95 * eligible.sum()
    assert wrong.sum() == 0
    split = out.groupby("shot0")["split"].agg(set)
    pairs = out.loc[in_repeat, ["shot0", "repeat_of0"]].drop_duplicates()
    checked = [(r.shot0, r.repeat_of0) for r in pairs.itertuples() if r.repeat_of0 in split.index]
    print(f"repeat/original shot pairs with triplets on both sides: {len(checked)}")
    assert checked
    for repeat, original in checked:
        assert split[repeat] == split[original], (repeat, original)


def test_t_is_exact_for_kept_triplets_of_known_timing(truth_run):
    _, out = truth_run
    kept = out[out["keep"]]
    consecutive = (kept["drawing1"] == kept["drawing0"] + 1) & (kept["drawing2"] == kept["drawing1"] + 1) \
        & (kept["shot0"] == kept["shot2"]) & (kept["shot0"] >= 0)
    known = kept[consecutive]
    t_truth = (known["start1"] - known["start0"]) / (known["start2"] - known["start0"])
    exact = np.isclose(known["t"], t_truth)
    print(f"\nkept {len(kept)}; three consecutive truth drawings {len(known)}; t exact {int(exact.sum())} "
          f"({exact.mean():.4f}); t values {sorted(set(np.round(known['t'], 3)))}")
    assert len(known) >= 0.95 * len(kept)
    assert exact.mean() >= 0.99


def test_a_source_without_triplets_gives_empty_typed_outputs(tmp_path):
    still = [texture(14)[:H, :W]] * 10                       # one static shot: one drawing
    analysis = write_analysis(frames_from_images(still, "s"), tmp_path / "analysis")
    extracted = run_extract(analysis, TripletParams())
    write_outputs(extracted, tmp_path / "triplets")
    assert len(extracted.drawings) == 1 and len(extracted.candidates) == 0
    result = run_filter(analysis, tmp_path / "triplets", FilterParams())
    assert len(result.filtered) == 0
    assert list(result.filtered.columns) == list(FILTERED_COLUMNS)
    assert result.metrics["frames"] == 10 and result.metrics["held_frames"] == 9
    assert result.metrics["kept"] == 0 and result.metrics["groups"] == 0


# --- the removed-triplets sheet (reports/removed.png) ------------------------------------

def removed_table() -> pd.DataFrame:
    """Four removed rows per reason over two sources, plus kept rows, with the measures."""
    rows = []
    for k, reason in enumerate(REASONS + ("",) * 2):
        for i in range(4):
            f0 = 100 * k + 10 * i
            rows.append({"source": "ab"[i % 2], "f0": f0, "f1": f0 + 2, "f2": f0 + 4, "span": 4,
                         "keep": reason == "", "reason": reason,
                         "phash0": 0b1011, "phash2": 0b0001, "dhash0": 7, "dhash2": 7,
                         "motion01": 0.5 + i, "motion12": 3.0 + i,
                         "fade_ratio": 0.12 if i < 2 else np.nan, "unexplained": 0.8})
    return pd.DataFrame(rows).astype({f"{h}{k}": np.uint64 for h in ("phash", "dhash") for k in (0, 2)})


def colour_of(source: str, frame: int) -> tuple[int, int, int]:
    return (frame % 251, 40 if source == "a" else 200, (frame // 251) * 10)


def fake_reader(calls: list, missing: int = -1):
    """Frames of one flat colour each, so the sheet's cells can be traced to frames."""
    def read(source: str, frames: list[int]) -> dict[int, np.ndarray]:
        calls.append((source, list(frames)))
        return {f: np.full((48, 64, 3), colour_of(source, f), np.uint8) for f in frames if f != missing}
    return read


def test_pick_removed_takes_up_to_n_per_reason_in_filter_order_deterministically():
    table = removed_table()
    picked = pick_removed(table, 2, seed=0)
    assert picked["reason"].tolist() == [r for r in REASONS for _ in range(2)]
    assert not picked["keep"].any()
    assert picked.equals(pick_removed(table.sample(frac=1, random_state=3), 2, seed=0).loc[picked.index])
    assert not picked.index.equals(pick_removed(table, 2, seed=1).index)
    assert len(pick_removed(table, 10, seed=0)) == 4 * len(REASONS)     # all there are, no more
    other = pick_removed(table.assign(reason=table["reason"].replace("static", "blurry")), 2, 0)
    assert other["reason"].tolist()[-2:] == ["blurry", "blurry"]  # shown last, never hidden


def test_pick_removed_keeps_its_picks_when_a_source_is_added():
    """A new source only competes for the sheet: every row picked after it is added was
    picked before or is the new source's, so the shard stage decodes no old frame again."""
    table = removed_table()
    old = table[table["source"] == "a"]
    before = pick_removed(old, 2, seed=0)
    after = pick_removed(table, 2, seed=0)
    from_old = after[after["source"] == "a"]
    assert set(from_old.index) <= set(before.index)
    assert (after["source"] != "a").any()  # the new source took some places


def test_decided_by_names_the_measure_of_each_reason():
    table = removed_table()
    got = {r["reason"]: decided_by(r) for _, r in table[table["f0"] % 100 == 0].iterrows() if r["reason"]}
    assert got == {"too_long_span": "span 4 frames",
                   "static": "f0-f2 phash 2 / dhash 0 bits",
                   "transition": "fade/motion residual 0.12",
                   "unexplained": "middle unexplained by its ends 0.80",
                   "too_little_motion": "motion 0.50 (smaller step)",
                   "too_much_motion": "motion 3.0 (larger step)",
                   "near_duplicate": "phash key near an earlier kept triplet"}
    flash = table[(table["reason"] == "transition") & table["fade_ratio"].isna()].iloc[0]
    assert decided_by(flash) == "flash or blank frame"
    assert caption(flash) == f"{flash['source']}  frames {flash['f0']}/{flash['f1']}/{flash['f2']}  " \
                             "transition: flash or blank frame"


def test_removed_sheet_shows_the_picked_frames_once_per_source_and_is_deterministic():
    table = removed_table()
    picked = pick_removed(table, 2, seed=5)
    calls: list = []
    missing = int(picked["f1"].iloc[0])
    sheet = removed_sheet(table, fake_reader(calls, missing), per_reason=2, seed=5, height=32)
    assert [c[0] for c in calls] == sorted(picked["source"].unique())         # one read per source
    assert dict(calls) == wanted_frames(table, 2, seed=5)                     # what shard must decode
    for source, frames in calls:
        mine = picked[picked["source"] == source]
        assert frames == sorted({int(v) for k in range(3) for v in mine[f"f{k}"]})
    pixels = np.asarray(sheet).reshape(-1, 3)
    colours = {tuple(int(v) for v in p) for p in np.unique(pixels, axis=0)}
    for row in picked.itertuples():
        for f in (row.f0, row.f1, row.f2):
            assert (colour_of(row.source, f) in colours) == (f != missing), (row.source, f)
    assert (200, 200, 200) in colours                                         # the "not decoded" cell
    again = removed_sheet(table, fake_reader([], missing), per_reason=2, seed=5, height=32)
    assert again.tobytes() == sheet.tobytes()
    assert sheet.height > 2 * len(REASONS) * 32                               # a row per picked triplet


def test_write_removed_sheet_writes_a_png(tmp_path):
    path = write_removed_sheet(removed_table(), fake_reader([]), tmp_path / "reports" / "removed.png", 1, 0)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 3 * 64
