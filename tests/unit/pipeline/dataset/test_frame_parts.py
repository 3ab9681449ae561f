"""shard's frame cache (issue 21, item 8): adding a source encodes only that source, and
the re-packed outputs are byte for byte those of a run from scratch."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support.engines import CountingEngine
from support.shard_inputs import ShardInputs, build_shard_inputs
from support.workspace import tree

import pipeline.dataset.shards as shard_mod
from pipeline.core.atomic import write_parquet
from pipeline.core.config import ShardParams
from pipeline.core.tables import FILTERED_TABLE, SOURCES_TABLE
from pipeline.dataset.frame_parts import FramePart
from pipeline.dataset.shards import load_kept, load_sources, run_shard, source_jobs
from pipeline.engine.parts import PartStore, default_parts_dir
from pipeline.media.images import Encoder

PARAMS = ShardParams(short_side=64, maxcount=10, contact_sheet=4, seed=0)
NEW = "synthetic-01"  # the source added: in the middle, so every later sample moves


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ShardInputs:
    return build_shard_inputs(tmp_path_factory.mktemp("inputs"))


def workspace(inputs: ShardInputs, root: Path, sources: pd.DataFrame, filtered: pd.DataFrame
              ) -> tuple[Path, Path]:
    """A raw folder holding every video but only ``sources``' rows, and ``filtered``."""
    raw, trip = root / "raw", root / "triplets"
    if not raw.exists():
        shutil.copytree(inputs.raw_dir, raw)
    write_parquet(sources, raw / SOURCES_TABLE)
    write_parquet(filtered, trip / FILTERED_TABLE)
    return raw, trip


def run(raw: Path, trip: Path, root: Path, params: ShardParams = PARAMS, report: bool = True,
        engine: CountingEngine | None = None) -> shard_mod.ShardResult:
    return run_shard(params, raw, trip, root / "shards", root / "metrics.json",
                     root / "report" if report else None, engine=engine)


def outputs(root: Path) -> dict[str, bytes]:
    """Everything the stage writes (tars, manifest, shards table, wids indexes, metrics,
    report), not the cache."""
    files = tree(root / "shards") | {"metrics.json": (root / "metrics.json").read_bytes()}
    if (root / "report").is_dir():
        files |= {f"report/{k}": v for k, v in tree(root / "report").items()}
    return files


def fresh(inputs: ShardInputs, root: Path, params: ShardParams = PARAMS, report: bool = True
          ) -> dict[str, bytes]:
    run(inputs.raw_dir, inputs.triplets_dir, root, params, report)
    return outputs(root)


