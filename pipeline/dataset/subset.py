"""Curated export: a query over the manifest picks samples; their tar members are copied.

Shared by the ``export`` DVC stage (``pipeline.stages.export``, driven by ``params.export``)
and the ``inbetweener export`` command (``inbetweener.cli``), so neither imports the other.
``--where "t == 0.5 and source == 'popeye'"`` selects ``manifest.parquet`` rows with
``DataFrame.query``; those samples are copied from the existing shards into new shards
in ``DIR`` (the shard stage's layout: ``DIR/{split}/{split}-%06d.tar``, manifest, shards
table, wids indexes), with a dataset card ``DIR/README.md`` (query, counts, sources with
licenses and attribution, params hash, tool version). Nothing is decoded, re-encoded or
re-packed: each sample's tar blocks (``tar_offset``, ``tar_bytes`` in the manifest) are
copied as they are (``RawShardSink``). The result is built in a temporary sibling of
``DIR`` and renamed into place; a non-empty ``DIR`` is refused unless ``force``, which
replaces it (the DVC stage always replaces its output). Why copy blocks: docs/NOTES.md.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import yaml

from pipeline.core.errors import CommandError
from pipeline.core.progress import Progress, progress
from pipeline.core.stage import StageError
from pipeline.dataset.manifest import (
    SPLITS,
    Placement,
    RawShardSink,
    read_manifest,
    shards_table,
    write_tables,
)
from pipeline.sources.licences import UNKNOWN_LICENSE, licence_known

log = logging.getLogger("inbetweener.export")

CARD = "README.md"
DEFAULT_MAXSIZE = 1 << 30


class ExportError(StageError, CommandError, ValueError):
    """A query or an output folder that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    manifest: pd.DataFrame
    shards: pd.DataFrame
    seconds: float

    @property
    def bytes(self) -> int:
        return int(self.shards["bytes"].sum())


def select(manifest: pd.DataFrame, where: str, splits: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Rows of ``splits`` matching the pandas query ``where`` (errors name the columns)."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ExportError(f"unknown split(s) {unknown}: expected {', '.join(SPLITS)}")
    try:
        chosen = manifest.query(where) if where.strip() else manifest
    except NameError as exc:  # pandas' UndefinedVariableError
        raise ExportError(f"query {where!r}: {exc}; columns are: "
                          f"{', '.join(manifest.columns)}") from None
    except (SyntaxError, ValueError, TypeError, KeyError) as exc:
        raise ExportError(f"query {where!r} is not a valid pandas query: {exc}") from None
    chosen = chosen[chosen["split"].isin(list(splits))]
    if chosen.empty:
        raise ExportError(f"query {where!r} selects no samples in split(s) "
                          f"{', '.join(splits)}; nothing exported")
    return chosen


def _check_out(out: Path, shards_dir: Path, force: bool) -> None:
    """Refuse to overwrite without ``force``, and never write into or over the source."""
    src, dst = shards_dir.resolve(), out.resolve()
    if dst == src or src.is_relative_to(dst) or dst.is_relative_to(src):
        raise ExportError(f"{out}: the export cannot be, contain or sit inside the source "
                          f"shards folder {shards_dir}")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out}: folder is not empty; use --force to replace it")


def _ordered(chosen: pd.DataFrame) -> pd.DataFrame:
    """Split order, then the order of the source shards: deterministic output bytes."""
    rank = chosen["split"].map({s: i for i, s in enumerate(SPLITS)})
    return chosen.assign(_rank=rank).sort_values(["_rank", "shard", "tar_offset"],
                                                 kind="stable").drop(columns="_rank")


