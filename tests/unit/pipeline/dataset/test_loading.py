"""An export loads the ways users load WebDataset data: Hugging Face ``datasets`` (by the
card's front matter), ``wids`` (by the ``{split}.json`` index) and plain ``webdataset``,
each giving exactly the samples the manifest lists, with the pixels the tars hold."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never ask the hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402  (after the offline switches)
import webdataset as wds  # noqa: E402
import wids  # noqa: E402
from support.shard_inputs import build_shard_inputs  # noqa: E402

from pipeline.core.config import ShardParams  # noqa: E402
from pipeline.dataset.manifest import iter_tar_samples  # noqa: E402
from pipeline.dataset.shards import run_shard  # noqa: E402
from pipeline.dataset.subset import hub_license, run_export  # noqa: E402


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = build_shard_inputs(tmp_path_factory.mktemp("inputs"), clips=2)
    shards = tmp_path_factory.mktemp("shards")
    run_shard(ShardParams(maxcount=8), inputs.raw_dir, inputs.triplets_dir, shards)
    out = tmp_path_factory.mktemp("export") / "export"
    run_export(shards, "", ["train", "val", "test"], out, maxcount=8)
    return out


def manifest_keys(export: Path, split: str) -> list[str]:
    manifest = pd.read_parquet(export / "manifest.parquet")
    return sorted(manifest.loc[manifest["split"] == split, "key"])


def tar_members(export: Path, split: str) -> dict[str, dict[str, bytes]]:
    return {key: members for tar in sorted((export / split).glob("*.tar"))
            for key, members in iter_tar_samples(tar)}


def front_matter(export: Path) -> dict:
    text = (export / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_front_matter_names_licences_task_and_splits(export: Path) -> None:
    meta = front_matter(export)
    manifest = pd.read_parquet(export / "manifest.parquet")
    assert meta["license"] == sorted({hub_license(x) for x in manifest["license"]})
    assert meta["task_categories"] == ["image-to-image"]
    files = {f["split"]: f["path"] for f in meta["configs"][0]["data_files"]}
    assert files == {s: f"{s}/*.tar" for s in sorted(set(manifest["split"]))}


@pytest.mark.parametrize(("text", "hub"), [("CC BY-SA 3.0", "cc-by-sa-3.0"), ("CC BY 4.0", "cc-by-4.0"),
                                           ("CC0-1.0", "cc0-1.0"), ("MIT", "mit"),
                                           ("public domain", "other"), ("", "unknown")])
def test_hub_licence_identifiers(text: str, hub: str) -> None:
    assert hub_license(text) == hub


def test_datasets_loads_the_export_folder(export: Path, tmp_path: Path) -> None:
    """``datasets.load_dataset(DIR)``, as the card shows it: every split, every sample
    of the manifest once, frames as pictures equal to the tar's PNGs."""
    loaded = datasets.load_dataset(str(export), cache_dir=str(tmp_path / "hf"))
    manifest = pd.read_parquet(export / "manifest.parquet")
    assert set(loaded) == set(manifest["split"])
    for split, part in loaded.items():
        assert sorted(part["__key__"]) == manifest_keys(export, split)
    row = loaded["test"][0]
    members = tar_members(export, "test")[row["__key__"]]
    png = np.asarray(Image.open(io.BytesIO(members["f1.png"])))
    assert np.array_equal(np.asarray(row["f1.png"]), png)
    assert row["json"]["t"] == json.loads(members["json"])["t"]


def test_wids_reads_the_split_index(export: Path, tmp_path: Path) -> None:
    """Random access by the ``{split}.json`` index, as wids users load it."""
    ds = wids.ShardListDataset(str(export / "test.json"), cache_dir=str(tmp_path / "wids"))
    keys = manifest_keys(export, "test")
    assert len(ds) == len(keys)
    got = [ds[i] for i in range(len(ds))]
    assert sorted(s["__key__"] for s in got) == keys
    members = tar_members(export, "test")
    sample = got[-1]
    png = Image.open(io.BytesIO(members[sample["__key__"]]["f2.png"]))
    assert np.array_equal(np.asarray(sample[".f2.png"]), np.asarray(png))


def test_plain_webdataset_streams_each_split(export: Path) -> None:
    for split in ("train", "val", "test"):
        urls = [str(p) for p in sorted((export / split).glob("*.tar"))]
        keys = [s["__key__"] for s in wds.WebDataset(urls, shardshuffle=False)]
        assert sorted(keys) == manifest_keys(export, split)
