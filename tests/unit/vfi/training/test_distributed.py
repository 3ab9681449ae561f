"""Data-parallel training: the shard partition, and ``torchrun`` on two CPU ranks (gloo).

The torchrun runs use shards that do not divide over the ranks (3 shards of unequal
sizes, and 1 shard: fewer than the ranks) so a rank that ran out of data, or waited for
rank 0's validation without a barrier, would hang: the timeouts turn that into a failure.
At its end a parallel run checks that every rank holds the same weights (it exits
non-zero otherwise), which is what averaged gradients guarantee: the ranks see
disjoint data.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import webdataset as wds
import yaml
from support import REPO
from support.training import scene

from vfi.config import parse_vfi_params
from vfi.inference.checkpoint import (
    CHECKPOINT_NAME,
    PREVIOUS_NAME,
    RESUME_NAME,
    read_checkpoint,
)
from vfi.nets import build_model
from vfi.training.distributed import World, rank_samples, shard_partition
from vfi.training.samples import train_samples

ROOT = REPO
TORCHRUN = Path(sys.executable).with_name("torchrun")
RUN_TIMEOUT = 120  # seconds; a healthy tiny run takes well under half of it

TINY = {"model": {"arch": "flow", "lr": 1e-3, "width": 8, "depth": 1, "scales": 2, "flow_init": "zero"},
        "train": {"min_lr": 1e-4, "steps": 3, "batch_size": 2, "crop": 32, "val_every": 2, "val_samples": 2,
                  "warmup": 1, "shuffle": 4, "threads": 2, "flip": True, "reverse": True}}


def write_shards(root: Path, train_sizes: list[int], val: int = 2) -> Path:
    """``root/train/train-00000k.tar`` holding ``train_sizes[k]`` triplets, one val shard."""
    sizes = {f"train-{k:06d}": n for k, n in enumerate(train_sizes)} | {"val-000000": val}
    for number, (name, count) in enumerate(sizes.items()):
        split = name.split("-")[0]
        (root / split).mkdir(parents=True, exist_ok=True)
        with wds.TarWriter(str(root / split / f"{name}.tar"), mtime=0) as sink:
            for i in range(count):
                seed, t = 100 * number + i, (0.25, 0.5, 0.75)[i % 3]
                sink.write({"__key__": f"{name}-{i:04d}",
                            **{f"f{k}.png": scene(x, 6.0 + 2 * i, seed=seed)
                               for k, x in enumerate((0.0, t, 1.0))},
                            "json": json.dumps({"t": t, "split": split}).encode()})
    return root


# ---------------------------------------------------------------- partition

@pytest.mark.parametrize("shards,ranks", [(7, 2), (3, 2), (8, 4), (5, 3), (2, 2), (1, 1)])
def test_shard_partition_is_disjoint_covering_balanced(shards: int, ranks: int) -> None:
    urls = [f"s{i}.tar" for i in range(shards)]
    parts = [shard_partition(urls, World(rank=r, size=ranks)) for r in range(ranks)]
    assert sorted(u for p in parts for u in p) == urls  # disjoint and covering
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_fewer_shards_than_ranks_splits_samples(tmp_path: Path) -> None:
    shard = str(write_shards(tmp_path, [5]) / "train" / "train-000000.tar")
    assert shard_partition([shard], World(rank=1, size=2)) == [shard]
    # The same shard drawn twice in a row: the sample count restarts with each draw.
    keys = [[s["__key__"] for s in rank_samples(World(rank=r, size=2))(
        iter([{"url": shard}, {"url": shard}]))] for r in range(2)]
    assert keys[0] == [f"train-000000-{i:04d}" for i in (0, 2, 4)] * 2
    assert keys[1] == [f"train-000000-{i:04d}" for i in (1, 3)] * 2


@pytest.mark.parametrize("train_sizes", [[4, 3, 2], [5]], ids=["3-shards", "1-shard"])
def test_rank_streams_are_disjoint_and_reproducible(tmp_path: Path, train_sizes: list[int]
                                                    ) -> None:
    shards = write_shards(tmp_path, train_sizes)
    urls = sorted(str(p) for p in (shards / "train").glob("*.tar"))
    tp = parse_vfi_params(TINY).train

    def keys(rank: int) -> list[str]:
        stream = train_samples(urls, tp, world=World(rank=rank, size=2))
        return [next(stream)["key"] for _ in range(12)]
    rank0, rank1 = keys(0), keys(1)
    assert not set(rank0) & set(rank1)
    assert keys(0) == rank0  # seeded: the same run draws the same samples


# ---------------------------------------------------------------- torchrun

@dataclass
class Run:
    """A finished torchrun: exit code, combined output, folders."""

    code: int
    output: str
    out: Path
    live: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun(tmp: Path, shards: Path, steps: int, ranks: int = 2) -> Run:
    """``torchrun --nproc_per_node=ranks -m vfi.train`` with TINY params and ``steps``."""
    raw = {"sources": [{"name": "synthetic", "kind": "synthetic"}],
           "model": TINY["model"], "train": {**TINY["train"], "steps": steps}}
    (tmp / "params.yaml").write_text(yaml.safe_dump(raw))
    cmd = [str(TORCHRUN), f"--nproc_per_node={ranks}", "--nnodes=1",
           "--master-addr=127.0.0.1", f"--master-port={free_port()}",
           "-m", "vfi.train", "--params", str(tmp / "params.yaml"), "--shards", str(shards),
           "--out", str(tmp / "models"), "--live", str(tmp / "live")]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)
    return Run(proc.returncode, proc.stdout + proc.stderr, tmp / "models", tmp / "live")


def assert_ok(run: Run, step: int) -> dict:
    """Exit 0, replicas equal, one checkpoint at ``step``; the checkpoint's state."""
    assert run.code == 0, run.output[-3000:]
    assert "2 ranks hold the same weights" in run.output, run.output[-3000:]
    # no rank-1 leftovers, no run state left: what the run published, nothing else
    names = {p.name for p in run.out.iterdir()} - {PREVIOUS_NAME}
    assert names == {CHECKPOINT_NAME, RESUME_NAME}
    state = read_checkpoint(run.out / RESUME_NAME)
    assert state["step"] == step
    return state


@pytest.mark.slow
@pytest.mark.timeout(2 * RUN_TIMEOUT + 30)
def test_torchrun_uneven_shards_then_resume(tmp_path: Path) -> None:
    shards = write_shards(tmp_path / "shards", [4, 3, 2])  # 2 shards on rank 0, 1 on rank 1
    first = assert_ok(torchrun(tmp_path, shards, steps=3), step=3)
    torch.manual_seed(0)
    init = build_model(parse_vfi_params(TINY).model).state_dict()
    assert any(not torch.equal(init[k], first["model"][k]) for k in init)
    metrics = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert metrics["step"] == 3 and "psnr" in metrics["val"]  # rank 0 validated and logged

    run = torchrun(tmp_path, shards, steps=5)  # both ranks resume from step 3
    state = assert_ok(run, step=5)
    assert "resuming" in run.output and "at step 3" in run.output
    assert any(not torch.equal(first["model"][k], state["model"][k]) for k in init)


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_torchrun_fewer_shards_than_ranks(tmp_path: Path) -> None:
    shards = write_shards(tmp_path / "shards", [5])  # samples split by index instead
    assert_ok(torchrun(tmp_path, shards, steps=3), step=3)
