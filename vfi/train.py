"""Train the in-betweening network (``python -m vfi.train``).

A nanoGPT-style loop without globals: everything it needs comes in through
:func:`train`'s arguments. The checkpoint is model + optimizer + step + the resolved
config (plain tensors, dicts, numbers and strings only, so ``torch.load(...,
weights_only=True)`` can read it and a tampered file cannot run code). A killed run
resumes from its last checkpoint and continues exactly as if never stopped: the sample
stream is a pure function of the seed and the number of samples drawn, and every
augmentation draws from a generator seeded by the sample's index in that stream.

Under ``torchrun --nproc_per_node=N -m vfi.train`` each rank streams its own part of
the train shards with seed ``train.seed + rank`` and DDP averages the gradients, so a
step sees ``batch_size x accumulate x N`` samples; rank 0 alone validates and writes
(see :mod:`vfi.distributed`).
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import webdataset as wds
from torch import nn

from pipeline.atomic import write_bytes
from pipeline.config import Params
from pipeline.stage import StageError, run_stage
from vfi.config import TrainParams, VfiParams, params_hash
from vfi.data import (
    collate_triplets,
    crop_triplet,
    shards_for_split,
    to_triplet,
    triplet_dataset,
)
from vfi.distributed import (
    SINGLE,
    World,
    barrier,
    check_replicas,
    distributed,
    grad_sync,
    mean_over_ranks,
    rank_device,
    rank_source,
    rank_threads,
    wrap,
)
from vfi.losses import total_loss
from vfi.metrics import psnr
from vfi.model import (
    build_model,
    classical_flow,
    forward_padded,
    interpolate,
    linear_blend,
    needs_init,
    param_count,
)
from vfi.teacher import DisFlow

log = logging.getLogger("inbetweener.vfi.train")
CHECKPOINT = "model.pt"
StepHook = Callable[[int, float], None]


# ---------------------------------------------------------------- data

def skip(n: int) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """A pipeline stage dropping the first ``n`` raw samples (before decoding: cheap)."""
    def stage(src: Iterator[Any]) -> Iterator[Any]:
        for i, sample in enumerate(src):
            if i >= n:
                yield sample
    return stage


def motion_crop(sample: dict[str, Any], size: int, tries: int, rng: random.Random
                ) -> dict[str, Any]:
    """Of ``tries`` random windows, the one where f0 and f2 differ most.

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
    if "flow" in sample:
        top, left = best["crop"]
        best["flow"] = sample["flow"][..., top:top + size, left:left + size]
    return best


def augment(sample: dict[str, Any], params: TrainParams, rng: random.Random
            ) -> dict[str, Any]:
    """Motion-seeking crop, flips and temporal reversal (f0 <-> f2, t -> 1 - t).

    Reversal doubles the motions seen and teaches that t is measured from f0; flips
    remove the bias of the synthetic source's drift directions.
    """
    out = motion_crop(sample, params.crop, params.crop_tries, rng)
    for dim, on in ((-1, params.flip), (-2, params.flip)):
        if on and rng.random() < 0.5:
            out.update({k: out[k].flip(dim) for k in ("f0", "f1", "f2")})
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


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`vfi.data.collate_triplets` plus the teacher flows when there are some."""
    batch = collate_triplets(samples)
    if "flow" in samples[0]:
        batch["flow"] = torch.stack([s["flow"] for s in samples])
    return batch


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

    Shards are drawn with replacement (seeded), samples shuffled in a seeded buffer;
    sample ``i`` is augmented with ``Random(f"{seed}:{i}")``, so the stream after
    skipping ``start`` samples is exactly the tail of the full stream. With a
    ``teacher`` (:func:`vfi.model.classical_flow`) each sample also gets ``flow``:
    its classical flows t->0, t->1.
    In a ``world`` of several ranks this is the stream of rank ``world.rank``: its part
    of the shards, and ``seed + rank`` wherever the seed is used.
    """
    seed = params.seed + world.rank
    stages: list[Any] = rank_source(urls, world, seed)
    if params.shuffle:
        stages.append(wds.detshuffle(params.shuffle, min(100, params.shuffle), seed=seed))
    stages += [skip(start), wds.decode("torchrgb"), wds.map(to_triplet)]
    flows = FlowCache(teacher, params.flow_cache_mb) if teacher is not None else None
    for i, sample in enumerate(wds.DataPipeline(*stages), start):
        if flows is not None:  # on the whole frame: a crop would cut motions off
            sample["flow"] = flows(sample)
        yield augment(sample, params, random.Random(f"{seed}:{i}"))


