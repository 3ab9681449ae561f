"""The networks, the warp, the losses and the metrics on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from vfi.config import ModelParams
from vfi.inference.interpolator import forward_padded, interpolate
from vfi.inference.metrics import psnr, ssim
from vfi.nets import build_model, linear_blend, param_count
from vfi.nets.warp import warp
from vfi.training.losses import LOSSES, census, charbonnier, edge, total_loss
from vfi.training.losses import psnr as psnr_loss

TINY = {"flow": ModelParams(arch="flow", width=8, depth=1, scales=3),
        "unet": ModelParams(arch="unet", width=8, depth=1, scales=3)}


def test_warp_zero_flow_is_identity() -> None:
    img = torch.rand(2, 3, 17, 23)
    assert torch.allclose(warp(img, torch.zeros(2, 2, 17, 23)), img, atol=1e-5)


def test_warp_integer_flow_shifts() -> None:
    img = torch.rand(1, 3, 20, 30)
    flow = torch.zeros(1, 2, 20, 30)
    flow[:, 0], flow[:, 1] = 3.0, -2.0  # out[y, x] = img[y - 2, x + 3]
    out = warp(img, flow)
    assert torch.allclose(out[..., 2:, :-3], img[..., :-2, 3:], atol=1e-5)


def test_warp_rejects_mismatched_flow() -> None:
    with pytest.raises(ValueError):
        warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 4, 4))


@pytest.mark.parametrize("arch", list(TINY), ids=list(TINY))
@pytest.mark.parametrize("size", [(37, 53), (16, 16), (64, 48)], ids=str)
def test_interpolate_any_size(arch: str, size: tuple[int, int]) -> None:
    model = build_model(TINY[arch])
    f0, f2 = torch.rand(3, *size), torch.rand(3, *size)
    out = interpolate(model, f0, f2, 0.3)
    assert out.shape == (3, *size) and out.min() >= 0 and out.max() <= 1
    batch = interpolate(model, f0.expand(2, -1, -1, -1), f2.expand(2, -1, -1, -1),
                        torch.tensor([0.2, 0.7]))
    assert batch.shape == (2, 3, *size)


@pytest.mark.parametrize("arch", list(TINY), ids=list(TINY))
def test_untrained_model_is_the_linear_blend(arch: str) -> None:
    model = build_model(TINY[arch]).eval()
    f0, f2, t = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.tensor([0.25, 0.6])
    out = forward_padded(model, f0, f2, t)["pred"]
    assert torch.allclose(out, linear_blend(f0, f2, t), atol=1e-2)


def test_build_from_dict_and_param_count() -> None:
    model = build_model(TINY["flow"].model_dump())
    assert param_count(model) > 1000
    assert param_count(build_model(ModelParams(arch="flow"))) < 1_000_000


def test_census_zero_for_identical_positive_otherwise() -> None:
    img = torch.rand(2, 3, 24, 24)
    assert float(census({"f1": img}, {"pred": img})) == 0.0
    assert float(census({"f1": img}, {"pred": img.roll(2, -1)})) > 0.01
    assert float(census({"f1": img}, {"pred": img * 0.5 + 0.2})) < 0.05  # brightness-robust


def test_edge_loss_sees_a_softened_line_not_a_paint_offset() -> None:
    """A one-pixel dark line on paper: blurring it costs, shifting all the paint's
    brightness does not, and the same picture costs only the Charbonnier floor."""
    img = torch.ones(1, 3, 24, 24)
    img[..., 12] = 0.0
    soft = torch.nn.functional.avg_pool2d(img, (1, 3), stride=1, padding=(0, 1),
                                          count_include_pad=False)
    floor = float(edge({"f1": img}, {"pred": img}))
    assert floor == pytest.approx(1e-3)
    assert float(edge({"f1": img}, {"pred": img - 0.2})) == pytest.approx(floor)
    assert float(edge({"f1": img}, {"pred": soft})) > floor + 0.01


def test_charbonnier_and_registry() -> None:
    img = torch.rand(1, 3, 8, 8)
    assert float(charbonnier({"f1": img}, {"pred": img})) == pytest.approx(1e-3)
    assert set(LOSSES) == {"charbonnier", "census", "edge", "pyramid", "distill", "psnr"}
    total, parts = total_loss({"charbonnier": 1.0, "census": 0.5}, {"f1": img}, {"pred": 1 - img})
    assert float(total) > 0 and set(parts) == {"charbonnier", "census"}
    with pytest.raises(KeyError):
        total_loss({"l2": 1.0}, {"f1": img}, {"pred": img})


def test_psnr_loss_is_minus_the_mean_psnr_and_pulls_hardest_on_the_easy_sample() -> None:
    """Two samples, errors 0.01 (40 dB) and 0.1 (20 dB) everywhere: the loss is minus
    their mean PSNR over 10 (the floor's share aside), and the same change of a pixel
    moves it ten times more on the easy sample, where Charbonnier moves both alike.
    The evaluation's PSNR of the same frames agrees."""
    gt = torch.full((2, 3, 8, 8), 0.5)
    pred = (gt + torch.tensor([0.01, 0.1]).view(2, 1, 1, 1)).requires_grad_()
    loss = psnr_loss({"f1": gt}, {"pred": pred})
    assert float(loss) == pytest.approx(-(40 + 20) / 2 / 10, abs=0.05)
    assert float(loss) == pytest.approx(-float(psnr(pred.detach(), gt).mean()) / 10, abs=0.05)
    loss.backward()
    easy, hard = pred.grad[0].abs().mean(), pred.grad[1].abs().mean()
    assert float(easy / hard) == pytest.approx(10, rel=0.15)
    pred.grad = None
    charbonnier({"f1": gt}, {"pred": pred}).backward()
    ratio = pred.grad[0].abs().mean() / pred.grad[1].abs().mean()
    assert float(ratio) == pytest.approx(1, rel=0.01)


@pytest.mark.parametrize("name", ["charbonnier", "census", "edge", "distill", "psnr"])
def test_losses_score_the_picture_not_a_crops_padding(name: str) -> None:
    """A crop padded past a small frame (``valid`` 0 below row 20): what the prediction
    does on the padding costs nothing, a change on the picture does; with the picture
    everywhere the loss is the unmasked one."""
    gen = torch.Generator().manual_seed(0)
    gt, pred = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)
    flow = torch.rand(2, 4, 32, 32, generator=gen)
    valid = torch.ones(2, 1, 32, 32)
    valid[..., 20:, :] = 0
    batch, out = {"f1": gt, "flow": flow, "valid": valid}, {"pred": pred, "flow": flow * 2}
    loss = LOSSES[name]
    base = float(loss(batch, out))
    on_pad = {"pred": pred.clone(), "flow": out["flow"].clone()}
    on_pad["pred"][..., 24:, :], on_pad["flow"][..., 24:, :] = 0.0, 100.0
    assert float(loss(batch, on_pad)) == pytest.approx(base, rel=1e-6)
    on_picture = {"pred": pred.clone(), "flow": out["flow"].clone()}
    on_picture["pred"][..., 4:12, :], on_picture["flow"][..., 4:12, :] = gt[..., 4:12, :], flow[..., 4:12, :]
    assert float(loss(batch, on_picture)) < base - 1e-3
    whole = {"f1": gt, "flow": flow}
    assert float(loss({**whole, "valid": torch.ones(2, 1, 32, 32)}, out)) == pytest.approx(
        float(loss(whole, out)), rel=1e-5)


