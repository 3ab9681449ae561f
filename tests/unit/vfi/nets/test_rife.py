"""RIFE 4.25 as the pretrained start: the published weights load strictly, it
interpolates at any t and size, and the train stage fine-tunes it (model.pt = best)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support.cels import frames
from support.training import write_tiny_shards

from vfi.config import ModelParams, parse_vfi_params
from vfi.inference.checkpoint import (
    CHECKPOINT_NAME,
    RESUME_NAME,
    load_model,
    read_checkpoint,
)
from vfi.inference.interpolator import interpolate
from vfi.inference.methods import MethodError, MethodOptions, make_method
from vfi.inference.metrics import psnr
from vfi.nets import build_model, linear_blend
from vfi.nets.rife import TRAINING_ONLY, pretrained_state
from vfi.training.loop import train


@pytest.fixture(scope="module")
def rife() -> torch.nn.Module:
    torch.set_num_threads(1)
    return build_model(ModelParams(arch="rife")).eval()


def test_published_weights_load_strictly(rife: torch.nn.Module) -> None:
    state = pretrained_state()
    assert state and not any(k.startswith(TRAINING_ONLY) for k in state)
    ours = rife.net.state_dict()
    assert set(ours) == set(state)
    assert all(torch.equal(ours[k], state[k]) for k in state)


def test_true_t_puts_the_motion_where_it_is(rife: torch.nn.Module) -> None:
    """A square moving 24 px: the frame predicted at t matches the truth at t, not at
    the mirrored time, and beats the cross-fade."""
    f0, g25, g75, f2 = frames(24.0, (0.0, 0.25, 0.75, 1.0))
    p25 = interpolate(rife, f0, f2, 0.25)
    p75 = interpolate(rife, f0, f2, 0.75)
    score = lambda a, b: float(psnr(a[None], b[None])[0])  # noqa: E731
    assert score(p25, g25) > score(p25, g75) + 2
    assert score(p75, g75) > score(p75, g25) + 2
    assert score(p25, g25) > score(linear_blend(f0[None], f2[None], torch.tensor([0.25]))[0], g25)


@pytest.mark.parametrize("size", [(48, 64), (70, 90)])
def test_any_size_and_a_still_pair(rife: torch.nn.Module, size: tuple[int, int]) -> None:
    f0 = frames(0.0, (0.0,), *size)[0]
    out = interpolate(rife, f0, f0, 0.5)
    assert out.shape == f0.shape
    assert float((out - f0).abs().mean()) < 0.01  # nothing moves: the frame itself


def test_scale_option(rife: torch.nn.Module) -> None:
    method = make_method("rife", MethodOptions(scale=0.5))
    assert method.model.multiple == 128
    f0, g, f2 = frames(12.0, (0.0, 0.5, 1.0), 96, 128)
    assert float(psnr(method(f0, f2, torch.tensor(0.5))[None], g[None])[0]) > 25
    with pytest.raises(MethodError, match="--scale must be in"):
        make_method("rife", MethodOptions(scale=2.0))


def test_fine_tune_keeps_the_best_weights(tmp_path: Path) -> None:
    shards = write_tiny_shards(tmp_path / "shards", {"train": 4, "val": 2, "test": 1})
    params = parse_vfi_params({
        "model": {"arch": "rife", "lr": 1e-4},
        "train": {"steps": 2, "batch_size": 2, "crop": 48, "val_every": 1, "val_samples": 2,
                  "warmup": 1, "min_lr": 1e-6, "threads": 1, "shuffle": 2,
                  "losses": {"charbonnier": 1.0}}})
    result = train(params, shards, tmp_path / "models")
    assert [s for s, _ in result.val_psnr] == [0, 1, 2]
    best_step = max(result.val_psnr, key=lambda sv: (sv[1], -sv[0]))[0]
    best = read_checkpoint(tmp_path / "models" / CHECKPOINT_NAME)
    last = read_checkpoint(tmp_path / "models" / RESUME_NAME)
    assert best["step"] == best_step and last["step"] == 2
    start = pretrained_state()
    moved = any(not torch.equal(last["model"][f"net.{k}"], v) for k, v in start.items())
    assert moved  # the fine-tune changed the published weights
    same_as_start = all(torch.equal(best["model"][f"net.{k}"], v) for k, v in start.items())
    assert same_as_start == (best_step == 0)
    model = load_model(tmp_path / "models" / CHECKPOINT_NAME)
    f0, f2 = (torch.rand(3, 64, 64) for _ in range(2))
    assert interpolate(model, f0, f2, 0.3).shape == (3, 64, 64)
    assert np.isfinite(result.losses[-1][1])


def test_checkpoint_carries_its_licences(tmp_path: Path) -> None:
    """The weights' licence (RIFE's MIT notice) and every trained-on work's licence and
    attribution travel with model.pt."""
    import pandas as pd

    shards = write_tiny_shards(tmp_path / "shards", {"train": 2, "val": 1, "test": 1})
    pd.DataFrame({"source": ["a", "a", "b", "c"], "split": ["train", "train", "test", "train"],
                  "license": ["CC BY-SA 3.0", "CC BY-SA 3.0", "CC0-1.0", "public domain"],
                  "attribution": ["Nina", "Nina", "x", "Fleischer"]}
                 ).to_parquet(shards / "manifest.parquet")
    params = parse_vfi_params({
        "model": {"arch": "rife", "lr": 1e-5},
        "train": {"steps": 1, "batch_size": 1, "crop": 48, "val_every": 1, "val_samples": 1,
                  "warmup": 0, "min_lr": 1e-6, "threads": 1, "shuffle": 0,
                  "losses": {"charbonnier": 1.0}}})
    train(params, shards, tmp_path / "models")
    origin = read_checkpoint(tmp_path / "models" / CHECKPOINT_NAME)["provenance"]
    assert "MIT" in origin["weights"] and "hzwer" in origin["weights"]
    assert origin["training_data"] == [
        {"source": "a", "license": "CC BY-SA 3.0", "attribution": "Nina"},
        {"source": "c", "license": "public domain", "attribution": "Fleischer"}]
