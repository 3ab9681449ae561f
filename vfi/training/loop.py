"""The training loop behind ``python -m vfi.train``.

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
(see :mod:`vfi.training.distributed`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from pipeline.manifest import MANIFEST_TABLE, SHARDS_TABLE, sha256_file, shards_for_split
from vfi.config import TrainParams, VfiParams, params_hash
from vfi.inference.checkpoint import (
    CHECKPOINT_NAME,
    RESUME_NAME,
    read_checkpoint,
    save_checkpoint,
)
from vfi.inference.interpolator import classical_flow, forward_padded, interpolate, needs_init
from vfi.inference.metrics import psnr
from vfi.inference.triplets import collate_triplets
from vfi.nets import build_model, linear_blend, param_count
from vfi.training.distributed import (
    SINGLE,
    World,
    barrier,
    check_replicas,
    grad_sync,
    mean_over_ranks,
    rank_device,
    rank_threads,
    wrap,
)
from vfi.training.losses import total_loss
from vfi.training.samples import load_val, train_samples

log = logging.getLogger("inbetweener.vfi.train")
StepHook = Callable[[int, float], None]
# (train params, first sample, teacher flows or None, world) -> endless training samples
SampleSource = Callable[[TrainParams, int, Any, World], Iterator[dict[str, Any]]]


# ---------------------------------------------------------------- schedule, resume

def lr_at(step: int, params: TrainParams, peak: float) -> float:
    """Linear warm-up to ``peak`` (``model.lr``: Adam's early updates are noisy), then
    cosine to ``min_lr``."""
    if step < params.warmup:
        return peak * (step + 1) / params.warmup
    span = max(params.steps - params.warmup, 1)
    progress = min((step - params.warmup) / span, 1.0)
    return params.min_lr + 0.5 * (peak - params.min_lr) * (1 + math.cos(math.pi * progress))


def provenance(model: nn.Module, shards: str | Path) -> dict[str, Any]:
    """What a checkpoint owes: the licence of the weights it started from and the
    licence and attribution of every work it was trained on (the train split's sources
    in the shard manifest; CC BY-SA footage among them binds redistribution)."""
    manifest = Path(shards) / MANIFEST_TABLE
    works: list[dict[str, str]] = []
    if manifest.is_file():
        table = pd.read_parquet(manifest, columns=["source", "license", "attribution", "split"])
        train = table[table["split"] == "train"].drop(columns="split").drop_duplicates()
        works = train.sort_values("source").to_dict("records")
    return {"weights": getattr(model, "licence", "trained from scratch by inbetweener"),
            "training_data": works}


def weights_state(model: nn.Module, step: int, params: VfiParams,
                  val_psnr: float | None, origin: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The weights and what rebuilds them (``model.pt``: what evaluation loads)."""
    return {"model": model.state_dict(), "step": step, "val_psnr": val_psnr,
            "model_config": params.model.model_dump(),
            "train_config": params.train.model_dump(), "params_hash": params_hash(params),
            "provenance": origin or {}}


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                     params: VfiParams, best_val: float | None = None,
                     data_hash: str = "") -> dict[str, Any]:
    """Everything needed to resume (``last.pt``), as plain data."""
    state = weights_state(model, step, params, None)
    state.update(optimizer=optimizer.state_dict(), best_val=best_val, data_hash=data_hash)
    return state


def data_hash(shards: str | Path) -> str:
    """sha256 of ``shards.parquet`` (every tar's sha256, split and count): the data a run
    learns from. A resume state made on other shards is not resumed (``try_resume``):
    ``dvc repro`` after a data change must train anew, not report the old run's end."""
    table = Path(shards) / SHARDS_TABLE
    return sha256_file(table) if table.is_file() else ""


@dataclass
class Resumed:
    """Where a run continues: the step and the best validation PSNR so far."""

    step: int = 0
    best_val: float | None = None


def try_resume(path: Path, params: VfiParams, model: nn.Module,
               optimizer: torch.optim.Optimizer, data: str = "") -> Resumed:
    """Load ``path`` (the resume state) into model and optimizer if it was made with
    these params on this data (``data_hash``); where to continue from (step 0: a fresh
    start)."""
    if not path.is_file():
        return Resumed()
    state = read_checkpoint(path, required=())
    if state.get("params_hash") != params_hash(params):
        log.warning("%s was trained with other params (hash %s, now %s): starting over",
                    path, state.get("params_hash"), params_hash(params))
        return Resumed()
    if state.get("data_hash", "") != data:
        log.warning("%s was trained on other shards: starting over", path)
        return Resumed()
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:  # same params, another version of the network's code
        log.warning("%s does not fit this network (%s): starting over", path,
                    str(exc).splitlines()[0])
        return Resumed()
    optimizer.load_state_dict(state["optimizer"])
    log.info("resuming %s at step %d", path, state["step"])
    return Resumed(int(state["step"]), state.get("best_val"))


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
    best_step: int | None = None  # the step model.pt holds (set when written here)


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
        batch = collate_triplets([next(stream) for _ in range(tp.batch_size)])
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