def test_metrics() -> None:
    img = torch.rand(2, 3, 32, 32)
    assert torch.all(psnr(img, img) >= 99) and torch.allclose(ssim(img, img), torch.ones(2))
    noisy = (img + 0.1 * torch.randn_like(img)).clamp(0, 1)
    assert 15 < float(psnr(noisy, img)[0]) < 25 and float(ssim(noisy, img)[0]) < 0.95
    half = torch.full((1, 3, 8, 8), 0.5)
    assert float(psnr(half, torch.zeros_like(half))[0]) == pytest.approx(6.0206, abs=1e-3)


def moving_square(t: float, size: int = 32, shift: int = 8) -> torch.Tensor:
    """A bright square on a grey ramp, moved right by ``shift * t`` pixels."""
    img = torch.linspace(0.2, 0.4, size).expand(3, size, size).clone()
    x = 8 + round(shift * t)
    img[:, 10:20, x:x + 10] = torch.tensor([0.9, 0.3, 0.1])[:, None, None]
    return img


@pytest.mark.parametrize("arch", list(TINY), ids=list(TINY))
def test_overfits_one_batch(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(TINY[arch].model_copy(update={"width": 16}))
    batch = {"f0": moving_square(0)[None], "f1": moving_square(0.5)[None],
             "f2": moving_square(1)[None], "t": torch.tensor([0.5])}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(80):
        # Plain MSE: this checks capacity, not the loss (L1's sign gradient on the
        # U-Net's thousands of near-zero pixels makes a single-example fit slow).
        loss = ((model(batch["f0"], batch["f2"], batch["t"])["pred"] - batch["f1"]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_pyramid_loss_pulls_flow_toward_the_motion() -> None:
    from vfi.training.losses import pyramid
    f0, f1, f2 = (moving_square(t, size=64, shift=16)[None] for t in (0, 0.5, 1))
    batch = {"f0": f0, "f1": f1, "f2": f2}
    flow = torch.zeros(1, 4, 64, 64, requires_grad=True)
    loss = pyramid(batch, {"pred": f1, "flow": flow, "mask": torch.full((1, 1, 64, 64), 0.5)})
    loss.backward()
    # The square moves right: flow t->0 should point left (negative x), t->1 right.
    assert float(flow.grad[:, 0].sum()) > 0 and float(flow.grad[:, 2].sum()) < 0
    assert float(pyramid(batch, {"pred": f1})) == 0.0  # models without flow: no term
