"""Cut detectors against the hand labels of real footage (``data/real/cuts.csv``).

Each labelled clip is decoded once at analysis size (PyAV); the frames are pushed into
every detector's :class:`~pipeline.analysis.detectors.CutStream` (one shared TransNetV2), and each
detector's precision and recall (within ``--tolerance`` frames) are printed with the
time it took on top of decoding and, for ``combined``, how many network windows it ran.
The labels file says how the cuts were labelled.

    python benchmarks/bench_cut_labels.py [--detectors combined content transnet]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis.detectors import make_cut_stream
from pipeline.analysis.transnet import TransNet
from pipeline.core.config import CutsParams
from pipeline.media.video import open_reader

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "data" / "real" / "cuts.csv"


def read_labels(path: Path) -> dict[str, list[int]]:
    """Labelled cut frames per clip file name (``#`` lines are the labeller's notes)."""
    table = pd.read_csv(path, comment="#")
    if list(table.columns[:2]) != ["source", "frame"]:
        raise ValueError(f"{path}: expected columns source,frame,note; got {list(table.columns)}")
    return {str(s): sorted(int(f) for f in g["frame"]) for s, g in table.groupby("source")}


def matched(truth: list[int], found: list[int], tolerance: int) -> int:
    """Truth cuts with a found cut within ``tolerance`` (each found cut used once)."""
    free, hits = list(found), 0
    for cut in truth:
        near = [f for f in free if abs(f - cut) <= tolerance]
        if near:
            free.remove(min(near, key=lambda f: abs(f - cut)))
            hits += 1
    return hits


def run(detector: str, frames: list, net: TransNet) -> tuple[list[int], float, int]:
    """(cuts, seconds, network windows) of one detector over decoded frames."""
    stream = make_cut_stream(CutsParams(detector=detector), 24.0, net)
    start, cuts = time.perf_counter(), []
    for frame in frames:
        cuts += stream.push(frame.rgb, frame.pts)
    cuts += stream.finish()
    return cuts, time.perf_counter() - start, int(getattr(stream, "net_calls", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", nargs="+", default=["combined", "content", "transnet"])
    parser.add_argument("--tolerance", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    labels, net = read_labels(LABELS), TransNet()
    totals = {d: np.zeros(3, int) for d in args.detectors}  # hits, found, truth
    for name, truth in labels.items():
        with open_reader(LABELS.parent / name, CutsParams().analysis_size, "pyav") as reader:
            frames = list(reader)
        print(f"\n{name}: {len(frames)} frames, {len(truth)} labelled cuts {truth}")
        for detector in args.detectors:
            cuts, seconds, calls = run(detector, frames, net)
            hits = matched(truth, cuts, args.tolerance)
            totals[detector] += (hits, len(cuts), len(truth))
            print(f"  {detector:9s} found {cuts}  hits {hits}/{len(truth)}  "
                  f"{1000 * seconds / len(frames):.1f} ms/frame, {calls} net windows")
    print()
    for detector, (hits, found, truth) in totals.items():
        print(f"{detector:9s} precision {hits / max(found, 1):.3f} ({hits}/{found})  "
              f"recall {hits / max(truth, 1):.3f} ({hits}/{truth})")


if __name__ == "__main__":
    main()