def _tables(inputs: ShardInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(inputs.raw_dir / SOURCES_TABLE), inputs.triplets


def _part_dirs(root: Path) -> dict[str, int]:
    """Part folder name -> inode: a part rewritten would be a new folder."""
    return {p.name: p.stat().st_ino for p in default_parts_dir(root / "shards").iterdir()}


@pytest.mark.parametrize("report", [False, True], ids=["shards", "with-report"])
def test_adding_a_source_encodes_only_it(inputs: ShardInputs, tmp_path: Path, report: bool):
    """Run without one source, add it, re-run: only the new source is encoded (with the
    report, other sources may be decoded for the removed-triplet sheet, never encoded
    again), and every output equals a fresh full run's, byte for byte. The first run's
    scene groups are numbered otherwise (a new source renumbers them), so the samples'
    json must be rebuilt, not cached."""
    sources, filtered = _tables(inputs)
    work = tmp_path / "work"
    before = filtered[filtered["source"] != NEW].assign(group=lambda d: d["group"] + 100)
    run(*workspace(inputs, work, sources[sources["name"] != NEW], before), work, report=report)
    encoded = {k: v for k, v in _part_dirs(work).items() if "-frames-" in k}
    assert len(encoded) == len(sources) - 1
    engine = CountingEngine()
    result = run(*workspace(inputs, work, sources, filtered), work, report=report, engine=engine)
    if report:
        assert NEW in engine.ran
    else:
        assert engine.ran == [NEW] and result.ran == [NEW]
    after = _part_dirs(work)
    assert all(after.get(k) == inode for k, inode in encoded.items())  # untouched
    assert [k.rsplit("-", 3)[0] for k in after if "-frames-" in k and k not in encoded] == [NEW]
    assert outputs(work) == fresh(inputs, tmp_path / "fresh", report=report)


def _frame_parts(root: Path) -> set[str]:
    store = default_parts_dir(root / "shards")
    return {p.name for p in store.iterdir() if (p / "index.parquet").is_file()}


@pytest.mark.slow
def test_a_pixel_param_re_encodes_a_packing_param_does_not(inputs: ShardInputs, tmp_path: Path):
    """short_side and png_level make new parts (the old ones are pruned); maxcount only
    re-packs. Each run's outputs equal a fresh run with the same params."""
    work = tmp_path / "work"
    run(inputs.raw_dir, inputs.triplets_dir, work, report=False)
    sources, params = sorted(inputs.kept["source"].unique()), PARAMS
    for n, change in enumerate(({"short_side": 48}, {"png_level": 6}, {"maxcount": 3},
                                {"format": "webp"})):
        params = params.model_copy(update=change)  # one change at a time, cumulated
        before, engine = _frame_parts(work), CountingEngine()
        run(inputs.raw_dir, inputs.triplets_dir, work, params, report=False, engine=engine)
        packing_only = "maxcount" in change
        assert engine.ran == ([] if packing_only else sources), change
        after = _frame_parts(work)
        assert (after == before) if packing_only else not (after & before)
        assert len(after) == len(sources)  # stale parts pruned
        assert outputs(work) == fresh(inputs, tmp_path / f"fresh{n}", params, report=False)


class CountingEncoder:
    """An encoder that counts its calls (in-process runs only)."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder, self.calls = encoder, 0

    def __call__(self, rgb):
        self.calls += 1
        return self.encoder(rgb)


def test_more_kept_frames_encode_only_the_missing_ones(inputs: ShardInputs, tmp_path: Path):
    """A source whose kept set grows (a filter param changed): its part is the base of
    the new one, and only the frames it lacks are decoded and encoded."""
    sources, filtered = _tables(inputs)
    work = tmp_path / "work"
    src = "synthetic-00"
    mine = filtered.index[(filtered["source"] == src) & filtered["keep"]]
    fewer = filtered.copy()
    fewer.loc[mine[::3], "keep"] = False
    run(*workspace(inputs, work, sources, fewer), work, report=False)
    raw, trip = workspace(inputs, work, sources, filtered)
    job = next(j for j in source_jobs(load_kept(trip), load_sources(raw)) if j.src.name == src)
    store = PartStore(default_parts_dir(work / "shards"))
    rows = pd.read_parquet(raw / SOURCES_TABLE).set_index("name", drop=False)
    encoder = Encoder(PARAMS.format, PARAMS.png_level, PARAMS.jpg_quality)
    part = shard_mod.plan_part(job, store, PARAMS, encoder, "auto", 0, rows.loc[src].to_dict())
    base = FramePart.open(Path(part.frames.base))
    missing = job.needed - base.frames
    assert part.frames.todo and missing and base.frames < job.needed
    counting = CountingEncoder(encoder)
    assert shard_mod.write_part(dataclasses.replace(part, encoder=counting)) == ""
    assert counting.calls == len(missing)
    engine = CountingEngine()  # the new part now exists: nothing left to do
    run(raw, trip, work, report=False, engine=engine)
    assert engine.ran == []
    assert outputs(work) == fresh(inputs, tmp_path / "fresh", report=False)


def test_a_failed_source_is_not_cached(inputs: ShardInputs, tmp_path: Path):
    """A truncated file's part records the decode error and is dropped after the merge,
    so the next run tries the source again (the file may have been fixed)."""
    sources, filtered = _tables(inputs)
    work = tmp_path / "work"
    raw, trip = workspace(inputs, work, sources, filtered)
    video = raw / "synthetic-02.mp4"
    good = video.read_bytes()
    video.write_bytes(good[: len(good) // 2])
    result = run(raw, trip, work, report=False)
    assert result.skipped["decode failed"] == int((inputs.kept["source"] == "synthetic-02").sum())
    assert not [k for k in _frame_parts(work) if k.startswith("synthetic-02-")]
    video.write_bytes(good)
    engine = CountingEngine()
    run(raw, trip, work, report=False, engine=engine)
    assert engine.ran == ["synthetic-02"]
    assert outputs(work) == fresh(inputs, tmp_path / "fresh", report=False)


def test_a_licence_edit_re_encodes_nothing_a_new_checksum_does(inputs: ShardInputs,
                                                                 tmp_path: Path):
    """Provenance is built into each sample's json at packing time: a corrected licence
    re-encodes nothing yet reaches every sample; a changed file (its sha256) re-encodes
    that source only."""
    sources, filtered = _tables(inputs)
    work = tmp_path / "work"
    run(*workspace(inputs, work, sources, filtered), work, report=False)
    edited = sources.assign(license=lambda d: d["license"].where(d["name"] != "synthetic-00",
                                                                  "CC BY 4.0"))
    engine = CountingEngine()
    result = run(*workspace(inputs, work, edited, filtered), work, report=False, engine=engine)
    assert engine.ran == []
    licences = result.manifest.groupby("source")["license"].first()
    assert licences["synthetic-00"] == "CC BY 4.0" and licences["synthetic-01"] == "CC0-1.0"
    edited.loc[edited["name"] == "synthetic-02", "sha256"] = "0" * 64
    run(*workspace(inputs, work, edited, filtered), work, report=False, engine=engine)
    assert engine.ran == ["synthetic-02"]