def copy_samples(chosen: pd.DataFrame, shards_dir: Path, out: Path, maxcount: int,
                 maxsize: int = DEFAULT_MAXSIZE, bar: Progress | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copy the chosen samples' tar blocks into new shards; (manifest, shards table).
    ``bar`` counts the samples copied (a large export takes minutes)."""
    parts, shard_rows = [], []
    for split in SPLITS:
        part = chosen[chosen["split"] == split]
        if part.empty:
            continue
        sink = RawShardSink(out, split, maxcount, maxsize)
        try:
            parts.append(_copy_split(part, shards_dir, sink, bar))
            shard_rows += sink.close()
        except BaseException:
            sink.abort()
            raise
    return pd.concat(parts, ignore_index=True), shards_table(shard_rows)


def _read_blocks(fh: BinaryIO, row: Any, path: Path) -> bytes:
    """A sample's tar blocks, found by the manifest's offsets; its first header is checked
    so that a manifest that does not belong to the tar is caught, not copied."""
    fh.seek(row.tar_offset)
    blocks = fh.read(row.tar_bytes)
    if len(blocks) != row.tar_bytes or not blocks.startswith(f"{row.key}.".encode()):
        raise ExportError(f"{path}: sample {row.key} is not at offset {row.tar_offset} as the "
                          "manifest says; run inbetweener verify")
    return blocks


def _copy_split(part: pd.DataFrame, shards_dir: Path, sink: RawShardSink,
                bar: Progress | None = None) -> pd.DataFrame:
    """Each source shard of one split is opened once and read in offset order."""
    placed: list[Placement] = []
    members = [c for c in part.columns if c.startswith("bytes_")]
    for shard, rows in part.groupby("shard", sort=True):
        with open(shards_dir / shard, "rb") as fh:
            for row in rows.sort_values("tar_offset").itertuples(index=False):
                sizes = {m: int(getattr(row, m)) for m in members}
                placed.append(sink.write(_read_blocks(fh, row, shards_dir / shard), sizes))
                if bar is not None:
                    bar.update(1)
    ordered = part.sort_values(["shard", "tar_offset"], kind="stable")
    return ordered.assign(shard=[p.shard for p in placed],
                          shard_index=[p.index for p in placed],
                          tar_offset=[p.offset for p in placed],
                          tar_bytes=[p.length for p in placed])


def params_hash(params_path: Path | None) -> str:
    """sha256 of the params file's bytes, or "" when there is none."""
    if params_path is None or not Path(params_path).is_file():
        return ""
    return hashlib.sha256(Path(params_path).read_bytes()).hexdigest()


def tool_version() -> str:
    try:
        return importlib.metadata.version("inbetweener")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def hub_license(text: str) -> str:
    """A licence as the Hugging Face card's ``license`` field names it ("CC BY-SA 3.0" ->
    "cc-by-sa-3.0", "MIT" -> "mit"); "other" for what has no identifier there (public
    domain), "unknown" when the source gave none."""
    if not licence_known(text):
        return UNKNOWN_LICENSE
    name = " ".join(str(text).lower().replace("-", " ").split())
    if name in ("public domain", "pd"):
        return "other"
    return name.replace(" ", "-")


def front_matter(manifest: pd.DataFrame, shards: pd.DataFrame) -> list[str]:
    """The card's YAML header, as the Hugging Face hub and ``datasets`` read it: licences,
    task, size, and one ``configs`` entry whose ``data_files`` name each split's tars,
    so ``datasets.load_dataset(DIR)`` loads the export as WebDataset splits."""
    splits = [s for s in SPLITS if (shards["split"] == s).any()]
    n = len(manifest)
    size = next(label for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"),
                                           (100_000, "10K<n<100K"), (float("inf"), "n>100K")) if n < bound)
    header = {
        "license": sorted({hub_license(x) for x in manifest["license"]}),
        "task_categories": ["image-to-image"],
        "tags": ["video-frame-interpolation", "animation", "webdataset"],
        "pretty_name": "inbetweener dataset export",
        "size_categories": [size],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"{s}/*.tar"} for s in splits]}],
    }
    return ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", ""]


def dataset_card(manifest: pd.DataFrame, shards: pd.DataFrame, where: str, splits: list[str],
                 shards_dir: Path, params_sha: str) -> str:
    """README.md of an export: what was selected, from where, under which licenses (with
    a front matter for the Hugging Face hub and ``datasets``)."""
    lines = [*front_matter(manifest, shards), "# inbetweener dataset export", "",
             f"Selected from `{shards_dir.as_posix()}` (splits: {', '.join(splits)}) with:", "",
             "```", where or "(all samples)", "```", "",
             "| split | samples | shards | bytes |", "|---|---:|---:|---:|"]
    for split in SPLITS:
        part = shards[shards["split"] == split]
        lines.append(f"| {split} | {int(part['samples'].sum())} | {len(part)} | "
                     f"{int(part['bytes'].sum())} |")
    lines += ["", "## Sources", "", "| source | license | attribution | samples |",
              "|---|---|---|---:|"]
    per_source = manifest.groupby(["source", "license", "attribution"], sort=True).size()
    for (source, lic, attribution), n in per_source.items():
        lines.append(f"| {source} | {lic} | {attribution or '-'} | {n} |")
    lines += licence_section(manifest)
    lines += ["", "## Provenance", "",
              f"- params.yaml sha256: {params_sha or 'not given'}",
              f"- inbetweener version: {tool_version()}",
              f"- frame format: {', '.join(sorted(manifest['format'].unique()))}",
              "- layout: `{split}/{split}-NNNNNN.tar` (WebDataset), `manifest.parquet`, "
              "`shards.parquet`, `{split}.json` (wids index)",
              "- check it with `inbetweener verify DIR`", "", "## Loading", "",
              "```python", "import datasets  # Hugging Face: each split's tars, by the front matter above",
              "test = datasets.load_dataset(DIR, split='test')  # f0.png, f1.png, f2.png (PIL), json",
              "import wids  # random access by the {split}.json index", "ds = wids.ShardListDataset(f'{DIR}/test.json')",
              "import webdataset as wds  # streaming", "it = wds.WebDataset(sorted(glob(f'{DIR}/test/*.tar'))).decode('rgb')",
              "```", ""]
    return "\n".join(lines)


