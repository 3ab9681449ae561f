"""Data-parallel plumbing for ``torchrun --nproc_per_node=N -m vfi.train``.

torchrun starts one process per rank and tells each its place through environment
variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``); :func:`distributed` joins the process group from them (gloo on the CPU,
NCCL on GPUs) and leaves it afterwards. Without them it is a no-op: one process, rank 0
of 1, and training is exactly the single-process loop.

How the data is split. Each rank streams its own part of the train shards:
``urls[rank::size]`` (disjoint, covering, sizes within one of each other). With fewer
shards than ranks every rank reads all shards and keeps sample ``i`` of each shard when
``i % size == rank`` (:func:`rank_samples`), so parts stay disjoint. Either way a rank
draws from its part with replacement for ever (``ResampledShards``), so every rank runs
the same number of steps whatever the shard sizes: nobody runs out and waits.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import webdataset as wds
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vfi.errors import InputError

MAX_EMPTY_DRAWS = 1000  # shards in a row that gave this rank no sample: give up


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0   # rank on this machine (its GPU, when there are GPUs)
    local_size: int = 1   # processes on this machine (they share its cores)

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.size or not 0 <= self.local_rank < self.local_size:
            raise InputError(f"bad rank {self.rank} of {self.size} "
                             f"(local {self.local_rank} of {self.local_size})")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, metrics and logs."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


SINGLE = World()


def world_from_env(env: dict[str, str] | None = None) -> World:
    """The :class:`World` torchrun describes in the environment (one process without it)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return SINGLE
    size = int(env["WORLD_SIZE"])
    return World(rank=int(env["RANK"]), size=size,
                 local_rank=int(env.get("LOCAL_RANK", 0)),
                 local_size=int(env.get("LOCAL_WORLD_SIZE", size)))


@contextlib.contextmanager
def distributed() -> Iterator[World]:
    """Join the process group torchrun set up (if any) for the ``with`` block."""
    world = world_from_env()
    if not world.parallel or dist.is_initialized():
        yield world
        return
    backend = "gloo"
    if torch.cuda.is_available():
        backend = "nccl"
        torch.cuda.set_device(rank_device(world))
    dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    try:
        yield world
    finally:
        dist.destroy_process_group()


