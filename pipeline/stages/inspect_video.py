"""``inbetweener inspect VIDEO``: what the pipeline would see in one video, in seconds.

:func:`inspect` runs the very commands ``dvc repro`` runs (``STAGES``, checked against
dvc.yaml by the tests): download (probe, scan), detect_cuts (cuts, holds, cadence),
extract_triplets and filter, on a one-source params file (built-in defaults, or the
sections of ``--params FILE``, its sources ignored) in a temporary folder on the local
engine: it reports what the dataset would get (why so: docs/NOTES.md). In ``OUT``:

- ``summary.txt``: the lines the command prints (``OUT`` is written whole or not at all);
- ``frames.csv``: per decoded frame: time, scene, drawing, its hold length, the hold
  rule's change (in gates; above 1 a new drawing), mean-difference motion, transition;
- ``shots.png``: the first frame of every scene, captioned with frame and time;
- ``change.png``: the change per frame, cuts (red) and transitions (shaded) marked.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image, ImageDraw, ImageFont

from pipeline.core.config import Params, parse_params, read_params_yaml
from pipeline.core.errors import CommandError
from pipeline.curation.transitions import thumb_array, transition_drawings
from pipeline.media.video import open_reader

log = logging.getLogger("inbetweener.inspect")

SHOT_HEIGHT = 96  # px: a shot start's thumbnail
SHOTS_PER_ROW = 6
CAPTION = 16  # px above each thumbnail
PLOT_SIZE = (1200, 300)
PLOT_MARGIN = (48, 28, 12, 28)  # left, top, right, bottom
PLOT_TOP = 4.0  # gates: the change axis is cut here (a cut is far beyond any gate)
# The analysis stages as dvc.yaml runs them (its cmd lines, relative to a workspace).
STAGES = {
    "download": "python -m pipeline.stages.download --params params.yaml --out data/raw",
    "detect_cuts": "python -m pipeline.stages.detect_cuts --params params.yaml --raw data/raw --out data/analysis",
    "extract_triplets": "python -m pipeline.stages.extract_triplets --params params.yaml --analysis data/analysis "
                        "--out data/triplets",
    "filter": "python -m pipeline.stages.filter --params params.yaml --raw data/raw --analysis data/analysis "
              "--triplets data/triplets --metrics metrics/data.json",
}


class InspectError(CommandError):
    """A video or option the command cannot use: the message says why."""


@dataclass
class Inspection:
    """The stage tables of one video (its rows only) and what was written."""

    source: pd.Series  # its sources.parquet row
    frames: pd.DataFrame  # frames.parquet, plus hold, transition
    decoded: pd.Series  # its decoded.parquet row
    triplets: pd.DataFrame  # filtered.parquet: every candidate, keep and reason
    lines: list[str]


def source_name(video: Path) -> str:
    """A params-safe source name from the file name."""
    return re.sub(r"[^a-z0-9]+", "-", video.stem.lower()).strip("-") or "video"


def one_source_params(video: Path, params_file: Path | None) -> Params:
    """The params a one-video run uses: every section from ``params_file`` (or the
    built-in defaults), the one source ``video``, the local engine."""
    return parse_params(one_source_raw(video, params_file), str(params_file or "defaults"))


def one_source_raw(video: Path, params_file: Path | None) -> dict:
    """The params mapping of a one-video run (see :func:`one_source_params`)."""
    raw = dict(read_params_yaml(params_file)) if params_file else {}
    raw["sources"] = [{"name": source_name(video), "kind": "path", "path": str(video.resolve())}]
    raw["engine"] = "local"
    return raw


def stage_reasons(output: str) -> str:
    """A failed stage's warnings and errors (why a source was skipped, then why it
    stopped), without the log prefixes; its last line when it logged neither."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    picked = [re.sub(r"^(WARNING|ERROR)\s+\S+:\s*", "", line) for line in lines
              if line.startswith(("WARNING", "ERROR"))]
    return "; ".join(picked or lines[-1:] or ["no message"])