def _works(part: pd.DataFrame) -> list[str]:
    """The works of some manifest rows: each source's attribution, or its name."""
    return sorted({a or s for s, a in zip(part["source"], part["attribution"])})


def licence_section(manifest: pd.DataFrame) -> list[str]:
    """Card lines: each licence with the works under it, then what the licences ask of
    whoever redistributes the export or a model trained on it (no known licence: do not
    redistribute; CC BY: credit; CC BY-SA: credit and share alike)."""
    lines = ["", "## Licences", "", "| license | works (attribution) | samples |", "|---|---|---:|"]
    for lic, part in manifest.groupby("license", sort=True):
        lines.append(f"| {lic} | {'; '.join(_works(part))} | {len(part)} |")
    lines += unknown_licence_notice(manifest)
    licences = [str(x).upper() for x in manifest["license"].unique()]
    if any(x.startswith("CC BY") for x in licences):
        lines += ["", "**Attribution.** The CC BY and CC BY-SA works above must be credited, "
                  "with the attribution given and a link to the licence, wherever this data or "
                  "a model trained on it is redistributed."]
    share_alike = sorted(str(x) for x in manifest["license"].unique() if "BY-SA" in str(x).upper())
    if share_alike:
        lines += ["", f"**Share-alike ({', '.join(share_alike)}).** Samples under these licences "
                  "are adaptations of those works: a dataset or model redistributed with them must "
                  "be offered under the same licence (or a compatible later version). To avoid "
                  f"that, export without them: `--where \"license not in {share_alike}\"`."]
    return lines


def unknown_licence_notice(manifest: pd.DataFrame) -> list[str]:
    """The card's bold warning when some samples have no known licence (a source
    without ``license`` in params.yaml: ``pipeline.sources.licences``), naming those works."""
    unknown = manifest[~manifest["license"].map(licence_known)]
    if unknown.empty:
        return []
    sources = sorted(unknown["source"].unique())
    return ["", (f"**No known licence: do not redistribute.** {'; '.join(_works(unknown))} "
                 f"({len(unknown)} sample(s), source(s) {', '.join(sources)}) have no licence "
                 "recorded. Until one is set (`license:` on the source's entry in params.yaml, "
                 "then `dvc repro`), this export, and any model trained on it, must not be "
                 "redistributed with them. To leave them out: "
                 f"`--where \"license != '{UNKNOWN_LICENSE}'\"`.")]


def _swap_in(temp: Path, out: Path) -> None:
    """Put the finished export in place; an existing ``out`` is moved aside, then removed."""
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    if out.exists():
        os.replace(out, old)
    os.replace(temp, out)
    shutil.rmtree(old, ignore_errors=True)


def run_export(manifest_dir: Path, where: str, splits: list[str] | tuple[str, ...], out: Path,
               maxcount: int = 1000, force: bool = False, params_path: Path | None = None,
               maxsize: int = DEFAULT_MAXSIZE, show_progress: bool = False) -> ExportResult:
    """Select, copy, write tables and card in a temporary sibling, then swap it in
    (``show_progress``: samples copied so far)."""
    manifest_dir, out, splits = Path(manifest_dir), Path(out), list(splits)
    chosen = _ordered(select(read_manifest(manifest_dir), where, splits))
    _check_out(out, manifest_dir, force)
    temp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        with progress(total=len(chosen), desc="export", unit="sample", enabled=show_progress) as bar:
            manifest, shards = copy_samples(chosen, manifest_dir, temp, maxcount, maxsize, bar)
        write_tables(temp, manifest, shards)
        card = dataset_card(manifest, shards, where, splits, manifest_dir, params_hash(params_path))
        (temp / CARD).write_text(card)
        _swap_in(temp, out)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return ExportResult(out, manifest, shards, time.perf_counter() - start)


def summary(result: ExportResult) -> str:
    per_split = result.shards.groupby("split")["samples"].sum()
    counts = ", ".join(f"{s} {int(per_split.get(s, 0))}" for s in SPLITS)
    rate = result.bytes / 1e6 / result.seconds if result.seconds > 0 else 0.0
    return (f"export: {len(result.manifest)} samples ({counts}) in {len(result.shards)} "
            f"shard(s), {result.bytes / 1e6:.1f} MB at {rate:.0f} MB/s -> {result.out}")
