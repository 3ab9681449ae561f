"""The ``inbetweener`` command: user-facing tools that are not DVC stages.

Subcommands import their modules lazily so that ``inbetweener --help`` stays fast and a
missing optional dependency only affects the command that needs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.errors import CommandError
from pipeline.core.logs import setup_cli_logging


def _synth(args: argparse.Namespace) -> int:
    from pipeline.core.config import check_name
    from pipeline.synth import (
        SynthSpec,
        generate,
        picture_size,
        write_telecine_truth,
        write_truth,
    )

    try:
        spec = SynthSpec(**{f: getattr(args, f) for f in SynthSpec.model_fields})
        picture_size(spec)  # bars that leave too small a picture
        check_name(args.name)
    except ValueError as exc:  # a bad option value: the message names it
        raise CommandError(str(exc)) from None
    out = generate(spec, args.out, name=args.name, show_progress=not args.quiet)
    write_truth(out.truth, args.out / "truth.parquet")
    if out.telecine is not None:
        write_telecine_truth(out.telecine, args.out / "telecine.parquet")
    cuts = int(out.truth["is_cut_start"].sum())
    print(f"synth: {len(out.videos)} clip(s), {len(out.truth)} frames, {cuts} cuts -> {args.out}")
    return 0


def _add_synth(sub: argparse._SubParsersAction) -> None:
    """Options mirror ``SynthSpec`` field by field, so the two never drift apart."""
    from pipeline.synth import SynthSpec

    p = sub.add_parser("synth", help="write procedural cartoon clips with ground truth")
    p.add_argument("out", type=Path, help="output folder (videos + truth.parquet, + telecine.parquet with --telecine)")
    for name, f in SynthSpec.model_fields.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(f.default, bool):  # --telecine / --no-telecine: bool("False") would be True
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                           help=f"(default {f.default})")
        else:
            p.add_argument(flag, type=type(f.default), default=f.default, help=f"(default {f.default})")
    p.add_argument("--name", default="synthetic", help="clip name prefix")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth)


def _export(args: argparse.Namespace) -> int:
    from pipeline.dataset.subset import run_export, summary

    result = run_export(args.shards, args.where, args.split or ["train", "val", "test"],
                        args.out, args.maxcount, force=args.force, params_path=args.params,
                        show_progress=not args.quiet)
    print(summary(result))
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="copy the samples a manifest query selects into new shards")
    p.add_argument("--where", required=True,
                   help='pandas query over manifest columns, e.g. "t == 0.5 and source == \'x\'"')
    p.add_argument("--split", action="append", choices=["train", "val", "test"],
                   help="split to export (repeatable; default: all)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--maxcount", type=int, default=1000, help="samples per shard (default 1000)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--shards", type=Path, default=Path("data/shards"),
                   help="source shards folder (default data/shards)")
    p.add_argument("--params", type=Path, default=None,
                   help="params file whose sha256 goes into the dataset card")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(func=_export)


def _verify(args: argparse.Namespace) -> int:
    from pipeline.dataset.verify import report, verify

    result = verify(args.dir, show_progress=not args.quiet)
    print(report(result, args.dir))
    return 0 if result.ok else 1


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check shards against their manifest (sha256, members, images)")
    p.add_argument("dir", type=Path, help="a shard folder (data/shards or an export)")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(func=_verify)


def _unpack(args: argparse.Namespace) -> int:
    from pipeline.dataset.manifest import SPLITS, shards_for_split
    from pipeline.dataset.unpack import UnpackError, unpack

    found = {split: shards_for_split(args.shards, split) for split in SPLITS}
    missing = [split for split in args.split if not found.get(split)]
    if missing:  # say which splits there are, not just "nothing"
        present = [split for split in SPLITS if found[split]]
        raise UnpackError(f"{args.shards}: no {', '.join(missing)} shards; it has "
                          f"{', '.join(present) or 'no shards at all'} (choose with --split)")
    shards = [u for split in args.split for u in found[split]]
    result = unpack(shards, args.out, any_t=args.any_t, overwrite=args.overwrite,
                    sources=args.source)
    print(f"unpack: {result.written} triplet(s) -> {args.out}"
          + (f"; {result.off_middle} with t != 0.5 left out (--any-t keeps them)"
             if result.off_middle else ""))
    return 0


def _add_unpack(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("unpack", help="write shards as an ATD-style triplet folder")
    p.add_argument("shards", type=Path, help="a shard folder (data/shards or an export)")
    p.add_argument("out", type=Path, help="new folder: <key>/frame1..3.<ext>")
    p.add_argument("--split", nargs="+", default=["test"], help="splits (default test)")
    p.add_argument("--any-t", action="store_true", help="also triplets whose t is not 0.5")
    p.add_argument("--source", nargs="+", default=[],
                   help="only these sources' triplets (e.g. the held-out works)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_unpack)


def _benchmark(args: argparse.Namespace) -> int:
    from vfi.evaluation.benchmark import benchmark, report, write_json

    result = benchmark(args.triplets, args.checkpoint, args.methods, args.dis_preset,
                       args.limit, args.threads, show_progress=not args.quiet, scale=args.scale,
                       tta=args.tta)
    print(report(result))
    if args.json is not None:
        write_json(result, args.json)
    return 0 if result.scored else 1


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="score model, pretrained RIFE and baselines on a "
                       "folder of triplets (ATD-12K or Vimeo-90K layout) at t = 0.5")
    p.add_argument("--triplets", required=True, type=Path,
                   help="folder searched recursively for <name>/frame{1,2,3}.* or im{1,2,3}.png")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="model checkpoint (default models/model.pt when it exists)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--methods", default=None,
                   help="comma-separated subset of model,rife,repeat,blend,dis,hdv3,"
                        "model+hdv3 (default all but model+hdv3; hdv3: RIFE HDv3, the peer; "
                        "model+hdv3: the mean of the two, about 3x the model's cost)")
    _add_scale(p)
    _add_tta(p)
    p.add_argument("--dis-preset", default="medium",
                   help="DIS flow preset: ultrafast, fast or medium (default medium)")
    p.add_argument("--limit", type=int, default=None, help="first N triplets (sorted)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_benchmark)


def _add_scale(p: argparse.ArgumentParser) -> None:
    """``--scale``, checked by the command (exit 2 with a message), not by argparse."""
    p.add_argument("--scale", type=float, default=1.0,
                   help="resolution RIFE estimates flows at, in (0, 1]: use 0.5 for 1080p "
                        "and larger (default 1)")


def _add_tta(p: argparse.ArgumentParser) -> None:
    """``--tta``, checked by the method registry (exit 2 with a message)."""
    p.add_argument("--tta", default="none",
                   help="test-time augmentation of RIFE models: none (default), reverse or "
                        "flip (2 passes each, averaged), both (4 passes)")


def _interpolate(args: argparse.Namespace) -> int:
    from vfi.app.interpolate import Options, run_interpolate, summary

    opts = Options(src=args.src, out=args.out, factor=args.factor, fps=args.fps,
                   retime=args.retime, max_hold=args.max_hold, holds=args.holds, method=args.method,
                   checkpoint=args.checkpoint, scale=args.scale, runtime=args.runtime,
                   tta=args.tta, params=args.params,
                   overwrite=args.overwrite, crf=args.crf, threads=args.threads,
                   show_progress=not args.quiet)
    result = run_interpolate(opts)
    print(summary(result))
    return 0


def _add_interpolate(sub: argparse._SubParsersAction) -> None:
    from fractions import Fraction

    p = sub.add_parser("interpolate", help="raise a video's frame rate, never across a cut")
    p.add_argument("src", type=Path, metavar="IN", help="input video")
    p.add_argument("out", type=Path, metavar="OUT", help="output video (.mp4, .mkv, .mov)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--factor", type=int, default=2, help="output rate = factor x input rate (default 2)")
    rate.add_argument("--fps", type=Fraction, default=None, help="output rate, e.g. 60 or 60000/1001")
    p.add_argument("--retime", action="store_true",
                   help="turn drawings held on twos/threes into smooth motion")
    p.add_argument("--max-hold", type=int, default=4,
                   help="with --retime, a drawing held longer than this many frames is a pause "
                        "and stays still (default 4)")
    p.add_argument("--holds", choices=("auto", "off"), default="auto",
                   help="auto (default): frames the pipeline's hold rule finds held show one "
                        "drawing, repeated (or, with --retime, moved); off: every input frame "
                        "is a drawing of its own (CG or live action, which move every frame)")
    # No argparse choices: the method registry (vfi.inference.methods) checks the name,
    # and importing it here would load torch for every command.
    p.add_argument("--method", default="model",
                   help="in-betweens from the fine-tuned model (default; pretrained RIFE 4.25 "
                        "when no checkpoint exists), pretrained RIFE 4.25 (rife), a linear "
                        "blend (blend), DIS flow (dis), the nearest key frame (repeat), RIFE "
                        "HDv3 (hdv3: t = 0.5 only) or the mean of the model's and HDv3's "
                        "middle frames (model+hdv3: about 3x the model's cost)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="model checkpoint (default models/model.pt, written by dvc repro)")
    _add_scale(p)
    _add_tta(p)
    # No choices either: vfi.app.interpolate checks it (exit 2 with a message).
    p.add_argument("--runtime", default="openvino",
                   help="what computes RIFE in-betweens: openvino (default; the same frames "
                        "about twice as fast on a CPU, torch when the package is missing) "
                        "or torch")
    p.add_argument("--params", type=Path, default=None,
                   help="params file whose cuts and triplets sections set cut and hold "
                        "detection (default: the built-in defaults, which the shipped "
                        "params.yaml holds; ./params.yaml is never read implicitly)")
    p.add_argument("--crf", type=int, default=18, help="x264 quality, lower is better (default 18)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the model (default 1; 0: torch's default)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_interpolate)


def _inspect(args: argparse.Namespace) -> int:
    from pipeline.stages.inspect_video import inspect

    out = args.out or Path(f"{args.video.stem}-inspect")
    result = inspect(args.video, out, args.params, args.overwrite)
    print("\n".join(result.lines))
    print(f"wrote {out}/: summary.txt, frames.csv, shots.png, change.png")
    return 0


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="what the pipeline sees in one video: cuts, dissolves, holds, "
                                       "conversion repeats, scan verdict, triplets kept and why not")
    p.add_argument("video", type=Path, help="a video file")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for summary.txt, frames.csv, shots.png, change.png "
                        "(default ./VIDEO_STEM-inspect)")
    p.add_argument("--params", type=Path, default=None,
                   help="take the cuts, triplets and filter settings from this params file (its "
                        "sources are ignored; default: the built-in defaults = the shipped params.yaml)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    p.set_defaults(func=_inspect)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inbetweener", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synth(sub)
    _add_export(sub)
    _add_verify(sub)
    _add_inspect(sub)
    _add_unpack(sub)
    _add_benchmark(sub)
    _add_interpolate(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_cli_logging()
    try:
        return args.func(args)
    except CommandError as exc:  # refused input: the message, no traceback
        print(f"inbetweener {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
