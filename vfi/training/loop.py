"""The training loop behind ``python -m vfi.train``.

A nanoGPT-style loop without globals: everything comes in through :func:`train`'s
arguments. The checkpoint is model + optimizer + step + the resolved config, plain data
that ``torch.load(..., weights_only=True)`` reads. A killed run resumes from its last
checkpoint exactly as if never stopped: the sample stream is a pure function of the seed
and the number of samples drawn, and every augmentation draws from a generator seeded
by the sample's index in that stream. A run writes only ``models/.run/last.pt`` while it
trains and publishes ``model.pt`` when it completes (:mod:`vfi.training.publish`), so an
interrupted run (an aborted ``dvc exp run`` too) leaves the published model as it was.
Under ``torchrun --nproc_per_node=N -m vfi.train`` each rank streams its own part of the
train shards with seed ``train.seed + rank`` and DDP averages the gradients, so a step
sees ``batch_size x accumulate x N`` samples; rank 0 alone validates and writes
(:mod:`vfi.training.distributed`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from pipeline.dataset.manifest import (
    MANIFEST_TABLE,
    SHARDS_TABLE,
    sha256_file,
    shards_for_split,
)
from vfi.config import TrainParams, VfiParams, params_hash
from vfi.errors import InputError
from vfi.inference.checkpoint import checkpoint_bytes, read_checkpoint, save_checkpoint
from vfi.inference.interpolator import (
    classical_flow,
    forward_padded,
    interpolate,
    needs_init,
)
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
from vfi.training.publish import Layout, publish
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
                  val_psnr: float | None, origin: dict[str, Any] | None = None,
                  data_hash: str = "") -> dict[str, Any]:
    """The weights and what rebuilds them (``model.pt``: what evaluation loads), with
    the params and data they were trained on (to tell which run a model came from)."""
    return {"model": model.state_dict(), "step": step, "val_psnr": val_psnr,
            "model_config": params.model.model_dump(),
            "train_config": params.train.model_dump(), "params_hash": params_hash(params),
            "data_hash": data_hash, "provenance": origin or {}}


@dataclass(frozen=True)
class Best:
    """The best weights of a run so far, as the exact bytes ``model.pt`` gets when the
    run completes: carried in the resume state, so a resumed run publishes byte for
    byte what an uninterrupted one would, and nothing is published before the end."""

    step: int
    val: float | None  # None: no validation samples (the latest weights are kept)
    checkpoint: bytes


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                     params: VfiParams, best: Best | None = None,
                     data_hash: str = "") -> dict[str, Any]:
    """Everything needed to resume (``last.pt``), as plain data: the best weights ride
    along as a uint8 tensor (plain data for ``weights_only`` loading)."""
    state = weights_state(model, step, params, None, data_hash=data_hash)
    state["optimizer"] = optimizer.state_dict()
    state["code_hash"] = code_hash()
    if best is not None:
        state.update(best_step=best.step, best_val=best.val, best_checkpoint=torch.frombuffer(
            bytearray(best.checkpoint), dtype=torch.uint8))
    return state


def best_of(state: dict[str, Any]) -> Best | None:
    """The best weights a resume state carries (None in a state written before runs
    carried them: the run then keeps whatever validates best from here on)."""
    blob = state.get("best_checkpoint")
    if not isinstance(blob, torch.Tensor):
        return None
    return Best(int(state.get("best_step", 0)), state.get("best_val"), blob.numpy().tobytes())


TRAIN_CODE = ("config.py", "train.py", "flow", "inference", "nets", "training")  # under vfi/


@functools.cache
def code_hash() -> str:
    """sha256 of the code that trains (the train stage's ``vfi`` deps in dvc.yaml). DVC
    re-runs the stage when that code changes; a resume state made by other code must
    then not be continued (nor, at its last step, reported as this run's model)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in TRAIN_CODE:
        for path in sorted((root / name).rglob("*.py")) if (root / name).is_dir() else [root / name]:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def data_hash(shards: str | Path) -> str:
    """sha256 of ``shards.parquet`` (every tar's sha256, split and count): the data a run
    learns from. A resume state made on other shards is not resumed (``try_resume``):
    ``dvc repro`` after a data change must train anew, not report the old run's end."""
    table = Path(shards) / SHARDS_TABLE
    return sha256_file(table) if table.is_file() else ""


@dataclass
class Resumed:
    """Where a run continues: the step, the best weights so far, and the state file it
    continues (None: a fresh start)."""

    step: int = 0
    best: Best | None = None
    source: Path | None = None


def mismatch(state: dict[str, Any], params: VfiParams, data: str) -> str | None:
    """Why this run cannot continue ``state`` (None: it can). Other params or other
    shards would make the result a mix of two runs; a state past ``train.steps`` cannot
    become a run of fewer steps (``dvc exp run -S train.steps=5`` after a 300-step run
    trains 5 steps, it does not report the 300-step model)."""
    if state.get("params_hash") != params_hash(params):
        return (f"was trained with other params (hash {state.get('params_hash')}, "
                f"now {params_hash(params)})")
    if state.get("data_hash", "") != data:
        return "was trained on other shards"
    if state.get("code_hash") != code_hash():
        return "was trained by other code (vfi's training code changed)"
    if int(state.get("step", 0)) > params.train.steps:
        return f"is at step {state.get('step')}, past train.steps {params.train.steps}"
    return None


def misfit(model: nn.Module, weights: Any) -> str | None:
    """Why ``weights`` do not load into ``model`` (same params, another version of the
    network's code), checked before loading: a failed ``load_state_dict`` has already
    copied the tensors that fit, and a fresh start must begin from the seeded weights."""
    own = model.state_dict()
    if not isinstance(weights, dict):
        return "no weights"
    if own.keys() != weights.keys():
        odd = sorted(set(own) ^ set(weights))
        return f"{len(odd)} keys differ, e.g. {odd[0]}"
    for key, tensor in own.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            return f"{key} is {tuple(weights[key].shape)}, not {tuple(tensor.shape)}"
    return None


def interned(value: Any) -> Any:
    """``value`` with every string of its dicts and lists interned. Why: pickle writes a
    string once and refers back to it when it is the same object, and the optimizer's
    keys are shared literals in a fresh run but separate strings once loaded, so a
    resumed run's ``last.pt`` would differ in bytes (not in content) from an
    uninterrupted run's, and DVC would see another output."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {interned(k): interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interned(v) for v in value]
    return value


def resume_from(path: Path, params: VfiParams, model: nn.Module,
                optimizer: torch.optim.Optimizer, data: str) -> Resumed | None:
    """Load the state at ``path`` into model and optimizer if this run can continue it
    (same params, same data, not past ``train.steps``, weights that fit); None when it
    cannot, saying why."""
    if not path.is_file():
        return None
    state = read_checkpoint(path, required=())
    reason = mismatch(state, params, data)
    if reason is None and (unfit := misfit(model, state.get("model"))):
        reason = f"does not fit this network ({unfit})"
    if reason is not None:
        log.warning("%s %s: not resumed", path, reason)
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(interned(state["optimizer"]))
    log.info("resuming %s at step %d", path, state["step"])
    return Resumed(int(state["step"]), best_of(state), path)


def try_resume(layout: Layout, params: VfiParams, model: nn.Module,
               optimizer: torch.optim.Optimizer, data: str = "") -> Resumed:
    """Continue the run in progress (``.run/last.pt``: an interrupted run of these
    params), else the published run (``last.pt``: a larger ``train.steps`` extends it),
    else start fresh; the published ``model.pt`` is not touched either way."""
    for path in (layout.run_state, layout.published_state):
        resumed = resume_from(path, params, model, optimizer, data)
        if resumed is not None:
            return resumed
    if layout.run_state.is_file() or layout.published_state.is_file():
        log.info("starting over; %s stays as it is until this run completes", layout.model)
    return Resumed()


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
    best_step: int | None = None  # the step model.pt holds (set when found here)


def make_live(live_dir: str | Path | None, resume: bool) -> Any:
    """A dvclive logger writing ``metrics.json`` and ``plots/`` for the dvc.yaml stage
    (no dvc.yaml of its own, no experiment saving: the stage and ``dvc exp run`` own
    those).

    dvclive writes its files in place, so a kill can cut one short, and its resume then
    fails to parse it. The weights and the step resume from ``last.pt`` regardless: the
    curves start again at the resumed step rather than the resume failing on a log.
    """
    if live_dir is None:
        return None
    from dvclive import Live

    def live(resume: bool) -> Any:
        return Live(dir=str(live_dir), resume=resume, save_dvc_exp=False, dvcyaml=None)
    try:
        return live(resume)
    except (ValueError, OSError) as exc:  # a JSON cut short: JSONDecodeError, a ValueError
        if not resume:
            raise
        log.warning("%s: dvclive's log was cut short by the interruption (%s); its curves "
                    "start again at the resumed step", live_dir, exc)
        return live(False)


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
    """Validation and the run's state on rank 0: the best weights so far (whenever
    validation PSNR is the best yet) and ``.run/last.pt`` (the resume state, carrying
    them) at every validation. Nothing is published here: :func:`train` publishes the
    best weights as ``model.pt`` when the run completes.

    The start (step 0) is validated and kept too, so ``model.pt`` is never worse on
    validation than the pretrained weights a fine-tune began from; without validation
    samples the latest weights are kept.
    """

    def __init__(self, layout: Layout, params: VfiParams, val: Sequence[dict[str, Any]],
                 device: torch.device, best: Best | None, live: Any,
                 origin: dict[str, Any], data_hash: str = "") -> None:
        self.layout, self.params, self.val, self.device = layout, params, val, device
        self.best, self.live, self.origin = best, live, origin
        self.data_hash = data_hash

    @property
    def best_val(self) -> float | None:
        """Validation PSNR of the best weights so far (None: none yet, or no samples)."""
        return None if self.best is None else self.best.val

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
            result.best_step = step
            self.best = Best(step, val_psnr, checkpoint_bytes(weights_state(
                model, step, self.params, val_psnr, self.origin, self.data_hash)))
        if step:
            save_checkpoint(self.layout.run_state, checkpoint_state(
                model, optimizer, step, self.params, self.best, self.data_hash))


def finish(layout: Layout, best: Best | None, from_run: bool, world: World) -> None:
    """Publish the completed run on rank 0 (:func:`vfi.training.publish.publish`), once
    every rank is past reading the states and before any of them returns."""
    barrier(world)
    if world.is_main:
        publish(layout, None if best is None else best.checkpoint, from_run)
    barrier(world)


def train(params: VfiParams, shards: str | Path, out: str | Path,
          live_dir: str | Path | None = None, on_step: StepHook | None = None,
          device: torch.device | None = None, world: World = SINGLE,
          samples: SampleSource | None = None) -> TrainResult:
    """Train to ``params.train.steps`` and publish ``out/model.pt``, the best weights on
    validation (the start included), when the run completes; until then the run writes
    only ``out/.run/last.pt``, which it resumes from after a kill (else it extends
    ``out/last.pt``, the published run's state, when that matches: see
    :func:`try_resume`). The model ``model.pt`` held before is kept as
    ``out/previous.pt``.

    ``samples``: where training samples come from when not the train shards (the naive
    control: ``functools.partial(naive_samples, naive_set)``, :mod:`vfi.training.naive`).
    ``on_step(step, loss)`` runs after every optimizer step (tests raise from it to
    simulate a kill at that step). In a ``world`` of several ranks (inside
    :func:`vfi.training.distributed.distributed`) every rank calls this: all resume from
    the same checkpoint and take the same steps; losses and samples/s are over all
    ranks; rank 0 alone validates, logs to dvclive, saves and publishes.
    """
    tp = params.train
    if tp.threads:
        torch.set_num_threads(rank_threads(tp.threads, world))
    device = device or rank_device(world)
    torch.manual_seed(tp.seed)
    model = build_model(params.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.model.lr,
                                  weight_decay=tp.weight_decay)
    layout = Layout(Path(out))
    data = data_hash(shards)
    resumed = try_resume(layout, params, model, optimizer, data)
    start = resumed.step
    result = TrainResult(start_step=start, step=start, params=param_count(model))
    if start >= tp.steps:  # complete: published already, or killed while publishing
        log.info("%s is already at step %d of %d: nothing to train", resumed.source,
                 start, tp.steps)
        finish(layout, resumed.best, resumed.source == layout.run_state, world)
        return result
    if samples is None:
        urls = shards_for_split(shards, "train")
        if not urls:
            raise InputError(f"{shards}: the train split has no shards")
        samples = functools.partial(train_samples, urls)
    per_step = tp.batch_size * tp.accumulate  # samples per step of one rank
    use_init = needs_init(model)
    teacher = classical_flow(params.model) if use_init or tp.losses.get("distill") else None
    val = (load_val(shards_for_split(shards, "val"), tp.val_samples,
                    teacher if use_init else None) if world.is_main else [])
    stream = samples(tp, start * per_step, teacher, world)
    live = make_live(live_dir, resume=start > 0) if world.is_main else None
    keeper = Keeper(layout, params, val, device, resumed.best, live,
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
    finish(layout, keeper.best, True, world)
    return result
