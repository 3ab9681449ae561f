"""The naive-triplet control (``vfi.training.naive``) against the synthetic truth.

The real data stages (download -> detect_cuts -> extract_triplets -> filter -> shard)
run on two small synthetic clips; the naive set built from their outputs is checked
against what the truth and the per-frame table say it must be: every window of three
consecutive frames whose middle frame's scene is in train, cuts and holds included,
the shard's pixels for the same frames, and a seeded, resumable stream.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from support.naive_data import FILTER, SIZE, Data, build_naive_data
from support.videos import write_corrupt_payload, write_zero_byte

from pipeline.core.atomic import write_parquet
from pipeline.core.tables import FILTERED_TABLE, source_splits
from pipeline.curation import curate as filter_stage
from pipeline.dataset.manifest import shards_for_split
from vfi.config import TrainParams
from vfi.inference.triplets import collate_triplets, read_triplets
from vfi.training.distributed import World
from vfi.training.naive import NaiveSet, naive_samples, naive_triplets
from vfi.training.samples import train_samples


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return build_naive_data(tmp_path_factory.mktemp("naive"))


def scene_split(data: Data) -> dict[tuple[str, int], str]:
    return {(s, int(c)): v for s, c, v in
            data.filtered[["source", "scene", "split"]].drop_duplicates().itertuples(index=False)}


def expected_windows(data: Data, splits: dict[tuple[str, int], str] | None = None) -> set:
    """(source, f0) of every window whose middle frame's scene is in train, from the
    per-frame table (not the scene ranges the builder reads)."""
    splits = splits or scene_split(data)
    out = set()
    for source, frames in data.frames.groupby("source"):
        scene = frames.sort_values("frame")["scene"].to_numpy()
        assert len(scene) == int((data.truth["clip"] == source).sum())  # all decoded
        out |= {(source, f0) for f0 in range(len(scene) - 2)
                if splits[(source, int(scene[f0 + 1]))] == "train"}
    return out


def windows(naive: NaiveSet) -> set:
    return {(naive.sources[w.source].name, w.f0) for w in naive.windows}


def test_the_fixture_has_train_and_held_out_scenes(data: Data):
    splits = set(scene_split(data).values())
    assert "train" in splits and splits - {"train"}, splits


def test_every_consecutive_window_of_train_scenes_and_no_other(data: Data):
    want = expected_windows(data)
    assert len(data.naive) == len(want) and windows(data.naive) == want
    assert len({w.key for w in data.naive.windows}) == len(data.naive)
    splits = scene_split(data)
    scene_of = {(r.source, int(r.frame)): int(r.scene) for r in data.frames.itertuples()}
    for w in data.naive.windows:
        name = data.naive.sources[w.source].name
        assert splits[(name, scene_of[(name, w.f0 + 1)])] == "train"
        assert w.scene == scene_of[(name, w.f0 + 1)]


def test_frames_are_stored_once(data: Data):
    used = {(data.naive.sources[w.source].name, w.f0 + k) for w in data.naive.windows
            for k in range(3)}
    assert data.naive.frames == len(used) < 3 * len(data.naive)


def test_windows_across_a_cut_are_included(data: Data):
    cuts = data.truth[data.truth["is_cut_start"]]
    train = expected_windows(data)
    across = {(c, f0) for c, k in zip(cuts["clip"], cuts["frame"]) for f0 in (k - 2, k - 1)
              if (c, f0) in train}
    assert across and across <= windows(data.naive)


def test_holds_are_not_collapsed(data: Data):
    drawing = {(r.clip, int(r.frame)): int(r.drawing) for r in data.truth.itertuples()}
    held, equal = 0, 0
    for i, w in enumerate(data.naive.windows):
        name = data.naive.sources[w.source].name
        if drawing[(name, w.f0)] >= 0 and drawing[(name, w.f0)] == drawing[(name, w.f0 + 1)]:
            held += 1
            s = data.naive.triplet(i)
            equal += torch.equal(s["f0"], s["f1"])
    assert held > 0 and equal > 0
    assert all(data.naive.triplet(i)["t"].item() == 0.5 for i in range(len(data.naive)))


def test_pixels_equal_the_shards_for_the_same_frames(data: Data):
    naive = {}
    for i, w in enumerate(data.naive.windows):
        s = data.naive.triplet(i)
        for k in range(3):
            naive[(s["meta"]["source"], w.f0 + k)] = s[f"f{k}"]
    compared, whole = 0, 0
    for s in read_triplets(shards_for_split(data.root / "shards", "train")):
        frames = s["meta"]["frames"]
        for k, frame in enumerate(frames):
            got = naive[(s["meta"]["source"], frame)]  # a train frame is in some window
            assert got.dtype == s[f"f{k}"].dtype and torch.equal(got, s[f"f{k}"])
            compared += 1
        if frames == [frames[0], frames[0] + 1, frames[0] + 2]:
            whole += 1
    assert compared > 0
    print(f"{compared} shard frames equal, {whole} whole consecutive triplets")


def test_a_scene_without_candidates_gets_the_filters_split(data: Data, tmp_path: Path):
    """Drop every candidate of one held-out and one train scene: the windows stay."""
    splits = scene_split(data)
    drop = {next(k for k, v in splits.items() if v != "train"),
            next(k for k, v in splits.items() if v == "train")}
    root = tmp_path / "copy"
    for name in ("raw", "analysis"):
        shutil.copytree(data.root / name, root / name)
    keys = list(zip(data.filtered["source"], data.filtered["scene"].astype(int)))
    write_parquet(data.filtered[[k not in drop for k in keys]].reset_index(drop=True),
                  root / "triplets" / FILTERED_TABLE)
    again = naive_triplets(*data.dirs(root), SIZE, filter_params=FILTER)
    assert windows(again) == windows(data.naive)


def stream_params(**kw: object) -> TrainParams:
    base = {"crop": 32, "crop_tries": 2, "flip": True, "reverse": True}
    return TrainParams(**{**base, **kw})


def take(stream, n: int) -> list[dict]:
    return [next(stream) for _ in range(n)]


def test_stream_is_seeded_resumable_and_like_the_shard_stream(data: Data):
    params = stream_params(seed=3)
    full = take(naive_samples(data.naive, params), 12)
    tail = take(naive_samples(data.naive, params, start=5), 7)
    for x, y in zip(full[5:], tail):
        assert x["key"] == y["key"] and x["crop"] == y["crop"] and x["t"] == y["t"]
        assert all(torch.equal(x[f"f{k}"], y[f"f{k}"]) for k in range(3))
    other = take(naive_samples(data.naive, stream_params(seed=4)), 12)
    assert [s["key"] for s in full] != [s["key"] for s in other]
    assert len({s["key"] for s in full}) > 6  # drawn over the set, not one window
    assert {s["t"].item() for s in full} <= {0.5}  # reversal of 0.5 is 0.5
    shard = next(train_samples(shards_for_split(data.root / "shards", "train"), params))
    assert set(full[0]) == set(shard) and full[0]["f0"].shape == shard["f0"].shape
    batch = collate_triplets(full[:4])
    assert batch["f0"].shape == (4, 3, 32, 32) and batch["t"].shape == (4,)


def test_ranks_draw_from_disjoint_parts(data: Data):
    keys = [w.key for w in data.naive.windows]
    params = stream_params()
    for rank in (0, 1):
        got = {s["key"] for s in take(naive_samples(data.naive, params,
                                                    world=World(rank=rank, size=2)), 10)}
        assert got <= set(keys[rank::2])


def test_a_broken_source_is_skipped_and_the_others_go_on(data: Data, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture):
    root = tmp_path / "copy"
    for name in ("raw", "analysis", "triplets"):
        shutil.copytree(data.root / name, root / name)
    names = sorted(s.name for s in data.naive.sources)
    write_zero_byte(root / "raw" / f"{names[0]}.mp4")
    with caplog.at_level(logging.WARNING, logger="inbetweener"):
        got = naive_triplets(*data.dirs(root), SIZE, filter_params=FILTER)
    assert got.skipped == {names[0]: "empty file"}
    assert any(names[0] in r.getMessage() and "empty file" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    assert windows(got) == {w for w in windows(data.naive) if w[0] != names[0]}
    video = data.root / "raw" / f"{names[1]}.mp4"
    write_corrupt_payload(video, root / "raw" / video.name)  # opens, decodes nothing
    with pytest.raises(ValueError, match=f"no naive train window.*{names[0]}: empty file"):
        naive_triplets(*data.dirs(root), SIZE, filter_params=FILTER)


def test_a_source_pinned_to_test_gives_no_window(data: Data, tmp_path: Path):
    """The pin reaches every scene of the source, candidates or not; a filtered table
    older than the pin is refused rather than read (it could leak test footage)."""
    root = tmp_path / "copy"
    for name in ("raw", "analysis", "triplets"):
        shutil.copytree(data.root / name, root / name)
    pinned = sorted(s.name for s in data.naive.sources)[0]
    sources = pd.read_parquet(root / "raw" / "sources.parquet")
    sources.loc[sources["name"] == pinned, "split"] = "test"
    write_parquet(sources, root / "raw" / "sources.parquet")
    with pytest.raises(ValueError, match=f"of {pinned} is in train .* re-run the filter"):
        naive_triplets(*data.dirs(root), SIZE, filter_params=FILTER)
    filtered = filter_stage.run_filter(root / "analysis", root / "triplets", FILTER,
                                       pins=source_splits(root / "raw")).filtered
    keys = list(zip(filtered["source"], filtered["scene"].astype(int)))
    # a scene without candidates, and one the hash alone would send to train
    lone = next(k for k, v in scene_split(data).items() if k[0] == pinned and v == "train")
    write_parquet(filtered[[k != lone for k in keys]].reset_index(drop=True),
                  root / "triplets" / FILTERED_TABLE)
    got = naive_triplets(*data.dirs(root), SIZE, filter_params=FILTER)
    assert windows(got) == {w for w in windows(data.naive) if w[0] != pinned}
