"""Benchmark the shard stage: reading kept frames, encoding them, and the whole stage.

References measured in the same run, on the same file(s):
- decode-only: PyAV decoding every frame of the main stream without converting any
  (the floor for a sequential pass); reading the kept frames
  (``pipeline.media.video.read_frames``) is reported as a ratio to it, for the PyAV and the
  decord backend;
- encode ms/frame and bytes/frame per format (PNG level 1 and 6, lossless WebP, JPEG)
  on the frames the stage stores;
- the whole stage (``run_shard``) with 0 (inline), 1 and 2 encoding threads, as
  samples/s and as a speed-up over inline encoding.

Triplets are (f, f+2, f+4) for every even f: half the frames are kept, each used by up
to three triplets, as for animation on twos. Input is synthetic (512x384 clips,
stored at short side 256) or any video given with ``--video``.

    python benchmarks/bench_shard.py [--clips 2 --seconds 8 --size 256 --repeat 2]
    python benchmarks/bench_shard.py --video ../shared/data/popeye_sindbad_part2.mkv
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd

from pipeline.core.atomic import write_parquet
from pipeline.core.config import ShardParams, parse_params
from pipeline.dataset.shards import run_shard
from pipeline.media.images import Encoder
from pipeline.media.probe import main_stream, probe
from pipeline.media.video import read_frames
from pipeline.sources.download import run_download, write_outputs
from pipeline.sources.record import SourceRecord

FORMATS = {"png level 1": Encoder("png", 1), "png level 6": Encoder("png", 6),
           "webp lossless": Encoder("webp"), "jpg q95": Encoder("jpg", jpg_quality=95)}


def synthetic_sources(raw: Path, clips: int, seconds: float) -> pd.DataFrame:
    params = parse_params({"sources": [{"name": "bench", "kind": "synthetic", "clips": clips,
                                        "width": 512, "height": 384, "seconds": seconds}]})
    result = run_download(params, raw)
    write_outputs(result, raw)
    return result.table()


def video_source(raw: Path, video: Path) -> pd.DataFrame:
    raw.mkdir(parents=True, exist_ok=True)
    (raw / video.name).symlink_to(video.resolve())
    info = probe(video)
    row = SourceRecord(name="video", origin="video", kind="path", uri=str(video), license="unknown",
                    attribution="", path=video.name, bytes=video.stat().st_size,
                    **{k: getattr(info, k) for k in ("container", "codec", "pix_fmt", "width",
                                                      "height", "fps", "frames", "duration")})
    table = pd.DataFrame([row.__dict__])
    write_parquet(table, raw / "sources.parquet")
    return table


def pseudo_triplets(sources: pd.DataFrame, out: Path) -> int:
    """(f, f+2, f+4) for every even f of every source, all kept, splits cycling."""
    rows = []
    for src in sources.itertuples():
        for n, f in enumerate(range(0, src.frames - 4, 2)):
            frames, pts = [f, f + 2, f + 4], [(f + 2 * k) / src.fps for k in range(3)]
            rows.append({"source": src.name, "scene": 0, **{f"d{k}": f // 2 + k for k in range(3)},
                         **{f"f{k}": frames[k] for k in range(3)}, **{f"pts{k}": pts[k] for k in range(3)},
                         "t": 0.5, "t_pts": 0.5, "span": 4, **{f"hold{k}": 2 for k in range(3)},
                         **{f"{h}{k}": np.uint64(f * 3 + k) for h in ("phash", "dhash") for k in range(3)},
                         "keep": True, "reason": "", "pan": False, "group": 0,
                         "split": ("train", "train", "val", "test")[n % 4]})
    write_parquet(pd.DataFrame(rows), out / "filtered.parquet")
    return len(rows)


def decode_only(path: Path) -> tuple[float, int]:
    """Seconds to decode every frame (no conversion), and the frame count."""
    start, n = time.perf_counter(), 0
    with av.open(str(path)) as container:
        stream = main_stream(container)
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            n += 1
    return time.perf_counter() - start, n


def read_kept(src, size: int, backend: str) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    frames = [f.rgb for f in read_frames(src.full_path, range(0, src.frames, 2), size,
                                         frames=src.frames, codec=src.codec, backend=backend)]
    return time.perf_counter() - start, frames


def bench_reading(sources: pd.DataFrame, raw: Path, size: int, repeat: int) -> list[np.ndarray]:
    """Print decode-only vs read-kept (both backends); return the stored frames."""
    best = {"decode-only": np.inf, "pyav": np.inf, "decord": np.inf}
    frames: list[np.ndarray] = []
    total = kept = 0
    for _ in range(repeat):
        secs = dict.fromkeys(best, 0.0)
        total = kept = 0
        for src in sources.assign(full_path=[raw / p for p in sources["path"]]).itertuples():
            secs["decode-only"] += decode_only(src.full_path)[0]
            for backend in ("pyav", "decord"):
                t, got = read_kept(src, size, backend)
                secs[backend] += t
                frames = got if backend == "pyav" else frames
            total, kept = total + src.frames, kept + len(got)
        best = {k: min(best[k], secs[k]) for k in best}
    print(f"reading: {kept} kept of {total} frames, stored at {frames[0].shape[1]}x{frames[0].shape[0]}")
    print(f"  decode-only      {total / best['decode-only']:7.0f} frames/s (all frames)")
    for backend in ("pyav", "decord"):
        print(f"  read kept {backend:6s} {kept / best[backend]:7.0f} kept frames/s, "
              f"time / decode-only = {best[backend] / best['decode-only']:.2f}")
    return frames


def bench_encoding(frames: list[np.ndarray]) -> None:
    sample = frames[:: max(1, len(frames) // 40)]
    print(f"encoding ({len(sample)} frames, {sample[0].shape[1]}x{sample[0].shape[0]}):")
    base = None
    for name, enc in FORMATS.items():
        enc(sample[0])
        start = time.perf_counter()
        sizes = [len(enc(f)) for f in sample]
        ms = (time.perf_counter() - start) / len(sample) * 1000
        base = base or ms
        print(f"  {name:14s} {ms:6.1f} ms/frame ({ms / base:4.1f}x png level 1)  "
              f"{np.mean(sizes) / 1000:6.1f} KB/frame")


def bench_stage(raw: Path, trip: Path, tmp: Path, size: int, repeat: int, samples: int) -> None:
    params = ShardParams(short_side=size, maxcount=200, contact_sheet=0)
    best: dict[int, float] = {}
    for _ in range(repeat):
        for workers in (0, 1, 2):
            result = run_shard(params, raw, trip, tmp / f"out{workers}", workers=workers)
            best[workers] = min(best.get(workers, np.inf), result.seconds)
    bytes_ = result.metrics["total"]["bytes"]
    print(f"shard stage ({samples} samples, png level {params.png_level}, "
          f"{bytes_ / samples / 1000:.0f} KB/sample, {result.metrics['total']['shards']} shards):")
    for workers, secs in best.items():
        print(f"  {workers} encode thread(s): {samples / secs:6.1f} samples/s "
              f"(x{best[0] / secs:.2f} vs inline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--video", type=Path, default=None, help="bench on this video instead")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench_shard_") as tmp_name:
        tmp = Path(tmp_name)
        raw, trip = tmp / "raw", tmp / "triplets"
        sources = video_source(raw, args.video) if args.video else \
            synthetic_sources(raw, args.clips, args.seconds)
        samples = pseudo_triplets(sources, trip)
        frames = bench_reading(sources, raw, args.size, args.repeat)
        bench_encoding(frames)
        bench_stage(raw, trip, tmp, args.size, args.repeat, samples)


if __name__ == "__main__":
    main()
