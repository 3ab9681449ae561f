"""Benchmark the per-source stages: core-seconds and wall seconds per second of source video.

For each resolution (480p = 854x480 and 1080p = 1920x1080, 24 fps) a few synthetic
clips are generated with what real transfers add (film grain, pans on ones, look-alike
cuts, fades, slow moves, static and repeated shots; crf ``--crf``), written outside the
work folder and given to the pipeline as ``kind: path`` sources with their sha256, so
the download stage does what it does for a local file: copy, hash, probe (demux every
packet) and the telecine/bars scan (``pipeline.media.scan``, at most ``download.scan_frames``
frames per source). Then, in a temp work folder laid out as ``data/``, each stage runs
through its own python function with default params, in order: download
(``run_download``), detect_cuts (``run_detect_cuts``: one guarded worker process per
source), extract_triplets (``run_extract``), filter (``run_filter``) and shard
(``run_shard``, shard.short_side 256, png, encoding threads one per core; the reports are
left out: ``--report`` adds them). Generating the clips is not a pipeline stage and is
not counted (its time is printed). The real clips in ``data/real`` (Popeye, 1440x1074
HEVC, 60 s; Steamboat Willie, 574x480 H.264, 20 s) run the same way as a cross-check.

CPU accounting. Each stage runs in its own subprocess of this script (imports done
before the clock starts). Core-seconds are user + system CPU of every process the stage
used: ``getrusage`` RUSAGE_SELF + RUSAGE_CHILDREN deltas of the stage process, plus the
CPU its live children accumulated meanwhile, read from ``/proc/<pid>/stat`` (utime,
stime and cutime, cstime: their own and their reaped children's). The last term is the
one that matters: the guard's workers are forked by the multiprocessing fork server,
which reaps them, so their CPU reaches the stage process's RUSAGE_CHILDREN only when the
fork server itself exits and is waited for, i.e. never while the stage runs. The
RUSAGE deltas alone ("naive") are printed beside the total for each stage so the miss
is visible (detect_cuts: naive ~0 core-s against a wall time of seconds). The fork
server is started before the clock (a real stage pays that once per run, ~1 s, not per
source). ``cores busy`` = core-seconds / wall: above 1 means decoder or encoder
threads ran in parallel; on a shared machine wall time is the noisier figure.

Also printed: raw video bytes per source second (synthetic crf and grain, not the
bitrate of a real rip), shard tar bytes per source second and per kept triplet, and
kept triplets per source second (the footage decides: held drawings, static shots,
transitions and reused footage are removed), and the download stage's parts
(hash, probe, scan) measured again after the stage on the same files.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_stage_rates.py \
        [--clips 2 --seconds 10 --sizes 480p 1080p --crf 21 --grain 4 --repeat 1 --no-real]
    # docs/SCALE.md's figures: 3 x 12 s per size, also re-encoded at web-rip bitrates
    # (``--encodings rip``: 480p 1.2, 1080p 5 Mbit/s); --library keeps the clips.
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_stage_rates.py --clips 3 --seconds 12 \
        --encodings crf rip --library /tmp/rates_lib
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "data" / "real"
REAL_CLIPS = {"popeye": "popeye_sindbad_part2.mkv", "steamboat": "steamboat_willie_excerpt_cropped.mp4"}
SIZES = {"480p": (854, 480), "1080p": (1920, 1080)}
# ``--encodings rip``: the same clips re-encoded at an assumed web-rip bitrate (H.264,
# average bitrate), because grain at crf ~21 gives several times a real rip's bytes.
RIP_MBPS = {"480p": 1.2, "1080p": 5.0}
STAGES = ("download", "detect_cuts", "extract_triplets", "filter", "shard")
PER_SOURCE = ("download", "detect_cuts", "shard")  # one task per source with engine ray
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU accounting

def _children_cpu() -> dict[int, float]:
    """CPU seconds (own + reaped children's) of every live direct child of this process."""
    me, out = os.getpid(), {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
        if int(fields[1]) == me:
            out[int(entry.name)] = sum(int(f) for f in fields[11:15]) / TICK  # utime..cstime
    return out


def _rusage() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


class Clock:
    """Wall, naive (RUSAGE deltas) and total core-seconds of a block, live children included."""

    def __enter__(self) -> Clock:
        self.live0, self.rus0, self.wall0 = _children_cpu(), _rusage(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.naive = _rusage() - self.rus0
        live1 = _children_cpu()
        # A child alive at the start and reaped since is in RUSAGE_CHILDREN for its whole
        # life: subtract what it had used before the start (its live value then).
        self.cpu = self.naive + sum(live1.values()) - sum(self.live0.values())


# ---------------------------------------------------------------- the stages (child side)

def _stage(stage: str, work: Path, report: bool) -> dict:
    """Run one stage in ``work`` (raw/, analysis/, triplets/, shards/); its facts and clock."""
    from pipeline.analysis.analyse import run_detect_cuts
    from pipeline.analysis.worker import PRELOAD
    from pipeline.core import atomic
    from pipeline.core.config import parse_params
    from pipeline.core.guard import run_guarded
    from pipeline.core.tables import FILTERED_TABLE, source_splits
    from pipeline.curation.curate import run_filter
    from pipeline.curation.data_metrics import write_metrics
    from pipeline.curation.extract import run_extract
    from pipeline.curation.extract import write_outputs as write_triplets
    from pipeline.dataset.shards import run_shard
    from pipeline.sources.download import run_download
    from pipeline.sources.download import write_outputs as write_raw

    params = parse_params(json.loads((work / "params.json").read_text()))
    raw, analysis, triplets, shards = (work / d for d in ("raw", "analysis", "triplets", "shards"))
    # Parts a previous run left (``<stage out>/parts/``, kept for resume) would be reused:
    # remove them so every run does the stage's whole work.
    for folder in (raw, analysis, triplets, shards):
        shutil.rmtree(folder / "parts", ignore_errors=True)
    assert run_guarded(os.getpid, (), 120.0, preload=PRELOAD).ok  # fork server up before the clock
    facts: dict = {}
    with Clock() as clock:
        if stage == "download":
            result = run_download(params, raw, root=work, partial_dir=work / "partial")
            write_raw(result, raw)
            bad = [(r.name, r.error) for r in result.rows if r.status != "ok"]
            assert not bad, bad
        elif stage == "detect_cuts":
            cuts = run_detect_cuts(params.cuts, raw, analysis, holds=params.triplets)
            bad = cuts.decoded[cuts.decoded["status"] != "ok"]
            assert bad.empty, bad.to_dict("records")
            facts = {"frames": len(cuts.frames), "scenes": len(cuts.scenes)}
        elif stage == "extract_triplets":
            got = run_extract(analysis, params.triplets)
            write_triplets(got, triplets)
            facts = {"drawings": len(got.drawings), "candidates": len(got.candidates)}
        elif stage == "filter":
            got = run_filter(analysis, triplets, params.filter, pins=source_splits(raw))
            atomic.write_parquet(got.filtered, triplets / FILTERED_TABLE)
            write_metrics(got.metrics, work / "metrics" / "data.json")
            facts = {"kept": int(got.metrics["kept"]), "candidates": int(got.metrics["candidates"])}
        elif stage == "shard":
            got = run_shard(params.shard, raw, triplets, shards, work / "metrics" / "shards.json",
                            work / "reports" if report else None)
            facts = {"samples": int(got.metrics["total"]["samples"]),
                     # the merged tars only, not a part's copy of them (shards/parts/)
                     "tar_bytes": sum(p.stat().st_size for p in shards.rglob("*.tar")
                                      if "parts" not in p.relative_to(shards).parts)}
        else:
            raise ValueError(stage)
    if stage == "download":
        facts = download_facts(raw, params)
    return {"stage": stage, "wall": clock.wall, "cpu": clock.cpu, "naive": clock.naive, **facts}


def download_facts(raw: Path, params) -> dict:
    """Source seconds and bytes, and the download's parts timed again on the same files
    (sha256, probe, scan; the copy is the rest)."""
    import pandas as pd

    from pipeline.media.probe import probe
    from pipeline.media.scan import scan_source
    from pipeline.sources.fetch import sha256_file

    table = pd.read_parquet(raw / "sources.parquet")
    parts = {"hash": 0.0, "probe": 0.0, "scan": 0.0}
    for row in table.itertuples():
        path = raw / row.path
        for part, call in (("hash", lambda: sha256_file(path)), ("probe", lambda: probe(path)),
                           ("scan", lambda: scan_source(path, row.fps, row.frames, row.duration,
                                                        scan=params.download.scan,
                                                        crop_bars=params.download.crop_bars,
                                                        budget=params.download.scan_frames))):
            with Clock() as clock:
                call()
            parts[part] += clock.cpu
    out_fps = table["out_fps"].where(table["out_fps"] > 0, table["fps"])
    return {"sources": len(table), "seconds": float((table["frames"] / table["fps"]).sum()),
            "frames": int(table["frames"].sum()), "raw_bytes": int(table["bytes"].sum()),
            "width": int(table["width"].iloc[0]), "height": int(table["height"].iloc[0]),
            "codec": str(table["codec"].iloc[0]), "out_fps": float(out_fps.iloc[0]),
            "scan": ",".join(sorted(set(table["scan"]))),
            **{f"{k}_cpu": v for k, v in parts.items()}}


def child_main(stage: str, work: Path, report: bool) -> None:
    # Imports before the clock: a stage process pays them once, not per source.
    import pipeline.analysis.analyse  # noqa: F401
    import pipeline.curation.curate  # noqa: F401
    import pipeline.dataset.shards  # noqa: F401
    import pipeline.sources.download  # noqa: F401
    print("RESULT " + json.dumps(_stage(stage, work, report)), flush=True)


# ---------------------------------------------------------------- the driver (parent side)

def run_child(stage: str, work: Path, report: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--child", stage, str(work)] + (["--report"] if report else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{stage} in {work} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def synthetic_set(label: str, size: tuple[int, int], args: argparse.Namespace, library: Path,
                  encoding: str = "crf") -> list[dict]:
    """Generate (or reuse from ``library``) the clips; return their ``kind: path`` entries
    (``encoding`` rip: re-encoded at ``RIP_MBPS``)."""
    from pipeline.sources.fetch import sha256_file
    from pipeline.synth import SynthSpec, generate

    spec = SynthSpec(clips=args.clips, seed=args.seed, width=size[0], height=size[1], fps=24,
                     seconds=args.seconds, crf=args.crf, min_shot_seconds=0.75, max_shot_seconds=2.5,
                     static_prob=0.2, repeat_prob=0.2, transition_prob=0.15, grain=args.grain,
                     pan_ones_prob=0.3, similar_cut_prob=0.3, fade_prob=0.1, slow_prob=0.15)
    folder = library / f"{label}-{hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:10]}"
    if not (folder / "done").exists():
        start = time.perf_counter()
        generate(spec, folder, name=label)
        (folder / "done").write_text("")
        print(f"  generated {args.clips} x {args.seconds:g} s at {size[0]}x{size[1]} in "
              f"{time.perf_counter() - start:.0f} s (not a stage, not counted)", flush=True)
    videos = sorted(folder.glob(f"{label}-[0-9]*.mp4"))
    if encoding == "rip":
        videos = [reencode(v, folder / f"rip-{RIP_MBPS[label]:g}" / v.name, RIP_MBPS[label])
                  for v in videos]
    return [{"kind": "path", "name": v.stem, "path": str(v), "sha256": sha256_file(v),
             "license": "CC0-1.0", "split": "auto"} for v in videos]


def reencode(src: Path, dest: Path, mbps: float) -> Path:
    """``src`` as H.264 at an average ``mbps`` (libx264 veryfast, 2 s GOP); kept for reuse."""
    import av

    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    start, tmp = time.perf_counter(), dest.with_suffix(".tmp.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        stream_in = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=stream_in.average_rate)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        stream.bit_rate = int(mbps * 1e6)
        stream.options = {"preset": "veryfast", "g": "48"}
        for frame in inp.decode(stream_in):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    tmp.rename(dest)
    print(f"  re-encoded {src.name} at {mbps:g} Mbit/s in {time.perf_counter() - start:.0f} s "
          "(not counted)", flush=True)
    return dest


def real_set(key: str) -> list[dict]:
    from pipeline.sources.fetch import sha256_file

    path = REAL / REAL_CLIPS[key]
    if not path.is_file():
        return []
    return [{"kind": "path", "name": key, "path": str(path), "sha256": sha256_file(path),
             "license": "public domain (US)", "split": "auto"}]


def bench_set(label: str, sources: list[dict], tmp: Path, args: argparse.Namespace) -> dict:
    work = tmp / label
    work.mkdir(parents=True)
    (work / "params.json").write_text(json.dumps({"sources": sources}))
    out: dict = {}
    for stage in STAGES:
        runs = [run_child(stage, work, args.report) for _ in range(args.repeat)]
        best = dict(runs[-1], wall=min(r["wall"] for r in runs), cpu=min(r["cpu"] for r in runs),
                    naive=min(r["naive"] for r in runs))
        out[stage] = best
        print(f"  {stage:16s} {best['cpu']:7.2f} core-s (naive RUSAGE {best['naive']:6.2f}), "
              f"wall {best['wall']:6.2f} s, cores busy {best['cpu'] / best['wall']:.2f}", flush=True)
    return out


def report_tables(results: dict[str, dict]) -> None:
    labels = list(results)
    secs = {k: r["download"]["seconds"] for k, r in results.items()}
    head = " | ".join(f"{k}: core-s/src-s | wall/src-s | core-h/src-h" for k in labels)
    print(f"\n| stage | {head} |")
    print("|---|" + "---|" * (3 * len(labels)))
    total = {k: [0.0, 0.0] for k in labels}
    for stage in STAGES:
        cells = []
        for k in labels:
            r = results[k][stage]
            c, w = r["cpu"] / secs[k], r["wall"] / secs[k]
            total[k][0] += c
            total[k][1] += w
            cells.append(f"{c:.3f} | {w:.3f} | {c:.3f}")
        tag = " (per source)" if stage in PER_SOURCE else " (driver)"
        print(f"| {stage}{tag} | " + " | ".join(cells) + " |")
    print("| **total** | " + " | ".join(f"**{c:.3f}** | **{w:.3f}** | **{c:.3f}**"
                                      for c, w in total.values()) + " |")
    print("\n(core-s per source second = core-h per source hour: the same ratio.)")

    print("\n| set | video | source s | sources | raw bytes/src-s (Mbit/s) | kept triplets/src-s "
          "| shard bytes/kept triplet | shard bytes/src-s | download parts, core-s/src-s: hash, probe, scan "
          "| scan core-s per source |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k, r in results.items():
        d, f, s = r["download"], r["filter"], r["shard"]
        sec = d["seconds"]
        per_trip = s["tar_bytes"] / max(1, s["samples"])
        print(f"| {k} | {d['width']}x{d['height']} {d['codec']} ({d['scan']}) | {sec:.1f} | {d['sources']} "
              f"| {d['raw_bytes'] / sec:,.0f} ({8 * d['raw_bytes'] / sec / 1e6:.2f}) "
              f"| {f['kept'] / sec:.2f} ({f['kept']} of {f['candidates']}) | {per_trip:,.0f} "
              f"| {s['tar_bytes'] / sec:,.0f} "
              f"| {d['hash_cpu'] / sec:.3f}, {d['probe_cpu'] / sec:.3f}, {d['scan_cpu'] / sec:.3f} "
              f"| {d['scan_cpu'] / d['sources']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2, help="synthetic clips per resolution")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per synthetic clip")
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--crf", type=int, default=21)
    parser.add_argument("--encodings", nargs="*", default=["crf"], choices=["crf", "rip"],
                        help="crf: the clips as generated; rip: re-encoded at RIP_MBPS (480p 1.2, "
                             "1080p 5 Mbit/s)")
    parser.add_argument("--grain", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per stage; the least CPU and wall kept")
    parser.add_argument("--no-real", dest="real", action="store_false", help="skip the data/real clips")
    parser.add_argument("--report", action="store_true", help="shard writes reports/ too")
    parser.add_argument("--library", type=Path, default=None,
                        help="keep the generated clips here and reuse them on the next run")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child[0], Path(args.child[1]), args.report)
    os.environ["OMP_NUM_THREADS"] = "1"
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{args.clips} clip(s) x {args.seconds:g} s per size, crf {args.crf}, grain {args.grain:g}", flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_rates_") as name:
        tmp = Path(name)
        library = args.library or tmp / "library"
        for encoding in args.encodings:
            for label in args.sizes:
                name = f"synthetic {label}" + (f" @{RIP_MBPS[label]:g} Mbit/s" if encoding == "rip" else
                                               f" crf {args.crf}")
                print(f"\n{name}:", flush=True)
                sources = synthetic_set(label, SIZES[label], args, library, encoding)
                results[name] = bench_set(f"{label}-{encoding}", sources, tmp, args)
        for key in REAL_CLIPS if args.real else ():
            sources = real_set(key)
            if sources:
                print(f"\nreal {key} ({REAL_CLIPS[key]}):", flush=True)
                results[f"real {key}"] = bench_set(key, sources, tmp, args)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    report_tables(results)


if __name__ == "__main__":
    main()
