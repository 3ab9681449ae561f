"""The shard stage's WebDataset triplets as float tensors, read in shard order.

A sample becomes ``{"f0", "f1", "f2": float32 C x H x W in [0, 1], "t": float32 scalar,
"key": str, "meta": dict}`` (``meta`` is the sample's json: source, license, frame
indices, timestamps, hashes, split...). Evaluation and training's validation read
triplets this way; training's endless, shuffled, augmented stream
(:mod:`vfi.training.samples`) is built from the same :func:`to_triplet`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import webdataset as wds

from vfi.errors import InputError

FRAME_NAMES = ("f0", "f1", "f2")


def to_triplet(sample: dict[str, Any]) -> dict[str, Any]:
    """A decoded webdataset sample -> the triplet dict (frame extension-agnostic)."""
    frames = {}
    for name, value in sample.items():
        stem = name.split(".", 1)[0]
        if stem in FRAME_NAMES and isinstance(value, torch.Tensor):
            frames[stem] = value
    missing = [n for n in FRAME_NAMES if n not in frames]
    if missing or "json" not in sample:
        raise InputError(f"sample {sample.get('__key__')} from {sample.get('__url__')}: "
                         f"missing {missing or ['json']}")
    meta = sample["json"]
    return {**frames, "t": torch.tensor(float(meta["t"]), dtype=torch.float32),
            "key": sample["__key__"], "meta": meta}


def decoded(stages: list[Any]) -> wds.DataPipeline:
    """``stages`` (shards to raw samples) followed by decoding to triplet dicts."""
    return wds.DataPipeline(*stages, wds.decode("torchrgb"), wds.map(to_triplet))


def read_triplets(urls: str | Sequence[str | Path]) -> Iterator[dict[str, Any]]:
    """Every triplet of ``urls``, in shard order and member order (no shuffling): the
    same samples, in the same order, at every call."""
    urls = [urls] if isinstance(urls, str) else [str(u) for u in urls]
    if not urls:
        raise InputError("no shards given")
    return iter(decoded([wds.SimpleShardList(urls), wds.tarfile_to_samples()]))


def collate_triplets(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack frames (B x C x H x W) and t (B); keys and metas stay lists; classical
    flows (``flow``) too when the samples carry them, and ``valid`` (B x 1 x H x W, the
    picture under a training crop's padding) when any does (ones for the others)."""
    out: dict[str, Any] = {name: torch.stack([s[name] for s in batch]) for name in FRAME_NAMES}
    out["t"] = torch.stack([s["t"] for s in batch])
    out["key"] = [s["key"] for s in batch]
    out["meta"] = [s["meta"] for s in batch]
    if "flow" in batch[0]:
        out["flow"] = torch.stack([s["flow"] for s in batch])
    if any("valid" in s for s in batch):
        ones = batch[0]["f0"].new_ones(1, *batch[0]["f0"].shape[-2:])
        out["valid"] = torch.stack([s.get("valid", ones) for s in batch])
    return out
