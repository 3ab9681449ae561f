"""Training data: the shard stage's WebDataset triplets as float tensors.

A sample becomes ``{"f0", "f1", "f2": float32 C x H x W in [0, 1], "t": float32 scalar,
"key": str, "meta": dict}`` (``meta`` is the sample's json: source, license, frame
indices, timestamps, hashes, split...). The pipeline is webdataset's own: shard list
(or ``ResampledShards`` for endless sampling with replacement), split by node and by
DataLoader worker, tar to samples, a shuffle buffer, decode to tensors ("torchrgb"),
then an optional random crop taken at the same place in all three frames.

Randomness is seeded: the shuffle by ``seed`` and the epoch, the crop by ``seed``, the
epoch, the node rank and the worker id, so two workers never crop alike and a re-run
with the same seed sees the same crops.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from pipeline.manifest import index_name, read_wids_index

FRAME_NAMES = ("f0", "f1", "f2")
INITIAL_SHUFFLE = 100  # samples buffered before the first one comes out


def shards_for_split(shards_dir: str | Path, split: str) -> list[str]:
    """Shard paths of one split: from its wids index when there is one, else a glob."""
    shards_dir = Path(shards_dir)
    index = shards_dir / index_name(split)
    if index.is_file():
        return [str(shards_dir / s["url"]) for s in read_wids_index(index)["shardlist"]]
    return [str(p) for p in sorted((shards_dir / split).glob(f"{split}-*.tar"))]


def to_triplet(sample: dict[str, Any]) -> dict[str, Any]:
    """A decoded webdataset sample -> the triplet dict (frame extension-agnostic)."""
    frames = {}
    for name, value in sample.items():
        stem = name.split(".", 1)[0]
        if stem in FRAME_NAMES and isinstance(value, torch.Tensor):
            frames[stem] = value
    missing = [n for n in FRAME_NAMES if n not in frames]
    if missing or "json" not in sample:
        raise ValueError(f"sample {sample.get('__key__')} from {sample.get('__url__')}: "
                         f"missing {missing or ['json']}")
    meta = sample["json"]
    return {**frames, "t": torch.tensor(float(meta["t"]), dtype=torch.float32),
            "key": sample["__key__"], "meta": meta}


def crop_triplet(sample: dict[str, Any], size: tuple[int, int], rng: random.Random
                 ) -> dict[str, Any]:
    """The same random ``(height, width)`` window cut from f0, f1 and f2."""
    height, width = sample["f0"].shape[-2:]
    ch, cw = size
    if ch > height or cw > width:
        raise ValueError(f"crop {ch}x{cw} is larger than sample {sample['key']} ({height}x{width})")
    top, left = rng.randint(0, height - ch), rng.randint(0, width - cw)
    out = dict(sample)
    for name in FRAME_NAMES:
        out[name] = sample[name][..., top:top + ch, left:left + cw]
    out["crop"] = (top, left)
    return out


class RandomCrop(wds.PipelineStage):
    """A pipeline stage cropping every triplet; its generator is reseeded per epoch."""

    def __init__(self, size: int | tuple[int, int], seed: int = 0) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if min(self.size) <= 0:
            raise ValueError(f"crop size must be positive, got {size}")
        self.seed = seed
        self.epoch = -1

    def run(self, src: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        self.epoch += 1
        rank, _, worker, _ = wds.utils.pytorch_worker_info()
        rng = random.Random(f"{self.seed}:{self.epoch}:{rank}:{worker}")
        for sample in src:
            yield crop_triplet(sample, self.size, rng)


def triplet_dataset(urls_or_paths: str | Sequence[str | Path], *, shuffle: int = 1000,
                    crop: int | tuple[int, int] | None = None, seed: int = 0,
                    epoch_samples: int | None = None, resampled: bool = False
                    ) -> IterableDataset:
    """An IterableDataset of triplet dicts (see the module doc).

    ``shuffle`` is the sample buffer (0: shard order, no shuffling). ``resampled`` draws
    shards with replacement for ever (no node/worker split: every worker draws its own
    stream); give ``epoch_samples`` (per worker) to end an epoch.
    """
    urls = [urls_or_paths] if isinstance(urls_or_paths, str) else [str(u) for u in urls_or_paths]
    if not urls:
        raise ValueError("no shards given")
    if resampled:
        stages: list[Any] = [wds.ResampledShards(urls, seed=seed, deterministic=True)]
    else:
        stages = [wds.SimpleShardList(urls, seed=seed if shuffle else None),
                  wds.split_by_node, wds.split_by_worker]
    stages.append(wds.tarfile_to_samples())
    if shuffle:
        stages.append(wds.detshuffle(shuffle, min(INITIAL_SHUFFLE, shuffle), seed=seed))
    stages += [wds.decode("torchrgb"), wds.map(to_triplet)]
    if crop is not None:
        stages.append(RandomCrop(crop, seed))
    dataset = wds.DataPipeline(*stages)
    return dataset.with_epoch(epoch_samples) if epoch_samples else dataset


def collate_triplets(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack frames (B x C x H x W) and t (B); keys and metas stay lists."""
    out: dict[str, Any] = {name: torch.stack([s[name] for s in batch]) for name in FRAME_NAMES}
    out["t"] = torch.stack([s["t"] for s in batch])
    out["key"] = [s["key"] for s in batch]
    out["meta"] = [s["meta"] for s in batch]
    return out


def triplet_loader(urls_or_paths: str | Sequence[str | Path], *, batch_size: int,
                   num_workers: int = 0, **dataset_kwargs: Any) -> DataLoader:
    """A DataLoader over :func:`triplet_dataset` batching with :func:`collate_triplets`.

    Frames of one batch must share a size: give ``crop`` when sources differ in aspect.
    """
    dataset = triplet_dataset(urls_or_paths, **dataset_kwargs)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                      collate_fn=collate_triplets, persistent_workers=False)
