"""The one inference path: pad, start from classical flows when the model wants them,
run, crop back. Evaluation, the ``benchmark`` and ``interpolate`` commands and
training's validation all predict through :func:`interpolate` (FILM's interpolator:
it never imports training)."""

from __future__ import annotations

import torch
from torch import nn

from vfi.config import ModelParams
from vfi.flow.dis import DisFlow
from vfi.nets import FlowNet, pad_to_multiple


def needs_init(model: nn.Module) -> bool:
    """Whether the model starts from classical flows (``flow_init`` other than zero)."""
    params = getattr(model, "params", None)
    return isinstance(model, FlowNet) and params is not None and params.flow_init != "zero"


def classical_flow(params: ModelParams) -> DisFlow:
    """The classical flow a model with these params starts from (and trains against):
    DIS with ``dis_preset``, refined (pan candidate, splatting to t) for ``dis_pan``."""
    return DisFlow(params.dis_preset, refine=params.flow_init == "dis_pan")


def init_flows(model: nn.Module, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor
               ) -> torch.Tensor | None:
    """Classical flows t->0, t->1 for each sample of a batch when the model wants them.

    The flows between a pair do not depend on t, so a batch of one pair at many times
    (``interpolate --factor 4``) computes them once.
    """
    if not needs_init(model):
        return None
    flow = classical_flow(model.params)
    pairs: list[torch.Tensor] = []
    for i in range(f0.shape[0]):
        same = i > 0 and torch.equal(f0[i], f0[i - 1]) and torch.equal(f2[i], f2[i - 1])
        pairs.append(pairs[-1] if same else flow.pair(f0[i], f2[i]))
    return torch.stack([flow.at(pair, tt) for pair, tt in zip(pairs, t)])


def forward_padded(model: nn.Module, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor,
                   init: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``model`` on any size: pad to ``model.multiple``, run, crop every output back."""
    multiple = int(getattr(model, "multiple", 1))
    p0, (height, width) = pad_to_multiple(f0, multiple)
    p2, _ = pad_to_multiple(f2, multiple)
    pinit = None if init is None else pad_to_multiple(init, multiple)[0]
    out = model(p0, p2, t, pinit)
    return {k: v[..., :height, :width] for k, v in out.items()}


@torch.no_grad()
def interpolate(model: nn.Module, f0: torch.Tensor, f2: torch.Tensor,
                t: float | torch.Tensor = 0.5, init: torch.Tensor | None = None
                ) -> torch.Tensor:
    """The frame at ``t`` between ``f0`` and ``f2`` (C x H x W or B x C x H x W, any size).

    Inputs move to the model's device; the result has the input's shape, on that device.
    ``init``: the classical flows (B x 4 x H x W) when the caller already has them (a
    fixed validation set), else :func:`init_flows` computes them.
    """
    device = next(model.parameters()).device
    single = f0.dim() == 3
    a = (f0.unsqueeze(0) if single else f0).to(device)
    b = (f2.unsqueeze(0) if single else f2).to(device)
    tt = torch.as_tensor(t, dtype=a.dtype, device=device).reshape(-1).expand(a.shape[0])
    was_training = model.training
    model.eval()
    try:
        if init is None:
            init = init_flows(model, a, b, tt)
        pred = forward_padded(model, a, b, tt, None if init is None else init.to(device))["pred"]
    finally:
        model.train(was_training)
    return pred[0] if single else pred


def default_device() -> torch.device:
    """CUDA when there is one; everything also runs on the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
