"""vfi.data: shards -> float tensor triplets; crops, workers, resampling."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.config import ShardParams
from pipeline.manifest import iter_tar_samples
from pipeline.shard import run_shard
from tests.shard_inputs import build_shard_inputs
from vfi.data import shards_for_split, triplet_dataset, triplet_loader

H, W = 64, 86


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = build_shard_inputs(tmp_path_factory.mktemp("inputs"), clips=2)
    out = tmp_path_factory.mktemp("shards")
    run_shard(ShardParams(size=64, maxcount=4), inputs.raw_dir, inputs.triplets_dir, out)
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
    samples = list(triplet_dataset(shards_for_split(shards, "train"), shuffle=0))
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


def test_crop_is_the_same_window_in_all_three_frames(shards: Path):
    urls = shards_for_split(shards, "val")
    full = {s["key"]: s for s in triplet_dataset(urls, shuffle=0)}
    cropped = list(triplet_dataset(urls, shuffle=0, crop=(32, 40), seed=3))
    assert len({s["crop"] for s in cropped}) > 1  # windows move between samples
    for s in cropped:
        top, left = s["crop"]
        for k in range(3):
            assert s[f"f{k}"].shape == (3, 32, 40)
            assert torch.equal(s[f"f{k}"], full[s["key"]][f"f{k}"][:, top:top + 32, left:left + 40])
    again = list(triplet_dataset(urls, shuffle=0, crop=(32, 40), seed=3))
    assert [s["crop"] for s in again] == [s["crop"] for s in cropped]


def test_crop_larger_than_the_frames_is_an_error(shards: Path):
    with pytest.raises(ValueError, match="larger than sample"):
        next(iter(triplet_dataset(shards_for_split(shards, "val"), shuffle=0, crop=100)))


def test_two_workers_yield_each_sample_once(shards: Path):
    urls = shards_for_split(shards, "val")
    loader = triplet_loader(urls, batch_size=3, num_workers=2, shuffle=5, seed=1)
    keys = [k for batch in loader for k in batch["key"]]
    want = pd.read_parquet(shards / "manifest.parquet").query("split == 'val'")["key"]
    assert sorted(keys) == sorted(want)


def test_batches_stack(shards: Path):
    loader = triplet_loader(shards_for_split(shards, "train"), batch_size=4, crop=32)
    batch = next(iter(loader))
    assert batch["f0"].shape == (4, 3, 32, 32) and batch["t"].shape == (4,)
    assert len(batch["key"]) == len(batch["meta"]) == 4


def test_resampled_epochs(shards: Path):
    ds = triplet_dataset(shards_for_split(shards, "test"), resampled=True, epoch_samples=25,
                         shuffle=10)
    assert len(list(ds)) == 25