def load_val(urls: Sequence[str], limit: int, teacher: DisFlow | None = None
             ) -> list[dict[str, Any]]:
    """The first ``limit`` validation triplets in shard order, kept in memory so every
    validation scores the same samples without decoding them again, nor recomputing
    their classical flows (``teacher``: the model's start, computed once here)."""
    samples: list[dict[str, Any]] = []
    if not urls:
        log.warning("the val split is empty: validation is skipped")
        return samples
    for sample in triplet_dataset(list(urls), shuffle=0):
        if teacher is not None:
            sample["flow"] = teacher(sample["f0"], sample["f2"], sample["t"])
        samples.append(sample)
        if len(samples) >= limit:
            break
    return samples


# ---------------------------------------------------------------- schedule, checkpoints

def lr_at(step: int, params: TrainParams) -> float:
    """Linear warm-up to ``lr`` (Adam's early updates are noisy), then cosine to ``min_lr``."""
    if step < params.warmup:
        return params.lr * (step + 1) / params.warmup
    span = max(params.steps - params.warmup, 1)
    progress = min((step - params.warmup) / span, 1.0)
    return params.min_lr + 0.5 * (params.lr - params.min_lr) * (1 + math.cos(math.pi * progress))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialise in memory, then write atomically (:func:`pipeline.atomic.write_bytes`):
    a kill mid-write never leaves a truncated checkpoint where the resume would look.

    Not ``torch.save`` to the temporary file: the archive inside takes its folder name
    from the file name, which holds the writer's pid, so equal states would differ in
    bytes from run to run (and DVC would see a new output every time).
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: anything but plain containers,
    tensors, numbers and strings (e.g. a pickled object) is refused."""
    return torch.load(path, map_location=device, weights_only=True)


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                     params: VfiParams) -> dict[str, Any]:
    """Everything needed to resume or to rebuild the model, as plain data."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "step": step, "model_config": params.model.model_dump(),
            "train_config": params.train.model_dump(), "params_hash": params_hash(params)}


def try_resume(path: Path, params: VfiParams, model: nn.Module,
               optimizer: torch.optim.Optimizer) -> int:
    """Load ``path`` into model and optimizer if it was made with these params; the step
    to continue from (0: fresh start)."""
    if not path.is_file():
        return 0
    state = load_checkpoint(path)
    if state.get("params_hash") != params_hash(params):
        log.warning("%s was trained with other params (hash %s, now %s): starting over",
                    path, state.get("params_hash"), params_hash(params))
        return 0
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:  # same params, another version of the network's code
        log.warning("%s does not fit this network (%s): starting over", path,
                    str(exc).splitlines()[0])
        return 0
    optimizer.load_state_dict(state["optimizer"])
    log.info("resuming %s at step %d", path, state["step"])
    return int(state["step"])


# ---------------------------------------------------------------- loop

@torch.no_grad()
def validate(model: nn.Module, samples: Sequence[dict[str, Any]], device: torch.device
             ) -> tuple[float, float]:
    """Mean PSNR of the model and of the linear blend on full validation frames."""
    model.eval()
    ours, blend = [], []
    for s in samples:
        f0, f1, f2 = (s[k].unsqueeze(0).to(device) for k in ("f0", "f1", "f2"))
        t = s["t"].reshape(1).to(device)
        init = s["flow"].unsqueeze(0) if "flow" in s else None
        ours.append(float(psnr(interpolate(model, f0, f2, t, init), f1)[0]))
        blend.append(float(psnr(linear_blend(f0, f2, t), f1)[0]))
    model.train()
    return sum(ours) / len(ours), sum(blend) / len(blend)


@dataclass
class TrainResult:
    """What a run did: steps taken here, the loss per step, validation PSNRs."""

    start_step: int
    step: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    val_psnr: list[tuple[int, float]] = field(default_factory=list)
    val_psnr_blend: float | None = None
    samples_per_second: float = 0.0
    params: int = 0


def make_live(live_dir: str | Path | None, resume: bool) -> Any:
    """A dvclive logger writing ``metrics.json`` and ``plots/`` for the dvc.yaml stage
    (no dvc.yaml of its own, no experiment saving: the stage and ``dvc exp run`` own
    those)."""
    if live_dir is None:
        return None
    from dvclive import Live
    return Live(dir=str(live_dir), resume=resume, save_dvc_exp=False, dvcyaml=None)


def optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                   stream: Iterator[dict[str, Any]], tp: TrainParams, lr: float,
                   device: torch.device, use_init: bool) -> float:
    """One update from ``accumulate`` batches (gradients summed, so a small machine can
    emulate a large batch); returns the mean loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss_sum = 0.0
    for i in range(tp.accumulate):
        batch = collate([next(stream) for _ in range(tp.batch_size)])
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                 for k, v in batch.items()}
        with grad_sync(model, i == tp.accumulate - 1):  # DDP: average on the last only
            # bf16 autocast for speed where the hardware has it; losses in float32.
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tp.bf16):
                pred = forward_padded(model, batch["f0"], batch["f2"], batch["t"],
                                      batch["flow"] if use_init else None)
            pred = {k: v.float() for k, v in pred.items()}
            loss, _ = total_loss(tp.losses, batch, pred)
            (loss / tp.accumulate).backward()
        loss_sum += float(loss.detach()) / tp.accumulate
    if tp.grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum


def train(params: VfiParams, shards: str | Path, out: str | Path,
          live_dir: str | Path | None = None, on_step: StepHook | None = None,
          device: torch.device | None = None, world: World = SINGLE) -> TrainResult:
    """Train to ``params.train.steps``, resuming from ``out/model.pt`` when it matches.

    ``on_step(step, loss)`` runs after every optimizer step (tests use it to simulate a
    kill). Checkpoints are written every ``val_every`` steps and at the end. In a
    ``world`` of several ranks (inside :func:`vfi.distributed.distributed`) every rank
    calls this: all resume from the same checkpoint and take the same steps; losses and
    samples/s are over all ranks; rank 0 alone validates, logs to dvclive and saves.
    """
    tp = params.train
    if tp.threads:
        torch.set_num_threads(rank_threads(tp.threads, world))
    device = device or rank_device(world)
    torch.manual_seed(tp.seed)
    model = build_model(params.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    ckpt = Path(out) / CHECKPOINT
    start = try_resume(ckpt, params, model, optimizer)
    result = TrainResult(start_step=start, step=start, params=param_count(model))
    if start >= tp.steps:
        log.info("%s is already at step %d of %d", ckpt, start, tp.steps)
        return result
    if not shards_for_split(shards, "train"):
        raise ValueError(f"{shards}: the train split has no shards")
    per_step = tp.batch_size * tp.accumulate  # samples per step of one rank
    use_init = needs_init(model)
    teacher = classical_flow(params.model) if use_init or tp.losses.get("distill") else None
    val = (load_val(shards_for_split(shards, "val"), tp.val_samples,
                    teacher if use_init else None) if world.is_main else [])
    stream = train_samples(shards_for_split(shards, "train"), tp,
                           start * per_step, teacher, world)
    live = make_live(live_dir, resume=start > 0) if world.is_main else None
    net = wrap(model, world)
    log.info("%s model, %d parameters, steps %d..%d on %s", params.model.arch,
             result.params, start, tp.steps, device)
    tic, seen = time.perf_counter(), 0
    model.train()
    for step in range(start, tp.steps):
        lr = lr_at(step, tp)
        loss_sum = optimizer_step(net, optimizer, stream, tp, lr, device, use_init)
        loss_sum = mean_over_ranks(loss_sum, world)
        seen += per_step * world.size
        done = step + 1
        result.step = done
        result.losses.append((done, loss_sum))
        if live is not None:
            live.step = done
            live.log_metric("train/loss", loss_sum)
            live.log_metric("train/lr", lr)
        if done % tp.val_every == 0 or done == tp.steps:
            if val:  # only rank 0 has validation samples
                val_psnr, blend_psnr = validate(model, val, device)
                result.val_psnr.append((done, val_psnr))
                result.val_psnr_blend = blend_psnr
                result.samples_per_second = seen / (time.perf_counter() - tic)
                log.info("step %d loss %.4f val PSNR %.2f dB (blend %.2f) %.1f samples/s",
                         done, loss_sum, val_psnr, blend_psnr, result.samples_per_second)
                if live is not None:
                    live.log_metric("val/psnr", val_psnr)
                    live.log_metric("val/psnr_blend", blend_psnr)
            if world.is_main:
                save_checkpoint(ckpt, checkpoint_state(model, optimizer, done, params))
            barrier(world)  # the other ranks wait while rank 0 validates and writes
        if live is not None:
            live.next_step()
        if on_step is not None:
            on_step(done, loss_sum)
    result.samples_per_second = seen / (time.perf_counter() - tic)
    if world.parallel:
        log.info("%d ranks hold the same weights (digest %s)", world.size,
                 check_replicas(model, world))
    if live is not None:
        live.end()
    return result


def _main(params: Params, args: argparse.Namespace) -> int:
    with distributed() as world:  # torchrun's process group, or one process
        if not world.is_main:  # one log: rank 0's (the others only warn)
            logging.getLogger("inbetweener").setLevel(logging.WARNING)
        try:
            result = train(params, args.shards, args.out, args.live, world=world)
        except ValueError as exc:  # no train shards: nothing to learn from
            raise StageError(str(exc)) from None
    log.info("done: step %d, %.1f samples/s", result.step, result.samples_per_second)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m vfi.train [--params] [--shards] [--out] [--live]``, also as
    ``torchrun --nproc_per_node=N -m vfi.train ...``."""
    paths = {"shards": "data/shards", "out": "models", "live": "dvclive"}
    return run_stage("vfi.train", __doc__, paths, _main, list(argv) if argv else None)


if __name__ == "__main__":
    raise SystemExit(main())