class Keeper:
    """Validation and checkpoints on rank 0: ``last.pt`` (resume state) at every
    validation, ``model.pt`` whenever validation PSNR is the best so far.

    The start (step 0) is validated and kept too, so ``model.pt`` is never worse on
    validation than the pretrained weights a fine-tune began from; without validation
    samples the latest weights are kept.
    """

    def __init__(self, out: Path, params: VfiParams, val: Sequence[dict[str, Any]],
                 device: torch.device, best_val: float | None, live: Any,
                 origin: dict[str, Any], data_hash: str = "") -> None:
        self.out, self.params, self.val, self.device = out, params, val, device
        self.best_val, self.live, self.origin = best_val, live, origin
        self.data_hash = data_hash

    def check(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
              result: TrainResult) -> None:
        """Validate at ``step`` (when there are samples) and write what is due."""
        val_psnr = None
        if self.val:
            val_psnr, blend_psnr = validate(model, self.val, self.device)
            result.val_psnr.append((step, val_psnr))
            result.val_psnr_blend = blend_psnr
            log.info("step %d val PSNR %.2f dB (blend %.2f, best %s)", step, val_psnr,
                     blend_psnr, "-" if self.best_val is None else f"{self.best_val:.2f}")
            if self.live is not None:
                self.live.log_metric("val/psnr", val_psnr)
                self.live.log_metric("val/psnr_blend", blend_psnr)
        if val_psnr is None or self.best_val is None or val_psnr > self.best_val:
            self.best_val = val_psnr
            result.best_step = step
            save_checkpoint(self.out / CHECKPOINT_NAME,
                            weights_state(model, step, self.params, val_psnr, self.origin))
        if step:
            save_checkpoint(self.out / RESUME_NAME, checkpoint_state(
                model, optimizer, step, self.params, self.best_val, self.data_hash))


def train(params: VfiParams, shards: str | Path, out: str | Path,
          live_dir: str | Path | None = None, on_step: StepHook | None = None,
          device: torch.device | None = None, world: World = SINGLE,
          samples: SampleSource | None = None) -> TrainResult:
    """Train to ``params.train.steps``, resuming from ``out/last.pt`` when it matches;
    ``out/model.pt`` holds the best weights on validation (the start included).

    ``samples``: where training samples come from when not the train shards (the naive
    control: ``functools.partial(naive_samples, naive_set)``, :mod:`vfi.training.naive`).
    ``on_step(step, loss)`` runs after every optimizer step (tests use it to simulate a
    kill). In a ``world`` of several ranks (inside
    :func:`vfi.training.distributed.distributed`) every rank calls this: all resume from
    the same checkpoint and take the same steps; losses and samples/s are over all
    ranks; rank 0 alone validates, logs to dvclive and saves.
    """
    tp = params.train
    if tp.threads:
        torch.set_num_threads(rank_threads(tp.threads, world))
    device = device or rank_device(world)
    torch.manual_seed(tp.seed)
    model = build_model(params.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.model.lr,
                                  weight_decay=tp.weight_decay)
    out = Path(out)
    data = data_hash(shards)
    resumed = try_resume(out / RESUME_NAME, params, model, optimizer, data)
    start = resumed.step
    result = TrainResult(start_step=start, step=start, params=param_count(model))
    if start >= tp.steps:
        log.info("%s is already at step %d of %d", out / RESUME_NAME, start, tp.steps)
        return result
    if samples is None:
        urls = shards_for_split(shards, "train")
        if not urls:
            raise ValueError(f"{shards}: the train split has no shards")
        samples = functools.partial(train_samples, urls)
    per_step = tp.batch_size * tp.accumulate  # samples per step of one rank
    use_init = needs_init(model)
    teacher = classical_flow(params.model) if use_init or tp.losses.get("distill") else None
    val = (load_val(shards_for_split(shards, "val"), tp.val_samples,
                    teacher if use_init else None) if world.is_main else [])
    stream = samples(tp, start * per_step, teacher, world)
    live = make_live(live_dir, resume=start > 0) if world.is_main else None
    keeper = Keeper(out, params, val, device, resumed.best_val, live,
                    provenance(model, shards) if world.is_main else {}, data)
    net = wrap(model, world)
    log.info("%s model, %d parameters, %s triplets, steps %d..%d on %s", params.model.arch,
             result.params, tp.triplets, start, tp.steps, device)
    if start == 0 and world.is_main:  # the start, scored as every later step is
        if live is not None:
            live.step = 0
        keeper.check(model, optimizer, 0, result)
    barrier(world)
    tic, seen = time.perf_counter(), 0
    model.train()
    for step in range(start, tp.steps):
        lr = lr_at(step, tp, params.model.lr)
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
            result.samples_per_second = seen / (time.perf_counter() - tic)
            log.info("step %d loss %.4f, %.1f samples/s", done, loss_sum,
                     result.samples_per_second)
            if world.is_main:
                keeper.check(model, optimizer, done, result)
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
