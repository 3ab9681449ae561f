"""Where a RIFE model's in-betweens are computed: ``torch`` (the module as it is) or
``openvino`` (the same weights as an OpenVINO CPU graph, built once per padded size).

The OpenVINO graph is IFNet's forward rewritten to do less work, not a conversion:
each of IFNet's blocks reads its full-resolution inputs only through a bilinear
downsampling, so the warps, flows and masks that feed a coarse block are computed only
at the pixels that downsampling reads (1/64 of them at 1/16), and the pieces are
downsampled before they are concatenated. The results are torch's within float rounding
(tests: ~1e-5). The graph is built with OpenVINO's op API straight from the weights:
``openvino.convert_model`` needed ~20 s per size, this ~1 s. Inference only: a model in
training mode, on another device or with gradients on runs through torch.

:func:`compile_model` wraps a :class:`vfi.nets.rife.Rife` (pretrained or fine-tuned) and
returns any other network as it is; without the ``openvino`` package it warns once and
keeps torch. Measurements: docs/MODEL.md, "CPU runtime".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from vfi.nets.base import finish
from vfi.nets.rife import BLOCKS, Rife

log = logging.getLogger("inbetweener.vfi.runtime")

RUNTIMES = ("torch", "openvino")
LEAK = 0.2  # IFNet's LeakyReLU slope
Node = Any  # an openvino output (openvino is imported lazily)


class RuntimeUnavailable(RuntimeError):
    """The runtime's package is not importable (or cannot run this model)."""


def check_runtime(name: str) -> None:
    """A ValueError naming the choices for an unknown runtime."""
    if name not in RUNTIMES:
        raise ValueError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {name!r}")


def compile_model(model: nn.Module, runtime: str = "torch") -> nn.Module:
    """``model`` for ``runtime``: an :class:`OpenVinoRife` for a Rife on the CPU, else the
    model itself (with a one-line warning when openvino was asked for and cannot be had)."""
    check_runtime(runtime)
    if runtime == "torch" or not isinstance(model, Rife):
        return model
    try:
        _openvino()
    except RuntimeUnavailable as err:
        log.warning("runtime openvino unavailable (%s): using torch", err)
        return model
    if next(model.parameters()).device.type != "cpu":
        log.warning("runtime openvino runs on the CPU only: using torch on %s",
                    next(model.parameters()).device)
        return model
    return OpenVinoRife(model)


def _openvino() -> Any:
    """The openvino module, or RuntimeUnavailable saying how to get it."""
    try:
        import openvino
    except ImportError as err:
        raise RuntimeUnavailable(f"{err}; pip install openvino") from None
    return openvino