def rank_device(world: World) -> torch.device:
    """This rank's device: its own GPU by local rank when there are GPUs, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", world.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def rank_threads(threads: int, world: World) -> int:
    """Torch threads of one rank: ``threads`` is the machine's budget, shared by the
    ranks on it (two ranks with two threads each on two cores would thrash)."""
    return max(1, threads // world.local_size)


# ---------------------------------------------------------------- data partition

def shard_partition(urls: Sequence[str], world: World) -> list[str]:
    """This rank's shards: every ``size``-th from ``rank``; all of them when there are
    fewer shards than ranks (:func:`rank_samples` then splits their samples)."""
    urls = list(urls)
    return urls[world.rank::world.size] if len(urls) >= world.size else urls


def rank_samples(world: World) -> Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]]:
    """A pipeline stage from shards to samples keeping sample ``i`` of each shard drawn
    when ``i % size == rank`` (``wds.tarfile_to_samples`` applied one shard at a time, so
    the count restarts with every shard even when the same shard is drawn twice)."""
    def stage(shards: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        empty = 0  # shards in a row that had nothing for this rank
        for shard in shards:
            kept = 0
            for i, sample in enumerate(wds.tarfile_to_samples()(iter([shard]))):
                if i % world.size == world.rank:
                    kept += 1
                    yield sample
            empty = 0 if kept else empty + 1
            if empty >= MAX_EMPTY_DRAWS:
                raise InputError(f"rank {world.rank} of {world.size}: {empty} shards in a "
                                 "row had no sample for it (fewer samples than ranks?)")
    return stage


def sample_index(urls: Sequence[str]) -> list[tuple[str, int, int]]:
    """(url, first byte, end byte) of every sample of ``urls``, in shard and member order:
    read from the tar headers alone (the members' bytes are skipped)."""
    index: list[tuple[str, int, int]] = []
    for url in urls:
        with tarfile.open(url, "r:") as tar:
            spans: dict[str, list[int]] = {}
            for member in tar:
                key = member.name.split(".", 1)[0]
                end = member.offset_data + -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                spans.setdefault(key, [member.offset, end])[1] = end
            index += [(str(url), a, b) for a, b in spans.values()]
    return index


def read_sample(url: str, start: int, end: int) -> dict[str, Any]:
    """One sample as ``wds.tarfile_to_samples`` gives it, read from its byte span."""
    with open(url, "rb") as fh:
        fh.seek(start)
        blocks = fh.read(end - start)
    sample: dict[str, Any] = {"__url__": url}
    with tarfile.open(fileobj=io.BytesIO(blocks), mode="r:") as tar:
        for member in tar:
            key, suffix = member.name.split(".", 1)
            sample["__key__"] = key
            sample[suffix] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return sample


class EpochShuffled(torch.utils.data.IterableDataset):
    """Endless samples of all ``urls``: epoch after epoch, every sample once per epoch,
    in a seeded random order (``default_rng([seed, epoch])``), read by its byte span.

    Why not ``wds.ResampledShards`` + ``tarfile_to_samples``: that reads a drawn shard
    whole, in order, before drawing the next, so a short run over a few large shards
    sees one or two of them, and each only from its start. The default run (300 steps
    of batch 4 = 1,200 samples; two train tars of 1,000 and 918 samples) drew
    train-000001 twice and never read train-000000, which holds Copying, Popeye part 2
    and most of part 3: the model never trained on them. Shards on local disk allow
    random access, so every run draws from the whole training set from its first step.
    The same seed gives the same stream, so a resumed run skips to where it stopped."""

    def __init__(self, urls: Sequence[str], seed: int) -> None:
        super().__init__()
        self.urls, self.seed = [str(u) for u in urls], seed

    def __iter__(self) -> Iterator[dict[str, Any]]:
        index = sample_index(self.urls)
        if not index:
            raise InputError(f"no samples in {', '.join(self.urls)}")
        for epoch in itertools.count():
            for i in np.random.default_rng([self.seed, epoch]).permutation(len(index)):
                yield read_sample(*index[i])


def rank_source(urls: Sequence[str], world: World, seed: int) -> list[Any]:
    """The first pipeline stages of a rank's endless sample stream. One process: every
    sample once per epoch in a seeded order (:class:`EpochShuffled`). Several ranks:
    their shards drawn with replacement (seeded by ``seed``), expanded to samples (each
    rank keeping its share of every shard's samples when there are fewer shards than
    ranks, :func:`rank_samples`)."""
    if not world.parallel:
        return [EpochShuffled(urls, seed)]
    shards = wds.ResampledShards(shard_partition(urls, world), seed=seed, deterministic=True)
    return [shards, rank_samples(world) if len(urls) < world.size else wds.tarfile_to_samples()]


# ---------------------------------------------------------------- model

class DDP(DistributedDataParallel):
    """DistributedDataParallel that reads through to the wrapped model's plain
    attributes (``multiple``, ``params``), so code written for the bare model works."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model: nn.Module, world: World) -> nn.Module:
    """``model`` for training: wrapped in :class:`DDP` (gradients averaged over the
    ranks in ``backward``; rank 0's weights broadcast to all at construction) when there
    are several ranks, else itself."""
    if not world.parallel:
        return model
    device = next(model.parameters()).device
    ids = [device] if device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def grad_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager[Any]:
    """Skip DDP's gradient all-reduce for a micro-batch (``sync=False``) when
    accumulating: only the last backward of a step needs to average."""
    if isinstance(model, DistributedDataParallel) and not sync:
        return model.no_sync()
    return contextlib.nullcontext()


def mean_over_ranks(value: float, world: World) -> float:
    """The mean of a per-rank number (e.g. the loss of each rank's batch)."""
    if not world.parallel:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=rank_device(world))
    dist.all_reduce(tensor)
    return float(tensor[0]) / world.size


def barrier(world: World) -> None:
    """Wait for every rank (e.g. while rank 0 validates and writes the checkpoint)."""
    if world.parallel:
        dist.barrier()


def param_digest(model: nn.Module) -> str:
    """A hash of the model's weights, bit for bit."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_replicas(model: nn.Module, world: World) -> str:
    """The weights' digest, after checking that every rank has the same: replicas that
    differ mean the gradients were not averaged, so the run's result is meaningless."""
    mine = param_digest(model)
    if not world.parallel:
        return mine
    digests: list[str | None] = [None] * world.size
    dist.all_gather_object(digests, mine)
    if len(set(digests)) != 1:
        raise RuntimeError(f"the model replicas diverged: weight digests {digests}")
    return mine
