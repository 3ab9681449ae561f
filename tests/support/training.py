"""Tiny training inputs: shards of moving-square triplets and a model and loop small
enough to train in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import webdataset as wds

from vfi.config import VfiParams, parse_vfi_params

SPLIT_SIZES = {"train": 6, "val": 2, "test": 5}


def scene(t: float, shift: float, height: int = 48, width: int = 64, seed: int = 0
          ) -> np.ndarray:
    """H x W x 3 uint8: a textured background and a square, both moved by ``shift * t``."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6)
    bg = 0.5 + 0.25 * np.sin((xs - shift * t) / 4 + phase) * np.cos(ys / 5)
    img = np.stack([bg, bg * 0.8, 1 - bg], -1)
    x0 = int(10 + shift * t)
    img[14:30, x0:x0 + 14] = rng.uniform(0, 1, 3)
    return (img.clip(0, 1) * 255).astype(np.uint8)


def write_tiny_shards(root: Path, sizes: dict[str, int] = SPLIT_SIZES) -> Path:
    """``root/{split}/{split}-000000.tar`` with moving-square triplets, t varying."""
    for split, count in sizes.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        with wds.TarWriter(str(root / split / f"{split}-000000.tar"), mtime=0) as sink:
            for i in range(count):
                t = (0.25, 0.5, 0.75)[i % 3]
                shift = 6.0 + 2 * i
                seed = hash((split, i)) % 1000
                sink.write({"__key__": f"{split}-{i:04d}",
                            "f0.png": scene(0.0, shift, seed=seed),
                            "f1.png": scene(t, shift, seed=seed),
                            "f2.png": scene(1.0, shift, seed=seed),
                            "json": json.dumps({"t": t, "split": split}).encode()})
    return root


def tiny_params(**train: object) -> VfiParams:
    """A model and loop small enough for a test to train in seconds."""
    base = {"steps": 6, "batch_size": 2, "crop": 32, "val_every": 2, "val_samples": 2,
            "warmup": 2, "shuffle": 4, "threads": 1}
    return parse_vfi_params({"model": {"arch": "flow", "width": 8, "depth": 1, "scales": 2,
                                       "lr": 1e-3},
                             "train": {"min_lr": 1e-4, **base, **train}})
