"""Shards -> float tensor triplets: the ordered reader (evaluation, validation) and the
one training stream (``vfi.training.samples.train_samples``) built on it."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from support.shard_inputs import build_shard_inputs

from pipeline.core.config import ShardParams
from pipeline.dataset.manifest import iter_tar_samples, shards_for_split
from pipeline.dataset.shards import run_shard
from vfi.config import TrainParams
from vfi.inference.triplets import collate_triplets, read_triplets
from vfi.training.samples import train_samples

H, W = 64, 86


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = build_shard_inputs(tmp_path_factory.mktemp("inputs"), clips=2)
    out = tmp_path_factory.mktemp("shards")
    run_shard(ShardParams(short_side=64, maxcount=4), inputs.raw_dir, inputs.triplets_dir, out)
    return out


def png_pixels(shards: Path) -> dict[str, list[np.ndarray]]:
    return {key: [np.asarray(Image.open(io.BytesIO(m[f"f{k}.png"]))) for k in range(3)]
            for tar in sorted(shards.rglob("*.tar")) for key, m in iter_tar_samples(tar)}


def test_shards_for_split_reads_the_index_or_globs(shards: Path, tmp_path: Path):
    table = pd.read_parquet(shards / "shards.parquet")
    want = [str(shards / s) for s in table.loc[table["split"] == "val", "shard"]]
    assert shards_for_split(shards, "val") == want and len(want) >= 2
    shutil.copytree(shards, tmp_path / "copy")
    (tmp_path / "copy" / "val.json").unlink()
    assert shards_for_split(tmp_path / "copy", "val") == [w.replace(str(shards), str(tmp_path / "copy"))
                                                        for w in want]


def test_samples_are_float_tensors_of_the_stored_pixels(shards: Path):
    pixels = png_pixels(shards)
    samples = list(read_triplets(shards_for_split(shards, "train")))
    assert len(samples) == int((pd.read_parquet(shards / "manifest.parquet")["split"] == "train").sum())
    for s in samples:
        for k in range(3):
            f = s[f"f{k}"]
            assert f.dtype == torch.float32 and f.shape == (3, H, W)
            assert 0.0 <= f.min() and f.max() <= 1.0
            want = torch.from_numpy(pixels[s["key"]][k].copy()).permute(2, 0, 1).float() / 255
            torch.testing.assert_close(f, want, rtol=0, atol=1e-6)
        assert s["t"].dtype == torch.float32 and s["t"].item() == pytest.approx(s["meta"]["t"])
        assert s["meta"]["key"] == s["key"]


def stream_params(**kw: object) -> TrainParams:
    """Plain crops (one try: no motion search), no flips or reversal, unless asked."""
    base = {"crop": 32, "crop_tries": 1, "flip": False, "reverse": False, "shuffle": 5}
    return TrainParams(**{**base, **kw})


def take(stream, n: int) -> list[dict]:
    return [next(stream) for _ in range(n)]


def test_training_crops_cut_the_same_window_from_all_three_frames(shards: Path):
    urls = shards_for_split(shards, "val")
    full = {s["key"]: s for s in read_triplets(urls)}
    cropped = take(train_samples(urls, stream_params(crop=40, seed=3)), 12)
    assert len({s["crop"] for s in cropped}) > 1  # windows move between samples
    for s in cropped:
        top, left = s["crop"]
        for k in range(3):
            assert s[f"f{k}"].shape == (3, 40, 40)
            assert torch.equal(s[f"f{k}"], full[s["key"]][f"f{k}"][:, top:top + 40, left:left + 40])


def test_training_stream_is_seeded_and_endless(shards: Path):
    urls = shards_for_split(shards, "test")
    n = 3 * int((pd.read_parquet(shards / "manifest.parquet")["split"] == "test").sum())
    a = take(train_samples(urls, stream_params(seed=1)), n)  # longer than the split
    b = take(train_samples(urls, stream_params(seed=1)), n)
    c = take(train_samples(urls, stream_params(seed=2)), n)
    assert [(s["key"], s["crop"]) for s in a] == [(s["key"], s["crop"]) for s in b]
    assert [(s["key"], s["crop"]) for s in a] != [(s["key"], s["crop"]) for s in c]


def test_resumed_stream_is_the_tail_of_the_full_one(shards: Path):
    urls = shards_for_split(shards, "train")
    params = stream_params(flip=True, reverse=True)
    full = take(train_samples(urls, params), 10)
    tail = take(train_samples(urls, params, start=4), 6)
    for x, y in zip(full[4:], tail):
        assert x["key"] == y["key"] and torch.equal(x["f0"], y["f0"]) and x["t"] == y["t"]


def test_crop_taller_than_the_frames_pads_them_and_marks_the_picture(shards: Path):
    """A 96 crop of 64 x 86 frames: the whole height and width, replicate-padded to 96,
    with ``valid`` 1 exactly on the picture; frames that fit carry no ``valid``."""
    urls = shards_for_split(shards, "val")
    full = {s["key"]: s for s in read_triplets(urls)}
    for s in take(train_samples(urls, stream_params(crop=96)), 4):
        assert s["crop"] == (0, 0)
        want = full[s["key"]]["f1"]
        assert s["f1"].shape == (3, 96, 96) and s["valid"].shape == (1, 96, 96)
        assert torch.equal(s["f1"][:, :H, :W], want)
        assert torch.equal(s["f1"][:, H:, :W], want[:, -1:].expand(3, 96 - H, W))  # replicate
        assert torch.equal(s["f1"][:, :H, W:], want[:, :, -1:].expand(3, H, 96 - W))
        assert s["valid"][:, :H, :W].eq(1).all() and s["valid"].sum() == H * W
    assert all("valid" not in s for s in take(train_samples(urls, stream_params()), 4))


def test_flips_move_the_padding_with_the_picture(shards: Path):
    urls = shards_for_split(shards, "val")
    full = {s["key"]: s for s in read_triplets(urls)}
    seen = set()
    for s in take(train_samples(urls, stream_params(crop=80, flip=True)), 12):
        rows, cols = s["valid"][0].any(1).nonzero(), s["valid"][0].any(0).nonzero()
        top, left = int(rows.min()), int(cols.min())
        assert (int(rows.max()) - top + 1, int(cols.max()) - left + 1) == (H, 80)
        picture = s["f0"][:, top:top + H, left:left + 80]
        original = full[s["key"]]["f0"]
        assert any(torch.equal(picture, original[:, :, c:c + 80].flip(dims))
                   for c in range(W - 80 + 1) for dims in ((), (-1,), (-2,), (-2, -1)))
        seen.add(top)
    assert seen == {0, 80 - H}  # the padding below the picture, and above it when flipped


def test_batches_stack(shards: Path):
    batch = collate_triplets(take(train_samples(shards_for_split(shards, "train"),
                                                stream_params()), 4))
    assert batch["f0"].shape == (4, 3, 32, 32) and batch["t"].shape == (4,)
    assert len(batch["key"]) == len(batch["meta"]) == 4


def test_a_batch_with_a_padded_crop_stacks_valid_for_every_sample(shards: Path):
    padded = take(train_samples(shards_for_split(shards, "train"), stream_params(crop=72)), 1)[0]
    fits = {**padded, **{k: torch.rand(3, 72, 72) for k in ("f0", "f1", "f2")}}
    del fits["valid"]
    batch = collate_triplets([padded, fits])
    assert batch["valid"].shape == (2, 1, 72, 72)
    assert torch.equal(batch["valid"][0], padded["valid"]) and batch["valid"][1].eq(1).all()
    assert "valid" not in collate_triplets([fits, fits])


def test_ordered_reader_repeats_itself(shards: Path):
    urls = shards_for_split(shards, "val")
    keys = [s["key"] for s in read_triplets(urls)]
    want = pd.read_parquet(shards / "manifest.parquet").query("split == 'val'")["key"]
    assert keys == [s["key"] for s in read_triplets(urls)] and sorted(keys) == sorted(want)