def run_stages(raw: dict, work: Path) -> tuple[pd.DataFrame, ...]:
    """The analysis stages' commands in the workspace ``work``; their tables."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for name, cmd in STAGES.items():
        args = [sys.executable, *cmd.split()[1:]]
        done = subprocess.run(args, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False)
        if done.returncode != 0:
            raise InspectError(f"the {name} stage failed: {stage_reasons(done.stdout)}")
        if name == "download":
            sources = pd.read_parquet(work / "data" / "raw" / "sources.parquet")
            if (sources["status"] != "ok").any():
                raise InspectError(f"cannot read the video: {sources['error'].iloc[0]}")
        if name == "detect_cuts":
            decoded = pd.read_parquet(work / "data" / "analysis" / "decoded.parquet")
            if (decoded["status"] == "error").any():
                raise InspectError(f"cannot decode the video: {decoded['error'].iloc[0]}")
    data = work / "data"
    return (sources, pd.read_parquet(data / "analysis" / "frames.parquet"), decoded,
            pd.read_parquet(data / "triplets" / "drawings.parquet"),
            pd.read_parquet(data / "triplets" / "filtered.parquet"))


def transition_frames(frames: pd.DataFrame, drawings: pd.DataFrame, params: Params) -> np.ndarray:
    """Per frame: whether the filter's transition rule (fades, dissolves, flashes) covers
    its drawing, measured as the filter measures it (each drawing by its first frame)."""
    p = params.filter
    first = drawings["first_frame"].to_numpy(np.int64)
    pos = np.searchsorted(frames["frame"].to_numpy(np.int64), first)
    scene = drawings["scene"].to_numpy()
    thumbs = thumb_array(frames["thumb"].to_numpy()[pos].tolist())
    flags = transition_drawings(
        thumbs, frames["luma_mean"].to_numpy(np.float64)[pos], frames["luma_std"].to_numpy(np.float64)[pos],
        scene, p.transition_tolerance, p.blank_std, p.flash_jump, p.transition_motion_ratio,
        p.transition_margin).flags
    return np.repeat(flags, drawings["hold"].to_numpy(np.int64))


def spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def timecode(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{secs:06.3f}"


def hold_lines(drawings: pd.DataFrame) -> list[str]:
    """How long drawings are held: the share of frames on ones, twos, threes, longer."""
    hold = drawings["hold"].to_numpy(np.int64)
    frames = max(int(hold.sum()), 1)
    parts = [f"{name} {hold[mask].sum() / frames:.0%}" for name, mask in (
        ("ones", hold == 1), ("twos", hold == 2), ("threes", hold == 3), ("longer", hold >= 4))]
    return [f"drawings: {len(hold)} in {frames} frames; frames held on {', '.join(parts)}"]


def summary_lines(video: Path, ins_source: pd.Series, frames: pd.DataFrame, decoded: pd.Series,
                  drawings: pd.DataFrame, triplets: pd.DataFrame) -> list[str]:
    """What the command prints (and ``summary.txt`` holds)."""
    s = ins_source
    lines = [f"inspect: {video.name}: {len(frames)} frames decoded ({decoded['reader']}, {decoded['status']}), "
             f"{s['width']}x{s['height']} {s['codec']} at {s['fps']:.6g} fps, {s['duration']:.1f} s",
             f"scan: {s['scan']}" + (f", crop {s['crop']}" if s["crop"] else "") +
             (f" ({s['scan_error']})" if s["scan_error"] else "")]
    start = frames["scene"].diff().fillna(0).ne(0).to_numpy()
    cut_rows = frames[start]
    cuts = [f"{int(r.frame)} ({timecode(r.pts - frames['pts'].iloc[0])})" for r in cut_rows.itertuples()]
    lines.append(f"cuts: {len(cuts)}" + (f": {', '.join(cuts)}" if cuts else ""))
    runs = spans(frames["transition"].to_numpy())
    frame = frames["frame"].to_numpy()
    lines.append(f"transitions (fades, dissolves, flashes): {len(runs)}" +
                 (": " + ", ".join(f"{frame[a]}-{frame[b]}" for a, b in runs) if runs else ""))
    lines += hold_lines(drawings)
    if int(decoded["repeat_period"]):
        drop = int(decoded.get("repeat_drop_phase", -1))
        lines.append(f"conversion repeats: frame % {decoded['repeat_period']} == {decoded['repeat_phase']} "
                     f"repeats the frame before ({decoded['repeat_share']:.0%} of that phase)"
                     + (f"; a film frame dropped before phase {drop}" if drop >= 0 else ""))
    else:
        lines.append("conversion repeats: none")
    kept = int(triplets["keep"].sum())
    reasons = triplets.loc[~triplets["keep"], "reason"].value_counts()
    lines.append(f"triplets: {len(triplets)} candidates, {kept} kept" +
                 ("; dropped: " + ", ".join(f"{k} {v}" for k, v in reasons.items()) if len(reasons) else ""))
    return lines


def _font(size: int = 11) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def shot_sheet(video: Path, frames: pd.DataFrame, params: Params) -> Image.Image:
    """The first frame of every scene (decoded again, through the same reader and decode
    filter as the analysis), captioned with its frame number and time."""
    starts = frames.loc[frames["scene"].diff().fillna(1).ne(0), ["frame", "pts"]]
    wanted = dict(zip(starts["frame"].astype(int), starts["pts"]))
    thumbs: list[tuple[int, Image.Image]] = []
    with open_reader(video, SHOT_HEIGHT, params.cuts.reader) as reader:
        for f in reader:
            if f.index in wanted:
                thumbs.append((f.index, Image.fromarray(f.rgb)))
            if len(thumbs) == len(wanted):
                break
    width = max((im.width for _, im in thumbs), default=SHOT_HEIGHT)
    rows = max(1, -(-len(thumbs) // SHOTS_PER_ROW))
    sheet = Image.new("RGB", (SHOTS_PER_ROW * (width + 4) + 4, rows * (SHOT_HEIGHT + CAPTION + 4) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    first = frames["pts"].iloc[0]
    for k, (index, im) in enumerate(thumbs):
        x, y = 4 + (k % SHOTS_PER_ROW) * (width + 4), 4 + (k // SHOTS_PER_ROW) * (SHOT_HEIGHT + CAPTION + 4)
        draw.text((x, y + 2), f"{index}  {timecode(wanted[index] - first)}", fill="black", font=_font())
        sheet.paste(im, (x, y + CAPTION))
    return sheet


def change_plot(frames: pd.DataFrame) -> Image.Image:
    """The hold rule's change (gates, cut at ``PLOT_TOP``) per frame: a new drawing above
    the dashed gate line at 1; cuts as red lines, transitions shaded."""
    (w, h), (left, top, right, bottom) = PLOT_SIZE, PLOT_MARGIN
    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)
    n = len(frames)
    x_of = lambda i: left + (w - left - right) * i / max(n - 1, 1)  # noqa: E731
    y_of = lambda v: h - bottom - (h - top - bottom) * min(v, PLOT_TOP) / PLOT_TOP  # noqa: E731
    for a, b in spans(frames["transition"].to_numpy()):
        draw.rectangle([x_of(a), top, x_of(b), h - bottom], fill=(255, 228, 170))
    for i in np.flatnonzero(frames["scene"].diff().fillna(0).ne(0).to_numpy()):
        draw.line([(x_of(i), top), (x_of(i), h - bottom)], fill="red")
    change = np.nan_to_num(frames["change"].to_numpy(np.float64), posinf=PLOT_TOP)
    draw.line([(x_of(i), y_of(v)) for i, v in enumerate(change)], fill=(40, 80, 200))
    for x in np.arange(left, w - right, 8):
        draw.line([(x, y_of(1.0)), (x + 4, y_of(1.0))], fill="black")
    draw.line([(left, top), (left, h - bottom), (w - right, h - bottom)], fill="black")
    for v in range(int(PLOT_TOP) + 1):
        draw.text((left - 6, y_of(v)), f"{v}", fill="black", font=_font(), anchor="rm")
    draw.text((w // 2, 6), "hold rule change (gates; above 1: a new drawing), cuts red, transitions shaded",
              fill="black", font=_font(12), anchor="mt")
    frame = frames["frame"].to_numpy()
    for i in np.linspace(0, n - 1, 9).astype(int) if n else []:
        draw.text((x_of(i), h - bottom + 4), f"{frame[i]}", fill="black", font=_font(), anchor="mt")
    return image


def frames_csv(frames: pd.DataFrame) -> bytes:
    cols = ["frame", "pts", "time", "scene", "drawing", "hold", "change", "motion", "transition"]
    return frames[[c for c in cols if c in frames]].to_csv(index=False, float_format="%.4f").encode()


def inspect(video: Path, out: Path, params_file: Path | None = None, overwrite: bool = False) -> Inspection:
    """Analyse ``video`` with the pipeline's stages and write the look into ``out``."""
    if not video.is_file():
        raise InspectError(f"{video}: no such file")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InspectError(f"{out} exists and is not empty; pass --overwrite to replace it")
    params = one_source_params(video, params_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".inspect-", dir=out.parent) as tmp:
        work, result = Path(tmp) / "work", Path(tmp) / "out"
        result.mkdir()
        sources, frames, decoded, drawings, triplets = run_stages(one_source_raw(video, params_file), work)
        frames = frames.reset_index(drop=True)
        frames["hold"] = np.repeat(drawings["hold"].to_numpy(np.int64), drawings["hold"].to_numpy(np.int64))
        frames["transition"] = transition_frames(frames, drawings, params)
        lines = summary_lines(video, sources.iloc[0], frames, decoded.iloc[0], drawings, triplets)
        (result / "summary.txt").write_text("\n".join(lines) + "\n")
        (result / "frames.csv").write_bytes(frames_csv(frames))
        shot_sheet(video, frames, params).save(result / "shots.png")
        change_plot(frames).save(result / "change.png")
        if out.exists():
            shutil.rmtree(out)
        result.rename(out)
    return Inspection(sources.iloc[0], frames, decoded.iloc[0], triplets, lines)
