"""The dataset report of the shard stage: plot data, the same plots as PNG, a contact sheet.

- ``reports/*.csv``: DVC plot data (one row per bin, one column per split), so ``dvc plots
  show/diff`` compare experiments; the same charts are also drawn as PNG with PIL, which
  open anywhere, offline;
- ``reports/contact_sheet.png``: ``shard.contact_sheet`` kept triplets picked at random
  (seeded by ``shard.seed``), f0 | f1 | f2 per row with the key and t, read back from the
  written shards: what you see is what the loader gets;
- ``reports/removed.png`` (:func:`removed_sheet`): per removal reason, in the filter's
  order, a few removed triplets picked at random (seeded), each f0 | f1 | f2 decoded from
  the video (removed triplets are in no shard) and captioned with source, frames, reason
  and the measure that decided.

Why PNG beside DVC's plots: docs/NOTES.md.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from pipeline.core import atomic
from pipeline.core.config import ShardParams
from pipeline.curation.triplets import REASONS
from pipeline.dataset.manifest import SPLITS, iter_tar_samples

log = logging.getLogger("inbetweener.report")

SPLIT_COLOURS = {"train": (66, 133, 244), "val": (251, 140, 0), "test": (52, 168, 83)}
CHART_SIZE = (640, 360)
MARGIN = (60, 40, 20, 50)  # left, top, right, bottom
THUMB_HEIGHT = 128
CAPTION_HEIGHT = 20
GAP = 4
BINS = 20  # motion histogram
T_BINS = 20  # t bins of width 0.05
DRAWING_BINS = 30


def _per_split(df: pd.DataFrame, bin_col: pd.Series, bins: list) -> pd.DataFrame:
    """Counts per bin (rows) and split (columns), every bin and split present."""
    counts = pd.crosstab(bin_col, df["split"]).reindex(index=bins, columns=list(SPLITS),
                                                       fill_value=0)
    return counts.astype("int64")


def t_histogram(manifest: pd.DataFrame) -> pd.DataFrame:
    """Samples per t bin: bins centred on multiples of 1/T_BINS, so the common timings
    (0.5; 0.4 and 0.6 for twos next to threes) each sit at the centre of their own bin."""
    idx = np.rint(manifest["t"].to_numpy(float) * T_BINS).astype(int).clip(0, T_BINS)
    counts = _per_split(manifest, pd.Series(idx, index=manifest.index), list(range(T_BINS + 1)))
    counts.insert(0, "t", np.round(np.arange(T_BINS + 1) / T_BINS, 4))
    return counts.reset_index(drop=True)


def motion_columns(manifest: pd.DataFrame) -> list[str]:
    """``motion`` if the filter wrote it, else ``motion01``/``motion12`` (whichever exist)."""
    if "motion" in manifest:
        return ["motion"]
    return [c for c in ("motion01", "motion12") if c in manifest]


def motion_values(manifest: pd.DataFrame) -> pd.Series | None:
    """A triplet's motion: ``motion``, else the larger of its two drawing changes."""
    columns = motion_columns(manifest)
    return manifest[columns].astype(float).max(axis=1) if columns else None


def motion_histogram(manifest: pd.DataFrame) -> pd.DataFrame | None:
    """Samples per motion bin over [0, max]; None when no motion column exists.

    With ``motion01`` / ``motion12`` a triplet counts once, at the larger of the two.
    """
    values = motion_values(manifest)
    if values is None:
        return None
    values = values.fillna(0.0)
    top = float(np.ceil(values.max())) if len(values) and values.max() > 0 else 1.0
    edges = np.linspace(0.0, top, BINS + 1)
    idx = np.clip(np.digitize(values.to_numpy(), edges) - 1, 0, BINS - 1)
    counts = _per_split(manifest, pd.Series(idx, index=manifest.index), list(range(BINS)))
    counts.insert(0, "motion", np.round((edges[:-1] + edges[1:]) / 2, 3))
    return counts.reset_index(drop=True)


def drawings_per_scene(manifest: pd.DataFrame) -> pd.DataFrame:
    """Scenes by how many distinct drawings their kept triplets use (at least 3).

    ``drawings`` is the lower edge of a bin; bins are one drawing wide up to
    DRAWING_BINS bins, wider beyond, so a film with very long scenes stays readable.
    """
    long = pd.concat([manifest[["source", "scene", "split", f"d{k}"]].rename(
        columns={f"d{k}": "drawing"}) for k in range(3)])
    per_scene = long.groupby(["source", "scene", "split"])["drawing"].nunique().reset_index()
    top = int(per_scene["drawing"].max()) if len(per_scene) else 3
    width = max(1, int(np.ceil((top - 2) / DRAWING_BINS)))
    bins = list(range(3, top + 1, width))
    lower = 3 + (per_scene["drawing"] - 3) // width * width
    counts = _per_split(per_scene, lower, bins)
    counts.insert(0, "drawings", bins)
    return counts.reset_index(drop=True)


