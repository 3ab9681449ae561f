"""``model+hdv3``: the model's and RIFE HDv3's middle frames averaged, the model alone at
other times (HDv3 has no time input); run only when asked for by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support.cels import frames
from support.checkpoints import tiny_flow_checkpoint

from vfi.inference.checkpoint import CheckpointError
from vfi.inference.methods import COMBINED, METHODS, MethodOptions, make_method, to_rgb
from vfi.inference.metrics import psnr


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained flow model on DIS flows: a method whose errors differ from HDv3's."""
    torch.set_num_threads(1)
    return tiny_flow_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def methods(checkpoint: Path) -> tuple:
    options = MethodOptions(checkpoint=checkpoint)
    return tuple(make_method(n, options) for n in ("model", "hdv3", "model+hdv3"))


def test_the_middle_frame_is_the_mean_of_both(checkpoint: Path) -> None:
    model, hdv3, both = methods(checkpoint)
    f0, g, f2 = frames(12.0, (0.0, 0.5, 1.0), 64, 80)
    half = torch.tensor(0.5)
    a, b, mean = model(f0, f2, half), hdv3(f0, f2, half), both(f0, f2, half)
    assert float((a - b).abs().max()) > 0.05  # two different answers to average
    assert torch.allclose(mean, (a + b) / 2, atol=1e-6)
    assert float(psnr(mean[None], g[None])[0]) > 25  # still the middle of the motion


def test_other_times_are_the_models_alone(checkpoint: Path) -> None:
    """A 4x retime's batch: 0.25 and 0.75 from the model, 0.5 averaged with HDv3."""
    model, hdv3, both = methods(checkpoint)
    f0, f2 = (to_rgb(f) for f in frames(12.0, (0.0, 1.0), 64, 80))
    ts = [0.25, 0.5, 0.75]
    ours, alone = both.frames(f0, f2, ts), model.frames(f0, f2, ts)
    assert np.array_equal(ours[0], alone[0]) and np.array_equal(ours[2], alone[2])
    peer = hdv3.frames(f0, f2, [0.5])[0]
    mean = (alone[1].astype(int) + peer.astype(int)) / 2
    assert np.abs(ours[1] - mean).max() <= 1  # one rounding step
    assert not np.array_equal(ours[1], alone[1])
    # a middle frame off by a container's timestamp rounding is still averaged; 0.45 is not
    near, at = both.frames(f0, f2, [0.49, 0.45]), model.frames(f0, f2, [0.49, 0.45])
    assert np.abs(near[0] - (at[0].astype(int) + peer.astype(int)) / 2).max() <= 1
    assert np.array_equal(near[1], at[1])


def test_asked_for_by_name_and_needs_a_checkpoint(tmp_path: Path) -> None:
    assert COMBINED == ("model+hdv3",) and "model+hdv3" not in METHODS  # not evaluate's
    with pytest.raises(CheckpointError, match="no checkpoint"):
        make_method("model+hdv3", MethodOptions(checkpoint=tmp_path / "none.pt"))
