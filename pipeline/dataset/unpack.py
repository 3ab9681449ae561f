"""Unpack shards into a triplet folder laid out like ATD-12K (``<key>/frame1..3.<ext>``).

The folder is what ``inbetweener benchmark --triplets`` and other projects' evaluation
scripts read, and what a person browses to see the data. Those layouts carry no time:
they mean t = 0.5, so by default only middle-frame triplets are written (the others,
from uneven holds, are counted and left out rather than scored at the wrong t).

The frames are copied byte for byte from the tars (no decode, no re-encode). The folder
is built under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import webdataset as wds

from pipeline.core.atomic import temp_name
from pipeline.core.errors import CommandError

FRAMES = {"f0": "frame1", "f1": "frame2", "f2": "frame3"}
MIDDLE_TOLERANCE = 1e-6


class UnpackError(CommandError, ValueError):
    """Nothing to unpack, or the output already exists: the message says which."""


@dataclass
class UnpackResult:
    """Triplets written and left out (t not 0.5) per split."""

    written: int = 0
    off_middle: int = 0


def write_triplet(sample: dict[str, object], folder: Path) -> None:
    """The sample's three frames as ``frame1..3`` with their stored extension."""
    folder.mkdir(parents=True)
    for name, value in sample.items():
        stem, _, ext = name.partition(".")
        if stem in FRAMES and isinstance(value, bytes):
            (folder / f"{FRAMES[stem]}.{ext}").write_bytes(value)


def unpack(shards: Sequence[str], out: Path, any_t: bool = False,
           overwrite: bool = False, sources: Sequence[str] = ()) -> UnpackResult:
    """Write every sample of ``shards`` into ``out`` (see the module docstring); with
    ``sources``, only those sources' samples (a held-out work to benchmark): a name no
    sample has is an error naming the sources there are, and nothing is written."""
    if not shards:
        raise UnpackError("no shards to unpack")
    if out.exists() and not overwrite:
        raise UnpackError(f"{out} exists (pass --overwrite to replace it)")
    tmp = temp_name(out)
    shutil.rmtree(tmp, ignore_errors=True)
    result, seen = UnpackResult(), set()
    try:
        for sample in wds.WebDataset(list(shards), shardshuffle=False, empty_check=False):
            meta = json.loads(sample["json"])
            seen.add(meta.get("source"))
            if sources and meta.get("source") not in sources:
                continue
            if not any_t and abs(float(meta["t"]) - 0.5) > MIDDLE_TOLERANCE:
                result.off_middle += 1
                continue
            write_triplet(sample, tmp / sample["__key__"])
            result.written += 1
        missing = sorted(set(sources) - seen)
        if missing:
            there = ", ".join(sorted(str(s) for s in seen)) or "none"
            raise UnpackError(f"no samples of source {', '.join(missing)} in these shards "
                              f"(sources there: {there})")
        if out.exists():
            shutil.rmtree(out)
        tmp.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result