def plot_tables(manifest: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """name -> plot data; the x column comes first, then one column per split."""
    tables = {"t": t_histogram(manifest), "drawings_per_scene": drawings_per_scene(manifest)}
    motion = motion_histogram(manifest)
    if motion is not None:
        tables["motion"] = motion
    return tables


def _font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def nice_step(top: float, ticks: int = 5) -> float:
    """A 1/2/5 x 10^k step giving at most ``ticks`` intervals up to ``top``."""
    raw = max(top, 1e-9) / ticks
    power = 10 ** np.floor(np.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _axes(draw: ImageDraw.ImageDraw, top: float, step: float, title: str, xlabel: str) -> None:
    """Title, axes lines, y ticks every ``step`` up to ``top``, and the x label."""
    (w, h), (left, upper, right, lower) = CHART_SIZE, MARGIN
    draw.text((w // 2, 8), title, fill="black", font=_font(14), anchor="mt")
    draw.line([(left, upper), (left, h - lower), (w - right, h - lower)], fill="black")
    for k in range(int(round(top / step)) + 1):
        y = h - lower - (h - lower - upper) * k * step / top
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((left - 6, y), f"{k * step:g}", fill="black", font=_font(), anchor="rm")
    draw.text((w // 2, h - 8), xlabel, fill="black", font=_font(), anchor="mb")


def _legend(draw: ImageDraw.ImageDraw) -> None:
    x = CHART_SIZE[0] - MARGIN[2] - 70
    for k, (split, colour) in enumerate(SPLIT_COLOURS.items()):
        y = MARGIN[1] + 4 + 16 * k
        draw.rectangle([x, y, x + 10, y + 10], fill=colour)
        draw.text((x + 14, y + 5), split, fill="black", font=_font(), anchor="lm")


def bar_chart(table: pd.DataFrame, title: str) -> Image.Image:
    """Bars stacked by split, one per row of ``table`` (first column: the x labels)."""
    x = table.columns[0]
    image = Image.new("RGB", CHART_SIZE, "white")
    draw = ImageDraw.Draw(image)
    totals = table[list(SPLITS)].sum(axis=1).to_numpy()
    step = nice_step(max(1, int(totals.max()) if len(totals) else 1))
    top = step * np.ceil(max(1, totals.max() if len(totals) else 1) / step)
    _axes(draw, top, step, title, x)
    (w, h), (left, upper, right, lower) = CHART_SIZE, MARGIN
    slot = (w - left - right) / max(1, len(table))
    scale = (h - lower - upper) / top
    label_every = max(1, int(np.ceil(len(table) / 11)))
    for i, row in enumerate(table.itertuples(index=False)):
        x0, base = left + i * slot + 1, h - lower
        for split in SPLITS:
            height = getattr(row, split) * scale
            if height > 0:
                draw.rectangle([x0, base - height, x0 + slot - 2, base], fill=SPLIT_COLOURS[split])
            base -= height
        if i % label_every == 0:
            draw.text((x0 + slot / 2, h - lower + 4), f"{getattr(row, x):g}", fill="black",
                      font=_font(10), anchor="mt")
    _legend(draw)
    return image


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def pick_samples(manifest: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    """``count`` random rows (seeded), shown in manifest order."""
    count = min(count, len(manifest))
    rows = np.sort(np.random.default_rng(seed).choice(len(manifest), count, replace=False))
    return manifest.iloc[rows]


def _read_frames(rows: pd.DataFrame, shards_dir: Path) -> dict[str, list[Image.Image]]:
    """The three frames of each picked sample, read from its shard."""
    out: dict[str, list[Image.Image]] = {}
    for shard, part in rows.groupby("shard", sort=True):
        for key, members in iter_tar_samples(shards_dir / shard, set(part["key"])):
            fmt = part.loc[part["key"] == key, "format"].iloc[0]
            out[key] = [Image.open(io.BytesIO(members[f"f{k}.{fmt}"])).convert("RGB")
                        for k in range(3)]
    return out


def contact_sheet(rows: pd.DataFrame, shards_dir: Path) -> Image.Image:
    """One row per sample: caption (key, t, split), then f0 | f1 | f2 at THUMB_HEIGHT."""
    frames = _read_frames(rows, shards_dir)
    widths = [round(THUMB_HEIGHT * r.width / r.height) for r in rows.itertuples()] or [THUMB_HEIGHT]
    cell = max(widths)
    row_h = CAPTION_HEIGHT + THUMB_HEIGHT + GAP
    sheet = Image.new("RGB", (3 * cell + 4 * GAP, max(1, len(rows)) * row_h + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    if rows.empty:
        draw.text((GAP, GAP), "no samples", fill="black", font=_font())
    for i, r in enumerate(rows.itertuples()):
        y = GAP + i * row_h
        draw.text((GAP, y + 3), f"{r.key}   t={r.t:.3f}   {r.split}", fill="black", font=_font())
        for k, frame in enumerate(frames[r.key]):
            thumb = frame.resize((round(THUMB_HEIGHT * r.width / r.height), THUMB_HEIGHT),
                                 Image.Resampling.LANCZOS)
            sheet.paste(thumb, (GAP + k * (cell + GAP), y + CAPTION_HEIGHT))
    return sheet


def write_report(manifest: pd.DataFrame, shards_dir: Path, report_dir: Path,
                 params: ShardParams) -> list[Path]:
    """Write plot CSVs, their PNGs and the contact sheet; returns the paths written."""
    written = []
    for name, table in plot_tables(manifest).items():
        csv = report_dir / f"{name}.csv"
        atomic.write_bytes(csv, table.to_csv(index=False, lineterminator="\n").encode())
        title = {"t": "t (samples per bin)",
                 "motion": f"{' / '.join(motion_columns(manifest))} (samples per bin)",
                 "drawings_per_scene": "drawings per scene (scenes per bin)"}[name]
        atomic.write_bytes(report_dir / f"{name}.png", _png_bytes(bar_chart(table, title)))
        written += [csv, report_dir / f"{name}.png"]
    rows = pick_samples(manifest, params.contact_sheet, params.seed)
    sheet = report_dir / "contact_sheet.png"
    atomic.write_bytes(sheet, _png_bytes(contact_sheet(rows, shards_dir)))
    log.info("report: %d plot(s) and a contact sheet of %d triplet(s) in %s",
             len(written) // 2, len(rows), report_dir)
    return [*written, sheet]


# --- what the filter removed ---------------------------------------------------------

FrameSource = Callable[[str, list[int]], Mapping[int, np.ndarray]]
"""``read(source, frame numbers) -> {frame: H x W x 3 uint8}``: the shard stage's decoder.
A frame it could not decode is simply absent; the sheet shows a labelled blank."""

REMOVED_PER_REASON = 3  # triplets shown per reason by default
REMOVED_SHEET = "removed.png"  # in the report folder: what the filter threw away


def sheet_reasons(filtered: pd.DataFrame) -> list[str]:
    """``triplets.REASONS`` in order, then any other reason a removed row carries (a
    table edited by hand, a newer filter): shown under its own heading, never hidden."""
    removed = filtered[~filtered["keep"].astype(bool)]
    return list(REASONS) + sorted(set(map(str, removed["reason"])) - set(REASONS))


def pick_removed(filtered: pd.DataFrame, per_reason: int, seed: int) -> pd.DataFrame:
    """Up to ``per_reason`` removed rows per reason (``sheet_reasons`` order): the rows
    whose ``sha256(seed:reason:source:f0)`` is smallest, then in source -> f0 order.

    A hash rank, not a random draw over the table's rows: adding a source only adds
    candidates, so the rows picked from the other sources stay picked or drop out, and
    the shard stage's frame cache (``pipeline.dataset.frame_parts``) already holds their frames
    (a draw re-shuffled every pick and decoded old sources again). The same table and
    seed always give the same rows."""
    removed = filtered[~filtered["keep"].astype(bool)]
    parts = []
    for reason in sheet_reasons(filtered):
        rows = removed[removed["reason"] == reason]
        if len(rows) and per_reason:
            rank = [hashlib.sha256(f"{seed}:{reason}:{s}:{f}".encode()).digest()
                    for s, f in zip(rows["source"], rows["f0"])]
            pick = rows.iloc[np.argsort(np.array(rank, dtype=object), kind="stable")[:per_reason]]
            parts.append(pick.sort_values(["source", "f0"], kind="stable"))
    return pd.concat(parts) if parts else removed.iloc[:0]


def _bits(a: object, b: object) -> int:
    return int(np.uint64(a) ^ np.uint64(b)).bit_count()


def decided_by(row: pd.Series) -> str:
    """The measure behind a row's removal, in the filter's own terms."""
    reason = row["reason"]
    if reason == "too_long_span":
        return f"span {int(row['span'])} frames"
    if reason == "static":
        return f"f0-f2 phash {_bits(row['phash0'], row['phash2'])} / dhash {_bits(row['dhash0'], row['dhash2'])} bits"
    if reason == "transition":
        ratio = float(row.get("fade_ratio", np.nan))
        return f"fade/motion residual {ratio:.2f}" if np.isfinite(ratio) else "flash or blank frame"
    if reason == "unexplained":
        return f"middle unexplained by its ends {float(row['unexplained']):.2f}"
    if reason == "too_little_motion":
        return f"motion {min(row['motion01'], row['motion12']):.2f} (smaller step)"
    if reason == "too_much_motion":
        return f"motion {max(row['motion01'], row['motion12']):.1f} (larger step)"
    if reason == "near_duplicate":
        return "phash key near an earlier kept triplet"
    return ""


def wanted_frames(filtered: pd.DataFrame, per_reason: int = REMOVED_PER_REASON,
                  seed: int = 0) -> dict[str, list[int]]:
    """source -> sorted frame numbers ``removed_sheet`` will ask for (same arguments), so
    the shard stage can decode them in the pass it already makes over each source."""
    return _wanted(pick_removed(filtered, per_reason, seed))


def _wanted(rows: pd.DataFrame) -> dict[str, list[int]]:
    return {str(source): sorted({int(v) for k in range(3) for v in part[f"f{k}"]})
            for source, part in rows.groupby("source", sort=True)}


def _frames_of(rows: pd.DataFrame, read: FrameSource) -> dict[str, Mapping[int, np.ndarray]]:
    """Every picked frame, one ``read`` call per source (the reader makes one pass)."""
    return {source: read(source, frames) for source, frames in _wanted(rows).items()}


def _cell(frame: np.ndarray | None, height: int) -> Image.Image:
    """A frame scaled to ``height``, or a labelled grey box when it was not decoded."""
    if frame is None:
        box = Image.new("RGB", (height * 4 // 3, height), (200, 200, 200))
        ImageDraw.Draw(box).text((4, height // 2), "not decoded", fill="black", font=_font(), anchor="lm")
        return box
    image = Image.fromarray(np.asarray(frame, np.uint8)).convert("RGB")
    width = max(1, round(height * image.width / image.height))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def caption(row: pd.Series) -> str:
    """``source  f0/f1/f2  reason: measure``."""
    frames = "/".join(str(int(row[f"f{k}"])) for k in range(3))
    return f"{row['source']}  frames {frames}  {row['reason']}: {decided_by(row)}"


def removed_sheet(filtered: pd.DataFrame, read: FrameSource, per_reason: int = REMOVED_PER_REASON,
                  seed: int = 0, height: int = THUMB_HEIGHT) -> Image.Image:
    """Per reason a heading (removed count) and up to ``per_reason`` removed triplets,
    f0 | f1 | f2 side by side under a caption (see ``caption``)."""
    rows = pick_removed(filtered, per_reason, seed)
    frames = _frames_of(rows, read)
    counts = filtered.loc[~filtered["keep"].astype(bool), "reason"].value_counts()
    lines: list[tuple[str, list[Image.Image]]] = []
    for reason in sheet_reasons(filtered):
        lines.append((f"{reason or '(no reason)'}: {int(counts.get(reason, 0))} removed of {len(filtered)}", []))
        for _, row in rows[rows["reason"] == reason].iterrows():
            got = frames[str(row["source"])]
            lines.append((caption(row), [_cell(got.get(int(row[f"f{k}"])), height) for k in range(3)]))
    width = max([GAP + sum(c.width + GAP for c in cells) for _, cells in lines] + [640])
    heights = [CAPTION_HEIGHT + (height + GAP if cells else 0) for _, cells in lines]
    sheet = Image.new("RGB", (width, GAP + sum(heights)), "white")
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for (text, cells), h in zip(lines, heights):
        draw.text((GAP, y + 3), text, fill="black", font=_font(14 if not cells else 12))
        x = GAP
        for cell in cells:
            sheet.paste(cell, (x, y + CAPTION_HEIGHT))
            x += cell.width + GAP
        y += h
    return sheet


def write_removed_sheet(filtered: pd.DataFrame, read: FrameSource, path: Path,
                        per_reason: int = REMOVED_PER_REASON, seed: int = 0) -> Path:
    """Write ``removed_sheet`` as PNG (atomically); returns the path."""
    atomic.write_bytes(Path(path), _png_bytes(removed_sheet(filtered, read, per_reason, seed)))
    log.info("report: removed triplets (up to %d per reason) in %s", per_reason, path)
    return Path(path)
