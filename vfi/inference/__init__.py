"""Running and scoring a method on triplets: the one inference wrapper (pad, classical
start, run, crop), checkpoints, the method registry, the metrics and the ordered
triplet reader. Evaluation, the video app and training's validation all use it; it
imports neither of them."""

from vfi.inference.interpolator import (
    default_device,
    forward_padded,
    init_flows,
    interpolate,
)

__all__ = ["default_device", "forward_padded", "init_flows", "interpolate"]
