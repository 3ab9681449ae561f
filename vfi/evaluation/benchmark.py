"""Score the model, pretrained RIFE 4.25 and the baselines on a folder of triplets, t = 0.5.

``inbetweener benchmark --triplets DIR`` (:func:`benchmark`) sets our numbers beside
published ones (ATD-12K, Vimeo-90K triplets) without converting the data into shards.
Layouts, found recursively and in sorted order: ATD-12K's
``<name>/frame{1,2,3}.<png|jpg|jpeg|webp>`` and Vimeo-90K's ``<seq>/<n>/im{1,2,3}.png``;
the middle frame is the ground truth. Methods come from :mod:`vfi.inference.methods`, as
the evaluate stage's do. Predictions are rounded to 8 bits before scoring, as published
scripts do, so PSNR compares with papers; SSIM (:func:`vfi.inference.metrics.ssim`, per
channel, gaussian window) should be compared between methods here only. A bad triplet
(undecodable frame, frames of different sizes, a method that cannot run on it) is
recorded with a reason and skipped; a triplet counts only if every method scored it.
Why: docs/NOTES.md.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from pipeline.core.atomic import write_bytes
from pipeline.core.errors import CommandError, ReasonError
from pipeline.core.progress import progress
from pipeline.core.stage import reason_counts
from vfi.evaluation.stats import interval
from vfi.inference.checkpoint import DEFAULT_CHECKPOINT
from vfi.inference.interpolator import default_device
from vfi.inference.methods import (
    COMBINED,
    METHODS,
    PEERS,
    WITH_CHECKPOINT,
    Method,
    MethodOptions,
    check_scale,
    make_method,
)
from vfi.inference.metrics import psnr, ssim

log = logging.getLogger("inbetweener.vfi.benchmark")

LAYOUTS: dict[str, tuple[str, str, str]] = {
    "atd12k": ("frame1", "frame2", "frame3"),
    "vimeo90k": ("im1", "im2", "im3"),
}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
T = 0.5
NO_CHECKPOINT = (f"no checkpoint found ({DEFAULT_CHECKPOINT} is missing): model column "
                 "skipped; pass --checkpoint to score one")
SHOWN_FAILURES = 10  # failures listed one per line in the printed report; the JSON has all


class BenchError(CommandError):
    """The benchmark cannot run at all (no folder, no triplets, bad checkpoint or
    option): the CLI prints the message and exits 2."""


@dataclass(frozen=True)
class Triplet:
    """One test case: ``frames`` are (first, ground truth, last)."""

    key: str  # folder relative to the benchmark root, posix style
    layout: str
    frames: tuple[Path, Path, Path]


@dataclass(frozen=True)
class Failure:
    """A skipped triplet or incomplete folder; ``error`` starts with a short stable
    reason (``undecodable``, ``size_mismatch``, ``method_failed``, ``incomplete``,
    ``ambiguous``), then the details."""

    key: str
    error: str


@dataclass
class MethodScores:
    """Per-triplet values of one method, kept until the end to summarise."""

    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def ms_per_frame(self) -> float:
        """Mean call time, without the first call when there are others: it pays
        one-off costs (thread pools, allocator, OpenCV set-up) that a long run does not."""
        times = self.seconds[1:] if len(self.seconds) > 1 else self.seconds
        return 1000 * float(np.mean(times)) if times else float("nan")

    def summary(self) -> dict[str, Any]:
        """Means for the table and the JSON (NaN-free: ``None`` when nothing was scored)."""
        if not self.psnr:
            return {"psnr": None, "ssim": None, "ms_per_frame": None, "count": 0}
        return {"psnr": round(float(np.mean(self.psnr)), 4),
                "ssim": round(float(np.mean(self.ssim)), 4),
                "ms_per_frame": round(self.ms_per_frame(), 3), "count": len(self.psnr)}


@dataclass
class BenchResult:
    """Everything the table and the JSON report show."""

    folder: Path
    triplets: list[Triplet]
    wanted: list[str]  # methods asked for; "model" is missing from scores without checkpoint
    checkpoint: Path | None
    scores: dict[str, MethodScores]
    skipped: list[Failure]  # triplets found that could not be scored
    incomplete: list[Failure]  # folders with part of a triplet (not counted as triplets)
    scale: float = 1.0  # flow resolution of the RIFE models
    tta: str = "none"   # test-time augmentation of the RIFE models (vfi.inference.tta)
    keys: list[str] = field(default_factory=list)  # the scored triplets, in score order

    @property
    def failures(self) -> list[Failure]:
        """Everything left out, in folder order."""
        return sorted(self.skipped + self.incomplete, key=lambda f: f.key)

    @property
    def scored(self) -> int:
        """Triplets every method scored."""
        return min((len(s.psnr) for s in self.scores.values()), default=0)

    @property
    def model_skipped(self) -> bool:
        """The model was wanted (by default) but no checkpoint was found."""
        return "model" in self.wanted and self.checkpoint is None

    @property
    def layouts(self) -> dict[str, int]:
        """Triplets found per layout."""
        return dict(sorted(Counter(t.layout for t in self.triplets).items()))

    @property
    def layout(self) -> str:
        """The one layout found, or ``mixed``."""
        names = list(self.layouts)
        return names[0] if len(names) == 1 else "mixed"


# -- discovery ------------------------------------------------------------------------


def images_by_stem(files: Iterable[str]) -> dict[str, list[str]]:
    """Image file names grouped by lower-case stem: ``FRAME1.JPG`` is ``frame1``; two
    files with one stem (``frame1.png`` and ``frame1.jpg``) stay visible as ambiguous."""
    found: dict[str, list[str]] = {}
    for name in sorted(files):
        stem, suffix = os.path.splitext(name)
        if suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(stem.lower(), []).append(name)
    return found


def match_layout(directory: Path, key: str, layout: str, images: dict[str, list[str]]
                 ) -> Triplet | Failure | None:
    """The triplet of ``layout`` in ``directory``; a Failure when it is only partly
    there or ambiguous (worth telling the user); None when the layout is absent."""
    names = LAYOUTS[layout]
    present = [n for n in names if n in images]
    if not present:
        return None
    missing = [n for n in names if n not in images]
    if missing:
        return Failure(key, f"incomplete: no {', '.join(missing)} ({layout} layout)")
    doubles = [f for n in names if len(images[n]) > 1 for f in images[n]]
    if doubles:
        return Failure(key, f"ambiguous: {', '.join(doubles)}")
    first, truth, last = (directory / images[n][0] for n in names)
    return Triplet(key, layout, (first, truth, last))


def discover(root: Path) -> tuple[list[Triplet], list[Failure]]:
    """All triplets under ``root`` (itself included), sorted by folder; hidden folders
    are left out (``.git``, editor caches)."""
    triplets: list[Triplet] = []
    failures: list[Failure] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        images = images_by_stem(files)
        key = Path(directory).relative_to(root).as_posix()
        for layout in LAYOUTS:
            found = match_layout(Path(directory), key, layout, images)
            if isinstance(found, Triplet):
                triplets.append(found)
            elif found is not None:
                failures.append(found)
    return sorted(triplets, key=lambda t: t.key), sorted(failures, key=lambda f: f.key)


# -- loading and scoring --------------------------------------------------------------


def load_rgb(path: Path) -> torch.Tensor:
    """3 x H x W float in [0, 1]; any mode PIL reads (palette, grey, RGBA) becomes RGB."""
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ReasonError(f"undecodable: {path.name}: {short_error(exc)}") from exc
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255


def load_triplet(triplet: Triplet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three frames, checked to share one size (a method cannot blend otherwise)."""
    f0, gt, f2 = (load_rgb(p) for p in triplet.frames)
    sizes = [tuple(f.shape[-2:]) for f in (f0, gt, f2)]
    if len(set(sizes)) > 1:
        shown = ", ".join(f"{p.name} {w}x{h}" for p, (h, w) in zip(triplet.frames, sizes))
        raise ReasonError(f"size_mismatch: {shown}")
    return f0, gt, f2


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Clamp and round to 8 bits, as a saved frame would be (and as papers score)."""
    return img.clamp(0, 1).mul(255).round().div(255)


def short_error(exc: Exception, limit: int = 200) -> str:
    """One capped line for a table: OpenCV's bare message (its str() holds the source
    path and line), else the message's lines joined, else the exception's type."""
    text = getattr(exc, "err", None) if isinstance(exc, cv2.error) else None
    lines = [line.strip() for line in str(text or exc).splitlines() if line.strip()]
    joined = "; ".join(lines) or type(exc).__name__
    return joined if len(joined) <= limit else joined[:limit - 3] + "..."


def run_method(name: str, method: Method, f0: torch.Tensor, f2: torch.Tensor
               ) -> tuple[torch.Tensor, float]:
    """The prediction at t = 0.5 and the seconds it took; a method that cannot handle
    these frames (OpenCV's DIS refuses frames under 12 pixels) fails this triplet only."""
    start = time.perf_counter()
    try:
        pred = method(f0, f2, torch.tensor(T))
    except (cv2.error, RuntimeError, ValueError) as exc:
        raise ReasonError(f"method_failed: {name}: {short_error(exc)}") from exc
    return pred, time.perf_counter() - start


def score_triplet(frames: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                  methods: dict[str, Method]) -> dict[str, tuple[float, float, float]]:
    """(PSNR, SSIM, seconds) per method; all or nothing, so the columns stay comparable."""
    f0, gt, f2 = frames
    out = {}
    for name, method in methods.items():
        pred, seconds = run_method(name, method, f0, f2)
        pred = quantize(pred)[None]
        out[name] = (float(psnr(pred, gt[None])[0]), float(ssim(pred, gt[None])[0]), seconds)
    return out


def score_all(triplets: Sequence[Triplet], methods: dict[str, Method],
              show_progress: bool = False) -> tuple[dict[str, MethodScores], list[Failure]]:
    """Every triplet through every method, one triplet in memory at a time."""
    scores = {name: MethodScores() for name in methods}
    failures = []
    for triplet in progress(triplets, total=len(triplets), desc="benchmark", unit="triplet",
                            enabled=show_progress):
        try:
            result = score_triplet(load_triplet(triplet), methods)
        except ReasonError as exc:
            log.warning("%s: skipped: %s", triplet.key, exc.reason)
            failures.append(Failure(triplet.key, exc.reason))
            continue
        for name, (p, s, seconds) in result.items():
            scores[name].psnr.append(p)
            scores[name].ssim.append(s)
            scores[name].seconds.append(seconds)
    return scores, failures


# -- set-up ---------------------------------------------------------------------------


def parse_methods(spec: str | None) -> list[str]:
    """``"blend,dis"`` -> ["blend", "dis"] in the canonical order; None means all (every
    t here is 0.5, so the middle-only peers too) but the combinations, asked for by name."""
    known = (*METHODS, *PEERS, *COMBINED)
    if spec is None:
        return [m for m in known if m not in COMBINED]
    wanted = {m.strip() for m in spec.split(",") if m.strip()}
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        raise BenchError(f"--methods: unknown {', '.join(unknown) or '(empty)'}; "
                         f"choose from {', '.join(known)}")
    return [m for m in known if m in wanted]


def resolve_checkpoint(explicit: Path | None, methods: Sequence[str],
                       methods_given: bool) -> Path | None:
    """The checkpoint to score, or None to leave the model out.

    An explicit path must exist; without one the training default is used when it is
    there. Asking for ``model`` (or ``model+hdv3``) by name without any checkpoint is an
    error, not a skip.
    """
    if not set(methods) & set(WITH_CHECKPOINT):
        return None
    if explicit is not None:  # read_checkpoint says what is wrong with it, if anything
        return explicit
    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT
    if methods_given:
        raise BenchError(f"--methods asks for a model but there is no checkpoint "
                         f"({DEFAULT_CHECKPOINT} is missing; pass --checkpoint)")
    return None


def build_methods(names: Sequence[str], checkpoint: Path | None, dis_preset: str,
                  scale: float = 1.0, tta: str = "none") -> dict[str, Method]:
    """Name -> method, from the registry of :mod:`vfi.inference.methods`; the model only
    with a checkpoint. A bad preset, option or checkpoint stops the run (CommandError:
    exit 2)."""
    options = MethodOptions(checkpoint=checkpoint, dis_preset=dis_preset,
                            device=default_device(), scale=scale, tta=tta)
    return {n: make_method(n, options) for n in names
            if n not in WITH_CHECKPOINT or checkpoint is not None}


def benchmark(folder: Path, checkpoint: Path | None = None, methods: str | None = None,
              dis_preset: str = "medium", limit: int | None = None, threads: int = 0,
              show_progress: bool = False, scale: float = 1.0, tta: str = "none"
              ) -> BenchResult:
    """Find the triplets under ``folder`` and score the chosen methods on them.

    ``methods``: comma-separated subset of :data:`vfi.inference.methods.METHODS`,
    ``PEERS`` and ``COMBINED`` (None: all but ``COMBINED``, the model only when a
    checkpoint is found). ``limit``: the first N triplets in sorted order. ``threads``: torch's CPU threads (0: torch's
    default), for a shared machine. ``scale``: the flow resolution of the RIFE models
    (``model``, ``rife``): 0.5 for 1080p and larger. ``tta``: their test-time
    augmentation (:mod:`vfi.inference.tta`).
    """
    if not folder.is_dir():
        raise BenchError(f"{folder} is not a folder")
    if limit is not None and limit < 1:
        raise BenchError(f"--limit must be at least 1, not {limit}")
    check_scale(scale)
    names = parse_methods(methods)
    ckpt = resolve_checkpoint(checkpoint, names, methods is not None)
    chosen = build_methods(names, ckpt, dis_preset, scale, tta)  # option errors first
    triplets, failures = discover(folder)
    if not triplets:
        layouts = "; ".join(f"{k}: {'/'.join(v)}" for k, v in LAYOUTS.items())
        raise BenchError(f"no triplets under {folder} (looked for {layouts})")
    triplets = triplets[:limit]
    if threads > 0:
        torch.set_num_threads(threads)
    scores, skipped = score_all(triplets, chosen, show_progress)
    bad = {f.key for f in skipped}
    keys = [t.key for t in triplets if t.key not in bad]
    return BenchResult(folder, triplets, names, ckpt, scores, skipped, failures, scale, tta,
                       keys)


# -- reports --------------------------------------------------------------------------


def summary(result: BenchResult) -> dict[str, Any]:
    """The JSON report: per-method means, what was found, and every failure."""
    return {
        "folder": str(result.folder.resolve()),
        "layout": result.layout,
        "layouts": result.layouts,
        "t": T,
        "scale": result.scale,
        "tta": result.tta,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "model_skipped": NO_CHECKPOINT if result.model_skipped else None,
        "triplets": len(result.triplets),
        "scored": result.scored,
        "skipped": len(result.skipped),
        "incomplete": len(result.incomplete),
        "methods": {name: s.summary() for name, s in result.scores.items()},
        "model_gain": model_gain(result),
        "per_triplet": [{"key": key, "psnr": {name: round(s.psnr[i], 4)
                                              for name, s in result.scores.items()}}
                        for i, key in enumerate(result.keys)],
        "failure_reasons": dict(Counter(f.error.split(":")[0] for f in result.failures)),
        "failures": [{"key": f.key, "error": f.error} for f in result.failures],
    }


def model_gain(result: BenchResult) -> dict[str, dict[str, float | None]]:
    """The model's PSNR minus each other method's, triplet by triplet: mean and 95%
    half-width (the spread between triplets cancels, so small gains show)."""
    if "model" not in result.scores:
        return {}
    model = np.array(result.scores["model"].psnr)
    out = {}
    for name, scores in result.scores.items():
        if name != "model":
            mean, half = interval(model - np.array(scores.psnr))
            out[name] = {"mean": mean, "ci95": half}
    return out


def write_json(result: BenchResult, dest: Path) -> None:
    """The summary, atomically (a reader never sees half a report)."""
    write_bytes(dest, (json.dumps(summary(result), indent=2) + "\n").encode())


def table(result: BenchResult) -> str:
    """Method, PSNR, SSIM, ms per frame and count, one line per method."""
    w = max([len("method"), *map(len, result.scores)])
    lines = [f"{'method':<{w}} {'PSNR dB':>8} {'SSIM':>7} {'ms/frame':>9} {'count':>6}"]
    for name, scores in result.scores.items():
        s = scores.summary()
        if s["count"]:
            lines.append(f"{name:<{w}} {s['psnr']:>8.2f} {s['ssim']:>7.4f} "
                         f"{s['ms_per_frame']:>9.1f} {s['count']:>6}")
        else:
            lines.append(f"{name:<{w}} {'-':>8} {'-':>7} {'-':>9} {0:>6}")
    return "\n".join(lines)


def scale_note(scale: float, tta: str = "none") -> str:
    """``, RIFE scale 0.5`` when the flows were not estimated at full resolution, and
    the test-time augmentation when there is one."""
    note = "" if scale == 1 else f", RIFE scale {scale:g}"
    return note + ("" if tta == "none" else f", tta {tta}")


def report(result: BenchResult) -> str:
    """What the CLI prints: a header, the table, the skipped triplets."""
    header = (f"benchmark: {len(result.triplets)} triplet(s) ({result.layout}) in "
              f"{result.folder}, t = {T}{scale_note(result.scale, result.tta)}: "
              f"{result.scored} scored, "
              f"{len(result.skipped)} skipped")
    if result.incomplete:
        header += f", {len(result.incomplete)} incomplete folder(s)"
    lines = [header]
    if result.checkpoint is not None:
        lines.append(f"model: {result.checkpoint}")
    elif result.model_skipped:
        lines.append(f"model: {NO_CHECKPOINT}")
    lines.append(table(result))
    if result.failures:
        lines.append(f"skipped: {reason_counts(f.error for f in result.failures)}")
        lines += [f"  {f.key}: {f.error}" for f in result.failures[:SHOWN_FAILURES]]
        if len(result.failures) > SHOWN_FAILURES:
            lines.append(f"  ... and {len(result.failures) - SHOWN_FAILURES} more "
                         "(all in --json)")
    return "\n".join(lines)
