"""The interpolation methods by name: one registry for evaluate, benchmark and interpolate.

- ``repeat``: the key drawing nearest in time (f0 at t = 0.5): what a held frame shows;
- ``blend``: (1 - t) f0 + t f2, a cross-fade;
- ``dis``: OpenCV DIS optical flow both ways (:class:`vfi.flow.dis.DisFlow`, flows scaled
  by t), backward-warped with :func:`vfi.nets.warp` and blended by t;
- ``model``: a trained network from a checkpoint, through :func:`vfi.inference.interpolate`;
- ``rife``: RIFE 4.25 as published (:class:`vfi.nets.rife.Rife`), the model's start; both
  RIFE 4.25 methods run on ``MethodOptions.runtime`` (:mod:`vfi.inference.runtime`);
- ``hdv3``: RIFE HDv3 as published (:class:`vfi.nets.hdv3.Hdv3`), the peer: t = 0.5 only,
  so one of :data:`PEERS` (the benchmark's), not of :data:`METHODS` (evaluate's, any t);
- ``model+hdv3``: the two averaged at t = 0.5 (:class:`WithPeer`), one of :data:`COMBINED`.

A :class:`Method` is called on one sample (float C x H x W frames, a scalar t), or via
:meth:`Method.frames` on a uint8 pair at several times (``interpolate``). Timings: NOTES.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from pipeline.core.errors import CommandError
from vfi.config import ModelParams
from vfi.flow.dis import PRESETS, DisFlow
from vfi.inference.checkpoint import DEFAULT_CHECKPOINT, load_model
from vfi.inference.interpolator import interpolate
from vfi.inference.runtime import check_runtime as runtime_check
from vfi.inference.runtime import compile_model
from vfi.inference.tta import averaged, check_tta
from vfi.nets import build_model, linear_blend, warp
from vfi.nets.hdv3 import Hdv3


class MethodError(CommandError):
    """A method that cannot be set up (unknown name, bad option): the message says why."""


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255)


def to_rgb(img: torch.Tensor) -> np.ndarray:
    """3 x H x W float in [0, 1] -> H x W x 3 uint8 (rounded)."""
    out = img.detach().clamp(0, 1).mul(255).round_().to(torch.uint8)
    return out.permute(1, 2, 0).cpu().numpy()


class Method(ABC):
    """Two key frames and a time in, the frame at that time out."""

    name: str

    @abstractmethod
    def __call__(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """3 x H x W float frames in [0, 1] and a scalar t -> 3 x H x W on the CPU."""

    def frames(self, f0: np.ndarray, f2: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """uint8 RGB frames at every time of ``ts`` between the uint8 pair."""
        a, b = to_tensor(f0), to_tensor(f2)
        return [to_rgb(self(a, b, torch.tensor(t))) for t in ts]


class Repeat(Method):
    name = "repeat"

    def __call__(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return f0 if float(t) <= 0.5 else f2


class Blend(Method):
    name = "blend"

    def __call__(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return linear_blend(f0[None], f2[None], t.reshape(1))[0]

    def frames(self, f0: np.ndarray, f2: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """The same formula on uint8 pixels with OpenCV, rounded."""
        return [cv2.addWeighted(f0, 1.0 - t, f2, t, 0.0) for t in ts]


class Dis(Method):
    name = "dis"

    def __init__(self, preset: str = "medium") -> None:
        if preset not in PRESETS:
            raise MethodError(f"DIS preset {preset!r} is not one of {', '.join(PRESETS)}")
        self.flows = DisFlow(preset)

    def __call__(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._warp_blend(f0, f2, self.flows.pair(f0, f2), float(t))

    def frames(self, f0: np.ndarray, f2: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """DIS runs once for the pair (its flows do not depend on t), then every time
        is a scaling, two warps and a blend."""
        a, b = to_tensor(f0), to_tensor(f2)
        pair = self.flows.pair(a, b)
        return [to_rgb(self._warp_blend(a, b, pair, float(t))) for t in ts]

    def _warp_blend(self, f0: torch.Tensor, f2: torch.Tensor, pair: torch.Tensor, t: float
                    ) -> torch.Tensor:
        flow = self.flows.at(pair, t)[None]
        w0 = warp(f0[None], flow[:, :2])[0]
        w2 = warp(f2[None], flow[:, 2:])[0]
        return (1 - t) * w0 + t * w2


def check_scale(scale: float) -> None:
    """RIFE's flow resolution must be in (0, 1]: 0.5 for 1080p and larger."""
    if not 0 < scale <= 1:  # also false for NaN
        raise MethodError(f"--scale must be in (0, 1] (0.5 for 1080p and larger), "
                          f"got {scale:g}")


