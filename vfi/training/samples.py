"""The one training-data pipeline: shards to an endless stream of augmented triplets.

Every sample once per epoch in a seeded order (one process; with several ranks, their
shards drawn with replacement: ``vfi.training.distributed.rank_source``), a seeded
shuffle buffer, decoding to the triplet dicts of
:mod:`vfi.inference.triplets`, the classical flows when the model starts from them
(cached per sample), then a motion-seeking crop, flips and temporal reversal.
``benchmarks/bench_loader.py`` measures exactly this stream. The naive-triplet control
(:mod:`vfi.training.naive`) feeds its own triplets through the same tail
(:func:`augmented`: flow cache, augmentation, per-index seeds).

Resumable by construction: sample ``i`` of the stream is augmented with
``Random(f"{seed}:{i}")`` and the stream after skipping ``start`` raw samples is exactly
the tail of the full stream, so a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
import webdataset as wds

from vfi.config import TrainParams
from vfi.flow.dis import DisFlow
from vfi.inference.triplets import FRAME_NAMES, decoded
from vfi.training.distributed import SINGLE, World, rank_source

log = logging.getLogger("inbetweener.vfi.train")


def skip(n: int) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """A pipeline stage dropping the first ``n`` raw samples (before decoding: cheap)."""
    def stage(src: Iterator[Any]) -> Iterator[Any]:
        for i, sample in enumerate(src):
            if i >= n:
                yield sample
    return stage


SPATIAL = (*FRAME_NAMES, "flow", "valid")  # what a crop, a pad and a flip apply to


def crop_triplet(sample: dict[str, Any], size: tuple[int, int], rng: random.Random
                 ) -> dict[str, Any]:
    """The same random ``(height, width)`` window cut from f0, f1 and f2 (and the flows),
    clamped to the frame: a sample smaller than the window is taken whole along that
    side (:func:`motion_crop` pads the chosen window up to the size)."""
    height, width = sample["f0"].shape[-2:]
    ch, cw = min(size[0], height), min(size[1], width)
    top, left = rng.randint(0, height - ch), rng.randint(0, width - cw)
    out = dict(sample)
    for name in SPATIAL:
        if name in sample:
            out[name] = sample[name][..., top:top + ch, left:left + cw]
    out["crop"] = (top, left)
    return out


def padded(sample: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """``sample`` replicate-padded on the bottom and right to ``size``, with ``valid``:
    a 1 x H x W map, 1 on the picture and 0 on the padding, which the losses weight by
    (:mod:`vfi.training.losses`). Replicate padding is what the network sees at
    inference too (``forward_padded``); the flips of :func:`augment` move the padding
    to any side."""
    height, width = sample["f0"].shape[-2:]
    pad = (0, size[1] - width, 0, size[0] - height)
    out = dict(sample)
    for name in SPATIAL:
        if name in sample and name != "valid":
            out[name] = F.pad(sample[name][None], pad, mode="replicate")[0]
    valid = sample.get("valid", torch.ones(1, height, width))
    out["valid"] = F.pad(valid, pad, value=0.0)
    return out


def motion_crop(sample: dict[str, Any], size: int, tries: int, rng: random.Random
                ) -> dict[str, Any]:
    """Of ``tries`` random windows, the one where f0 and f2 differ most, padded to
    ``size`` where the frame is smaller (:func:`padded`: one crop size serves sources of
    every size, e.g. crops of the 256 lines the model interpolates at on a 240-line
    source). The windows are scored on the picture and only the chosen one is padded.

    Cartoon motion is a few small objects on a still background: most uniform random
    crops are static, where the linear blend is already perfect and there is nothing to
    learn (measured: blend scores 37.5 dB on such crops, 23 dB on whole frames).
    """
    best, best_score = None, -1.0
    for _ in range(tries):
        crop = crop_triplet(sample, (size, size), rng)
        score = float((crop["f0"] - crop["f2"]).abs().mean())
        if score > best_score:
            best, best_score = crop, score
    assert best is not None
    return best if best["f0"].shape[-2:] == (size, size) else padded(best, (size, size))


def augment(sample: dict[str, Any], params: TrainParams, rng: random.Random
            ) -> dict[str, Any]:
    """Motion-seeking crop, flips and temporal reversal (f0 <-> f2, t -> 1 - t).

    Reversal doubles the motions seen and teaches that t is measured from f0; flips
    remove the bias of the synthetic source's drift directions.
    """
    out = motion_crop(sample, params.crop, params.crop_tries, rng)
    for dim, on in ((-1, params.flip), (-2, params.flip)):
        if on and rng.random() < 0.5:
            out.update({k: out[k].flip(dim) for k in (*FRAME_NAMES, "valid") if k in out})
            if "flow" in out:  # a mirrored motion: flip the field, negate its component
                sign = torch.ones(4, 1, 1)
                sign[[0, 2] if dim == -1 else [1, 3]] = -1
                out["flow"] = out["flow"].flip(dim) * sign
    if params.reverse and rng.random() < 0.5:
        out["f0"], out["f2"] = out["f2"], out["f0"]
        out["t"] = 1 - out["t"]
        if "flow" in out:  # t->0 becomes t->1 and back
            out["flow"] = torch.cat((out["flow"][2:], out["flow"][:2]))
    return out


class FlowCache:
    """The teacher's flows per sample key, least recently used out past ``budget_mb``.

    The flows depend only on the sample (its frames and t), not on the augmentation,
    and training draws each sample many times; at ~0.1-0.2 s a sample they would
    otherwise cost more than the network's step. A pure function cached: the stream
    is the same with or without it.
    """

    def __init__(self, teacher: DisFlow, budget_mb: int) -> None:
        self.teacher = teacher
        self.budget = budget_mb * 2**20
        self.used = 0
        self.items: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __call__(self, sample: dict[str, Any]) -> torch.Tensor:
        key = sample["key"]
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        flow = self.teacher(sample["f0"], sample["f2"], sample["t"])
        size = flow.numel() * flow.element_size()
        if size <= self.budget:
            self.items[key] = flow
            self.used += size
            while self.used > self.budget:
                _, old = self.items.popitem(last=False)
                self.used -= old.numel() * old.element_size()
        return flow


def train_samples(urls: Sequence[str], params: TrainParams, start: int = 0,
                  teacher: DisFlow | None = None, world: World = SINGLE
                  ) -> Iterator[dict[str, Any]]:
    """Endless augmented training triplets, beginning at sample ``start`` of the stream.

    Samples come epoch by epoch in a seeded order (ranks: shards drawn with
    replacement), then a seeded shuffle buffer;
    sample ``i`` is augmented with ``Random(f"{seed}:{i}")``, so the stream after
    skipping ``start`` samples is exactly the tail of the full stream. With a
    ``teacher`` (:func:`vfi.inference.interpolator.classical_flow`) each sample also
    gets ``flow``: its classical flows t->0, t->1.
    In a ``world`` of several ranks this is the stream of rank ``world.rank``: its part
    of the shards, and ``seed + rank`` wherever the seed is used.
    """
    seed = params.seed + world.rank
    stages: list[Any] = rank_source(urls, world, seed)
    if params.shuffle:
        stages.append(wds.detshuffle(params.shuffle, min(100, params.shuffle), seed=seed))
    stages.append(skip(start))
    yield from augmented(decoded(stages), params, start, teacher, seed)


def augmented(samples: Iterable[dict[str, Any]], params: TrainParams, start: int,
              teacher: DisFlow | None, seed: int) -> Iterator[dict[str, Any]]:
    """The tail every training stream shares: ``samples`` are samples ``start, start+1,
    ...`` of a stream; each gets its cached classical flows (with a ``teacher``) and is
    augmented with ``Random(f"{seed}:{i}")``, its index alone."""
    flows = FlowCache(teacher, params.flow_cache_mb) if teacher is not None else None
    for i, sample in enumerate(samples, start):
        if flows is not None:  # on the whole frame: a crop would cut motions off
            sample["flow"] = flows(sample)
        yield augment(sample, params, random.Random(f"{seed}:{i}"))


def load_val(urls: Sequence[str], limit: int, teacher: DisFlow | None = None
             ) -> list[dict[str, Any]]:
    """``limit`` validation triplets spread evenly over the val split in shard order, kept
    in memory so every validation scores the same samples without decoding them again,
    nor recomputing their classical flows (``teacher``: the model's start, once here).

    Evenly spread, not the first ``limit``: shards are in source order, so the first
    ones would validate (and pick the kept checkpoint) on one source only.
    """
    if not urls:
        log.warning("the val split is empty: validation is skipped")
        return []
    raw = list(wds.DataPipeline(wds.SimpleShardList(list(urls)), wds.tarfile_to_samples()))
    step = max(len(raw) / limit, 1.0)
    chosen = [raw[int(k * step)] for k in range(min(limit, len(raw)))]
    samples = list(decoded([lambda: iter(chosen)]))
    if teacher is not None:
        for sample in samples:
            sample["flow"] = teacher(sample["f0"], sample["f2"], sample["t"])
    return samples