class OpenVinoRife(nn.Module):
    """A Rife whose eval-mode forward runs an OpenVINO graph compiled per input size.

    Same call contract as ``Rife.forward``; ``scale`` and ``multiple`` are the wrapped
    model's (setting ``scale`` forgets the compiled graphs). The weights are read when a
    size is first compiled: a model whose weights change later needs a new wrapper.
    """

    def __init__(self, rife: Rife) -> None:
        super().__init__()
        self.rife = rife
        self.params = rife.params
        self.compiled: dict[tuple[int, int], Any] = {}
        self.failed = False  # a graph that did not build: torch from then on

    @property
    def scale(self) -> float:
        return self.rife.scale

    @scale.setter
    def scale(self, value: float) -> None:
        self.rife.scale = value
        self.compiled.clear()

    @property
    def multiple(self) -> int:
        return self.rife.multiple

    def forward(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor,
                init: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``init`` is ignored, as RIFE does; one graph call per sample of the batch."""
        if self.training or self.failed or f0.device.type != "cpu" or (
                torch.is_grad_enabled() and (f0.requires_grad or f2.requires_grad)):
            return self.rife(f0, f2, t, init)
        request = self.request(*f0.shape[-2:])
        if request is None:
            return self.rife(f0, f2, t, init)
        times = t.to(f0).reshape(-1).expand(f0.shape[0])
        outs = [self._one(request, f0[i:i + 1], f2[i:i + 1], times[i]) for i in range(f0.shape[0])]
        return {k: torch.cat([o[k] for o in outs]) for k in ("pred", "flow", "mask")}

    def request(self, height: int, width: int) -> Any:
        """The infer request for this size, compiled on first use (None if that failed)."""
        key = (height, width)
        if key not in self.compiled:
            try:
                self.compiled[key] = compile_graph(self.rife, height, width)
            except Exception as err:  # noqa: BLE001 - any OpenVINO failure: torch, never a crash
                log.warning("runtime openvino failed at %dx%d (%s): using torch",
                            width, height, err)
                self.failed = True
                return None
        return self.compiled[key]

    @staticmethod
    def _one(request: Any, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor
             ) -> dict[str, torch.Tensor]:
        """One sample through the graph; outputs copied out of OpenVINO's buffers."""
        inputs = [x.detach().float().contiguous().numpy() for x in (f0, f2, t.reshape(1, 1, 1, 1))]
        request.infer(inputs)
        out = [torch.from_numpy(request.get_output_tensor(i).data.copy()) for i in range(3)]
        return {"pred": finish(out[0], False), "flow": out[1], "mask": out[2]}


def compile_graph(rife: Rife, height: int, width: int) -> Any:
    """An infer request for ``rife`` at H x W (a multiple of ``rife.multiple``).

    f32 is forced: OpenVINO would pick bf16 on CPUs that have it, a quality change; the
    threads are torch's (the app's ``--threads``); denormals are flushed as Rife does.
    """
    ov = _openvino()
    state = {k: v.detach().cpu().float().numpy() for k, v in rife.net.state_dict().items()}
    scales = [2.0 ** (BLOCKS - 1 - i) / rife.scale for i in range(BLOCKS)]
    model = IFNetGraph(state, height, width, scales).model()
    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32", "CPU_DENORMALS_OPTIMIZATION": True}
    log.info("runtime openvino: compiling RIFE for %dx%d", width, height)
    return ov.Core().compile_model(model, "CPU", config).create_infer_request()


@dataclass(frozen=True)
class Lerp:
    """Bilinear resampling along one axis as two gathers: out = x[i0] * w0 + x[i1] * w1."""

    i0: np.ndarray
    i1: np.ndarray
    w0: np.ndarray
    w1: np.ndarray

    def pick(self, rows: np.ndarray) -> Lerp:
        """The same resampling evaluated only at output positions ``rows``."""
        return Lerp(self.i0[rows], self.i1[rows], self.w0[rows], self.w1[rows])

    def within(self, sample: np.ndarray) -> Lerp:
        """Indices into ``sample`` (sorted input positions that hold every index used)."""
        return Lerp(np.searchsorted(sample, self.i0), np.searchsorted(sample, self.i1),
                    self.w0, self.w1)


def bilinear(size_in: int, factor: float) -> Lerp:
    """torch's ``interpolate(scale_factor=factor, mode="bilinear", align_corners=False)``
    along one axis, index for index (its float32 source positions, clamped at 0)."""
    size_out = int(np.floor(size_in * factor))
    step = np.float32(1.0 / factor)
    src = np.maximum(step * (np.arange(size_out, dtype=np.float32) + np.float32(0.5))
                     - np.float32(0.5), np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    i1 = np.where(i0 < size_in - 1, i0 + 1, i0)
    w1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    return Lerp(i0, i1, (np.float32(1) - w1).astype(np.float32), w1)


def dims(x: Node) -> list[int]:
    """The static shape of an OpenVINO node or output."""
    out = x.output(0) if hasattr(x, "output") else x
    return list(out.get_partial_shape().to_shape())


def sample_rows(down: Lerp, size: int) -> np.ndarray | None:
    """The full-resolution rows a downsampling reads; None when it reads them all."""
    rows = np.unique(np.concatenate((down.i0, down.i1)))
    return None if len(rows) == size else rows


class IFNetGraph:
    """IFNet's inference forward for one H x W as an OpenVINO model, from its weights.

    Block i sees its inputs downsampled by ``scales[i]``; every full-resolution field
    it needs (warped frames and features, the flow so far, the last mask and features)
    is evaluated only at the rows x columns that downsampling reads, then downsampled.
    """

    def __init__(self, state: dict[str, np.ndarray], height: int, width: int,
                 scales: list[float]) -> None:
        import openvino.opset13 as ops

        self.ops, self.state = ops, state
        self.height, self.width, self.scales = height, width, scales
        self.terms: list[tuple[Node, float]] = []  # each block's output and its scale
        self.full_flow: tuple[int, Node] | None = None  # flow of the first n terms, full size

    def model(self) -> Any:
        """The model: inputs f0, f2 (1 x 3 x H x W), t (1 x 1 x 1 x 1); outputs pred, flow, mask."""
        import openvino as ov

        ops = self.ops
        f0, f2 = (ops.parameter([1, 3, self.height, self.width], np.float32, name=n)
                  for n in ("f0", "f2"))
        t = ops.parameter([1, 1, 1, 1], np.float32, name="t")
        feats = ops.split(self.head(ops.concat([f0, f2], 0)), 0, 2)
        images = (f0.output(0), f2.output(0), feats.output(0), feats.output(1))
        for i in range(BLOCKS):
            self.terms.append((self.block(i, self.block_input(i, images, t)), self.scales[i]))
        return ov.Model(list(self.finish(images)), [f0, f2, t], "rife")

    def finish(self, images: tuple[Node, ...]) -> tuple[Node, Node, Node]:
        """IFNet's last step at full size: warp both frames by the final flow, blend by the mask."""
        ops = self.ops
        flow = self.flow_at(len(self.terms), None, None)
        tmp, scale = self.terms[-1]
        mask = ops.sigmoid(self.up_at(self.channels(tmp, 4, 5), scale, None, None))
        w0 = self.warp(images[0], self.channels(flow, 0, 2), None, None)
        w2 = self.warp(images[1], self.channels(flow, 2, 4), None, None)
        merged = ops.add(ops.multiply(w0, mask), ops.multiply(w2, ops.subtract(self.const(1.0), mask)))
        return ops.clamp(merged, 0.0, 1.0), flow, mask

    def block_input(self, i: int, images: tuple[Node, ...], t: Node) -> Node:
        """Block i's input, concatenated after the downsampling, in IFNet's channel order."""
        scale = self.scales[i]
        down_h, down_w = bilinear(self.height, 1 / scale), bilinear(self.width, 1 / scale)
        rows, cols = sample_rows(down_h, self.height), sample_rows(down_w, self.width)
        dh = down_h if rows is None else down_h.within(rows)
        dw = down_w if cols is None else down_w.within(cols)
        down = lambda x: self.lerp(self.lerp(x, dh, 2), dw, 3)
        tmap = self.ops.broadcast(t, self.const(np.array([1, 1, len(dh.i0), len(dw.i0)])))
        if i == 0:
            return self.ops.concat([down(self.gather(x, rows, cols)) for x in images] + [tmap], 1)
        flow = self.flow_at(i, rows, cols)
        tmp, last = self.terms[-1]
        pieces = [self.warp(images[0], self.channels(flow, 0, 2), rows, cols),
                  self.warp(images[1], self.channels(flow, 2, 4), rows, cols),
                  self.warp(images[2], self.channels(flow, 0, 2), rows, cols),
                  self.warp(images[3], self.channels(flow, 2, 4), rows, cols)]
        rest = self.up_at(self.channels(tmp, 4, 13), last, rows, cols)  # mask, features
        flow_in = self.ops.multiply(down(flow), self.const(1.0 / scale))
        return self.ops.concat([down(x) for x in pieces] + [tmap, down(rest), flow_in], 1)

    def flow_at(self, n: int, rows: np.ndarray | None, cols: np.ndarray | None) -> Node:
        """The sum of the first n blocks' flows, each upsampled by its scale, at rows x cols
        (at full size, the previous sum is reused when there is one)."""
        full = rows is None and cols is None
        if full and self.full_flow is not None and self.full_flow[0] == n - 1:
            total = self.ops.add(self.full_flow[1], self.term_at(n - 1, rows, cols))
        else:
            total = self.term_at(0, rows, cols)
            for k in range(1, n):
                total = self.ops.add(total, self.term_at(k, rows, cols))
        if full:
            self.full_flow = (n, total)
        return total

    def term_at(self, k: int, rows: np.ndarray | None, cols: np.ndarray | None) -> Node:
        tmp, scale = self.terms[k]
        up = self.up_at(self.channels(tmp, 0, 4), scale, rows, cols)
        return self.ops.multiply(up, self.const(scale))

    def up_at(self, x: Node, scale: float, rows: np.ndarray | None, cols: np.ndarray | None
              ) -> Node:
        """``interpolate(x, scale_factor=scale)`` (to full size) at rows x cols only."""
        shape = dims(x)
        up_h, up_w = bilinear(shape[2], scale), bilinear(shape[3], scale)
        up_h = up_h if rows is None else up_h.pick(rows)
        up_w = up_w if cols is None else up_w.pick(cols)
        return self.lerp(self.lerp(x, up_h, 2), up_w, 3)

    def warp(self, image: Node, flow: Node, rows: np.ndarray | None, cols: np.ndarray | None
             ) -> Node:
        """IFNet's backward warp (grid_sample, border, align_corners) at rows x cols."""
        ops = self.ops
        gx = torch.linspace(-1.0, 1.0, self.width).numpy()
        gy = torch.linspace(-1.0, 1.0, self.height).numpy()
        gx, gy = (gx if cols is None else gx[cols]), (gy if rows is None else gy[rows])
        x = ops.add(ops.divide(self.channels(flow, 0, 1), self.const((self.width - 1.0) / 2.0)),
                    self.const(gx.reshape(1, 1, 1, -1)))
        y = ops.add(ops.divide(self.channels(flow, 1, 2), self.const((self.height - 1.0) / 2.0)),
                    self.const(gy.reshape(1, 1, -1, 1)))
        grid = ops.transpose(ops.concat([x, y], 1), self.const(np.array([0, 2, 3, 1])))
        return ops.grid_sample(image, grid, {"align_corners": True, "mode": "bilinear",
                                             "padding_mode": "border"})

    def lerp(self, x: Node, how: Lerp, axis: int) -> Node:
        """``how`` along ``axis``; nothing at all for an identity resampling."""
        size = dims(x)[axis]
        if len(how.i0) == size and not how.w1.any() and (how.i0 == np.arange(size)).all():
            return x
        shape = [1, 1, -1, 1] if axis == 2 else [1, 1, 1, -1]
        ops, index = self.ops, self.const(np.array(axis))
        a = ops.multiply(ops.gather(x, self.const(how.i0), index), self.const(how.w0.reshape(shape)))
        if not how.w1.any():
            return a
        b = ops.multiply(ops.gather(x, self.const(how.i1), index), self.const(how.w1.reshape(shape)))
        return ops.add(a, b)

    def gather(self, x: Node, rows: np.ndarray | None, cols: np.ndarray | None) -> Node:
        ops = self.ops
        if rows is not None:
            x = ops.gather(x, self.const(rows), self.const(np.array(2)))
        return x if cols is None else ops.gather(x, self.const(cols), self.const(np.array(3)))

    def channels(self, x: Node, start: int, stop: int) -> Node:
        return self.ops.slice(x, self.const(np.array([start])), self.const(np.array([stop])),
                              self.const(np.array([1])), self.const(np.array([1])))

    def head(self, x: Node) -> Node:
        """IFNet's feature encoder (``encode``): three convs, a transposed conv."""
        for i in range(3):
            x = self.conv(x, f"encode.cnn{i}", stride=2 if i == 0 else 1)
        return self.transposed(x, "encode.cnn3")

    def block(self, i: int, x: Node) -> Node:
        """IFBlock i without its resampling: two stride-2 convs, eight residual convs, a
        transposed conv and a pixel shuffle; 13 channels out (flow 4, mask 1, features 8)."""
        p = f"block{i}."
        x = self.conv(self.conv(x, p + "conv0.0.0", stride=2), p + "conv0.1.0", stride=2)
        for k in range(8):
            x = self.residual(x, f"{p}convblock.{k}.")
        return self.ops.depth_to_space(self.transposed(x, p + "lastconv.0"), "depth_first", 2)

    def residual(self, x: Node, prefix: str) -> Node:
        """``leaky(conv(x) * beta + x)``, with beta folded into the conv's weights."""
        beta = self.state[prefix + "beta"].reshape(-1)
        weight = self.state[prefix + "conv.weight"] * beta.reshape(-1, 1, 1, 1)
        y = self._conv(x, weight, self.state[prefix + "conv.bias"] * beta, 1)
        return self.leaky(self.ops.add(y, x))

    def conv(self, x: Node, prefix: str, stride: int = 1) -> Node:
        """3x3 conv, padding 1, then LeakyReLU(0.2)."""
        return self.leaky(self._conv(x, self.state[prefix + ".weight"],
                                     self.state[prefix + ".bias"], stride))

    def _conv(self, x: Node, weight: np.ndarray, bias: np.ndarray, stride: int) -> Node:
        y = self.ops.convolution(x, self.const(weight), [stride] * 2, [1, 1], [1, 1], [1, 1])
        return self.ops.add(y, self.const(bias.reshape(1, -1, 1, 1)))

    def transposed(self, x: Node, prefix: str) -> Node:
        """ConvTranspose2d(kernel 4, stride 2, padding 1): twice the size."""
        y = self.ops.convolution_backprop_data(x, self.const(self.state[prefix + ".weight"]),
                                               [2, 2], pads_begin=[1, 1], pads_end=[1, 1])
        return self.ops.add(y, self.const(self.state[prefix + ".bias"].reshape(1, -1, 1, 1)))

    def leaky(self, x: Node) -> Node:
        return self.ops.prelu(x, self.const(np.array([LEAK], np.float32)))

    def const(self, value: Any) -> Node:
        """A constant: float32 for floats, int64 for indices."""
        array = np.asarray(value)
        dtype = np.float32 if array.dtype.kind == "f" else np.int64
        return self.ops.constant(np.ascontiguousarray(array, dtype=dtype))