def check_runtime(runtime: str) -> None:
    """:func:`vfi.inference.runtime.check_runtime`, as the command's error (exit 2)."""
    try:
        runtime_check(runtime)
    except ValueError as err:
        raise MethodError(str(err)) from None


class Model(Method):
    """A network through the one inference path; ``scale`` < 1 estimates a RIFE model's
    flows at that fraction of the resolution (large frames: 0.5 at 1080p); ``runtime``
    says what computes a RIFE model (others always run in torch); ``tta`` averages it
    over mirrored copies of the pair (:mod:`vfi.inference.tta`, 2-4x the cost)."""

    def __init__(self, model: nn.Module, name: str = "model", scale: float = 1.0,
                 runtime: str = "torch", tta: str = "none") -> None:
        check_scale(scale)
        check_runtime(runtime)
        try:
            check_tta(tta)
        except ValueError as err:
            raise MethodError(str(err)) from None
        if hasattr(model, "scale"):
            model.scale = scale
        self.model, self.name, self.tta = compile_model(model, runtime), name, tta
        self.device = next(model.parameters()).device

    def run(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network on the pair, with the test-time augmentation asked for."""
        return averaged(functools.partial(interpolate, self.model), f0, f2, t, self.tta)

    def __call__(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.run(f0, f2, t).cpu()

    @torch.no_grad()
    def frames(self, f0: np.ndarray, f2: np.ndarray, ts: Sequence[float]) -> list[np.ndarray]:
        """The pair's times as one batch (expanded views, no copies); the classical flows
        are computed once for it (:func:`vfi.inference.interpolator.init_flows`)."""
        n = len(ts)
        a = to_tensor(f0)[None].expand(n, -1, -1, -1).to(self.device)
        b = to_tensor(f2)[None].expand(n, -1, -1, -1).to(self.device)
        tt = torch.tensor(ts, dtype=torch.float32, device=self.device)
        return [to_rgb(x) for x in self.run(a, b, tt)]


MIDDLE = 0.5  # the one time RIFE HDv3 predicts
# How far from 0.5 a time still is the middle: container timestamps are rounded
# (Matroska: 1 ms), which moves a 2x run's middle frames by up to ~0.012 at 24 fps.
MIDDLE_SLACK = 0.02


def middles(t: torch.Tensor, n: int) -> torch.Tensor:
    """Which of ``n`` samples' times (a scalar or n of them) are the middle."""
    return (t.reshape(-1).expand(n) - MIDDLE).abs() <= MIDDLE_SLACK


class MiddleOnly(Model):
    """A network of the middle frame only (RIFE HDv3): times within ``MIDDLE_SLACK`` of
    0.5 are run at 0.5; any other is a :class:`MethodError` naming it."""

    def run(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = 1 if f0.dim() == 3 else f0.shape[0]
        if not bool(middles(t, n).all()):
            far = t.reshape(-1)[~middles(t, n)][0]
            raise MethodError(f"{self.name} makes middle frames only (t = 0.5), asked for t = "
                              f"{float(far):.3f}: use --method model+hdv3 for other times")
        return super().run(f0, f2, torch.full_like(t, MIDDLE))


class WithPeer(Model):
    """The model averaged with RIFE HDv3 at t = 0.5, the model alone elsewhere.

    Why: the two networks make different errors, most on easy pairs, so their mean beats
    each (docs/MODEL.md, "Against RIFE HDv3"). HDv3 has no time input, so other times
    (higher rates, retimes of threes) come from the model; a 2x run without a retime and
    the benchmark are all middle frames. ``scale``, ``runtime`` and ``tta`` are the
    model's; HDv3 runs as published."""

    def __init__(self, model: nn.Module, peer: nn.Module, scale: float = 1.0,
                 runtime: str = "torch", tta: str = "none") -> None:
        super().__init__(model, "model+hdv3", scale, runtime, tta)
        self.peer = MiddleOnly(peer, "hdv3")

    def run(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The model's frames, each middle one averaged with HDv3's."""
        out = super().run(f0, f2, t)
        single = f0.dim() == 3  # one sample, a scalar t: a batch of one here
        a, b, mean = (x[None] if single else x for x in (f0, f2, out))
        middle = middles(t, a.shape[0]).nonzero().flatten()
        if len(middle):  # HDv3 on the middle samples only (MiddleOnly snaps their t)
            peer = self.peer.run(a[middle], b[middle], t.reshape(-1).expand(len(a))[middle])
            mean = mean.index_copy(0, middle, (mean[middle] + peer.to(mean.device)) / 2)
        return mean[0] if single else mean


@dataclass(frozen=True)
class MethodOptions:
    """What the methods may need; each takes only its own."""

    checkpoint: Path | None = None  # None: DEFAULT_CHECKPOINT
    dis_preset: str = "medium"
    device: torch.device | None = None
    scale: float = 1.0              # flow resolution of RIFE models (model, rife)
    # What computes RIFE models. torch here: evaluation and the benchmark score the
    # network itself; `interpolate` defaults to openvino (vfi.app.interpolate.Options).
    runtime: str = "torch"
    tta: str = "none"               # test-time augmentation of RIFE models (vfi.inference.tta)


def pretrained_rife(options: MethodOptions) -> Model:
    """RIFE 4.25 as published: the start of the default fine-tune."""
    model = build_model(ModelParams(arch="rife")).to(options.device or "cpu").eval()
    return Model(model, "rife", options.scale, options.runtime, options.tta)


def model_with_peer(options: MethodOptions) -> WithPeer:
    """The checkpoint's model (as ``model`` loads it) with RIFE HDv3 beside it."""
    device = options.device or "cpu"
    return WithPeer(load_model(options.checkpoint or DEFAULT_CHECKPOINT, options.device),
                    Hdv3().to(device).eval(), options.scale, options.runtime, options.tta)


REGISTRY: dict[str, Callable[[MethodOptions], Method]] = {
    "model": lambda o: Model(load_model(o.checkpoint or DEFAULT_CHECKPOINT, o.device),
                             scale=o.scale, runtime=o.runtime, tta=o.tta),
    "rife": pretrained_rife,
    "repeat": lambda o: Repeat(),
    "blend": lambda o: Blend(),
    "dis": lambda o: Dis(o.dis_preset),
    "hdv3": lambda o: MiddleOnly(Hdv3().to(o.device or "cpu").eval(), "hdv3"),
    "model+hdv3": model_with_peer,
}
PEERS = ("hdv3",)  # middle frame only: scored where every t is 0.5 (the benchmark)
# The model with a peer: about 3x the model's cost, run only when asked for by name.
COMBINED = ("model+hdv3",)
METHODS = tuple(n for n in REGISTRY if n not in (*PEERS, *COMBINED))  # any t; table order
WITH_CHECKPOINT = ("model", "model+hdv3")  # the methods that load a checkpoint


def make_method(name: str, options: MethodOptions = MethodOptions()) -> Method:
    """The method called ``name``; ``model`` loads ``options.checkpoint`` (a
    :class:`vfi.inference.checkpoint.CheckpointError` says what is wrong with it)."""
    if name not in REGISTRY:
        raise MethodError(f"unknown method {name!r}: expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name](options)
