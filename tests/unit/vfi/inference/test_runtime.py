"""``--runtime openvino``: RIFE's OpenVINO graph gives torch's frames (within float
rounding) at any size and scale, compiles once per padded size, falls back to torch
with a warning when it cannot run, and is what ``interpolate`` runs from the command line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inbetweener.cli import main
from pipeline.synth import SynthSpec, generate
from vfi.config import ModelParams
from vfi.inference import runtime
from vfi.inference.interpolator import interpolate
from vfi.inference.methods import MethodError, MethodOptions, make_method
from vfi.inference.runtime import OpenVinoRife, compile_model
from vfi.nets import build_model

pytest.importorskip("openvino")

TIGHT = {"pred": 1e-4, "flow": 2e-3, "mask": 1e-4}  # float rounding, not a different model


def smooth_frames(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """n x 3 x H x W random images with structure at several scales (flow has edges to follow)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, height // 8, width // 8, generator=g)
    fine = torch.rand(n, 3, height // 2, width // 2, generator=g)
    up = lambda x: F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return (0.8 * up(coarse) + 0.2 * up(fine)).clamp(0, 1)


@pytest.fixture(scope="module")
def rife() -> torch.nn.Module:
    torch.set_num_threads(1)
    return build_model(ModelParams(arch="rife")).eval()


def assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    for key, tol in TIGHT.items():
        assert got[key].shape == want[key].shape, key
        assert float((got[key] - want[key]).abs().max()) < tol, key


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_openvino_gives_torch_frames(rife: torch.nn.Module, scale: float) -> None:
    """Two pairs in one batch at different t, through the raw forward (no padding)."""
    rife.scale = scale
    try:
        frames = smooth_frames(4, 128, 128)
        f0, f2, t = frames[:2], frames[2:], torch.tensor([0.5, 0.3])
        fast = OpenVinoRife(rife).eval()
        with torch.no_grad():
            assert_same(fast(f0, f2, t), rife(f0, f2, t))
    finally:
        rife.scale = 1.0


def test_sizes_that_need_padding(rife: torch.nn.Module) -> None:
    """interpolate() pads 96 x 100 to 128 x 128 for the graph and crops back."""
    fast = compile_model(rife, "openvino")
    a, b = smooth_frames(2, 96, 100, seed=1)
    got, want = interpolate(fast, a, b, 0.5), interpolate(rife, a, b, 0.5)
    assert got.shape == a.shape
    assert float((got - want).abs().max()) < TIGHT["pred"]


def test_one_compile_per_size(rife: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []
    real = runtime.compile_graph
    monkeypatch.setattr(runtime, "compile_graph",
                        lambda model, h, w: sizes.append((h, w)) or real(model, h, w))
    fast = compile_model(rife, "openvino")
    for h, w in [(64, 64), (60, 50), (64, 64), (96, 64), (64, 64)]:
        a, b = smooth_frames(2, h, w)
        interpolate(fast, a, b, 0.5)
    assert sizes == [(64, 64), (128, 64)]  # 60 x 50 pads to 64 x 64 as well


def test_training_and_gradients_stay_in_torch(rife: torch.nn.Module,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "compile_graph", lambda *a: pytest.fail("compiled"))
    fast = OpenVinoRife(rife)
    a, b = smooth_frames(2, 64, 64)
    fast.train()
    try:
        assert fast(a[None], b[None], torch.tensor([0.5]))["pred"].shape == (1, 3, 64, 64)
    finally:
        rife.eval()


def test_missing_openvino_warns_and_uses_torch(rife: torch.nn.Module,
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with caplog.at_level(logging.WARNING, logger="inbetweener"):
        assert compile_model(rife, "openvino") is rife
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "openvino unavailable" in warnings[0]
    assert "using torch" in warnings[0] and "\n" not in warnings[0]


def test_a_graph_that_fails_to_build_falls_back(rife: torch.nn.Module,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("no such op")

    monkeypatch.setattr(runtime, "compile_graph", broken)
    fast = compile_model(rife, "openvino")
    a, b = smooth_frames(2, 64, 64)
    with caplog.at_level(logging.WARNING, logger="inbetweener"):
        got = interpolate(fast, a, b, 0.5)
        interpolate(fast, a, b, 0.5)
    assert torch.equal(got, interpolate(rife, a, b, 0.5))
    assert sum("no such op" in r.getMessage() for r in caplog.records) == 1


def test_other_networks_and_unknown_runtimes() -> None:
    flow = build_model(ModelParams(arch="flow", width=8, depth=1, scales=2))
    assert compile_model(flow, "openvino") is flow  # nothing to compile: torch
    with pytest.raises(MethodError, match="--runtime must be one of torch, openvino"):
        make_method("rife", MethodOptions(runtime="tensorrt"))
    assert isinstance(make_method("rife", MethodOptions(runtime="openvino")).model, OpenVinoRife)
    assert make_method("rife").model.__class__.__name__ == "Rife"  # evaluation: torch


# --- the command ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a second at 96 x 64 with cuts and holds: a few in-betweens to make."""
    spec = SynthSpec(clips=1, seed=1, width=96, height=64, seconds=0.5, min_shot_seconds=0.5,
                     max_shot_seconds=0.5, static_prob=0.0, repeat_prob=0.0)
    return generate(spec, tmp_path_factory.mktemp("clip")).videos[0]


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
                        ).astype(np.int16)


def test_cli_runtime(clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Both runtimes as typed give the same frames. Encoded losslessly (``--crf 0``): at
    the default crf, x264's rate control spreads a one-level difference in one in-between
    over the whole clip (measured: 1-2 grey levels on average, the first frame included),
    which would test the encoder, not the runtimes."""
    outs = {}
    for name in ("openvino", "torch"):
        outs[name] = tmp_path / f"{name}.mp4"
        with caplog.at_level(logging.INFO, logger="inbetweener"):
            assert main(["interpolate", str(clip), str(outs[name]), "--method", "rife",
                         "--runtime", name, "--quiet", "--crf", "0"]) == 0
    assert any("compiling RIFE for 128x64" in r.getMessage() for r in caplog.records)
    a, b = decode(outs["openvino"]), decode(outs["torch"])
    assert len(a) == len(b) == 24
    assert float(np.abs(a - b).mean()) < 0.05


def test_cli_rejects_an_unknown_runtime(clip: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    assert main(["interpolate", str(clip), str(tmp_path / "out.mp4"), "--runtime", "gpu",
                 "--quiet"]) == 2
    assert "--runtime must be one of torch, openvino, got 'gpu'" in capsys.readouterr().err


def test_cli_tta(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--tta reverse`` as typed: the same frame count and other in-betweens (two passes
    averaged, close to one pass's); an unknown option exits 2 naming the choices."""
    outs = {}
    for tta in ("none", "reverse"):
        outs[tta] = tmp_path / f"{tta}.mp4"
        assert main(["interpolate", str(clip), str(outs[tta]), "--method", "rife",
                     "--tta", tta, "--quiet"]) == 0
    a, b = decode(outs["none"]), decode(outs["reverse"])
    assert len(a) == len(b) == 24
    diff = float(np.abs(a - b).mean())
    assert 0.05 < diff < 5.0
    assert main(["interpolate", str(clip), str(tmp_path / "x.mp4"), "--tta", "sideways",
                 "--method", "rife", "--quiet"]) == 2
    assert "--tta 'sideways': expected one of none, reverse, flip, both" in capsys.readouterr().err
