"""shard stage: round trip against the source videos, determinism, interruption, bad input."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import webdataset as wds
from av.video.reformatter import Interpolation
from PIL import Image
from support.engines import CountingEngine
from support.shard_inputs import ShardInputs, build_shard_inputs
from support.videos import write_video
from support.workspace import tree

import pipeline.dataset.shards as shard_mod
import pipeline.stages.shard as shard_stage
from pipeline.core.config import ShardParams
from pipeline.curation.triplets import REASONS
from pipeline.dataset.manifest import (
    SPLITS,
    TAR_SETTINGS,
    ShardSink,
    iter_tar_samples,
    read_wids_index,
    sample_blocks,
    sha256_file,
)
from pipeline.dataset.report import REMOVED_SHEET, wanted_frames
from pipeline.dataset.shards import (
    load_kept,
    load_sources,
    run_shard,
    sample_key,
    write_samples,
)
from pipeline.dataset.verify import verify
from pipeline.engine.parts import default_parts_dir
from pipeline.media.video import DecordReader, FrameRead, read_frames

PARAMS = ShardParams(short_side=64, maxcount=10, contact_sheet=4, seed=0)
SIZE = (86, 64)  # 128x96 clips at short side 64


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ShardInputs:
    return build_shard_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def shards(inputs: ShardInputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference run: out/, out/metrics.json, out/report/ under one folder."""
    root = tmp_path_factory.mktemp("ref")
    run_shard(PARAMS, inputs.raw_dir, inputs.triplets_dir, root / "shards",
              root / "metrics.json", root / "report")
    return root


def read_back(shards_dir: Path, split: str) -> list[dict]:
    """Raw samples of one split, in shard order, via webdataset itself."""
    urls = sorted(str(p) for p in (shards_dir / split).glob("*.tar"))
    return list(wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples()))


def reference_frames(video: Path, indices: set[int], size: tuple[int, int]) -> dict[int, np.ndarray]:
    """Independent decode: every frame with PyAV, area-resized, the wanted ones kept."""
    out = {}
    with av.open(str(video)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in indices:
                out[number] = frame.reformat(width=size[0], height=size[1], format="rgb24",
                                             interpolation=Interpolation.AREA).to_ndarray()
    return out


def test_only_kept_triplets_are_sharded(inputs: ShardInputs, shards: Path):
    kept = inputs.kept
    for split in SPLITS:
        got = [s["__key__"] for s in read_back(shards / "shards", split)]
        want = kept[kept["split"] == split].sort_values(["source", "f0"])
        assert got == [sample_key(*k) for k in zip(want["source"], want["scene"], want["f0"])]
    dropped = inputs.triplets[~inputs.triplets["keep"]]
    manifest = pd.read_parquet(shards / "shards" / "manifest.parquet")
    assert not set(sample_key(*k) for k in zip(dropped["source"], dropped["scene"], dropped["f0"])) \
        & set(manifest["key"])
    assert len(manifest) == len(kept)


def test_frames_equal_the_source_frames(inputs: ShardInputs, shards: Path):
    samples = [s for split in SPLITS for s in read_back(shards / "shards", split)]
    by_source: dict[str, list[dict]] = {}
    for s in samples:
        by_source.setdefault(json.loads(s["json"])["source"], []).append(s)
    for source, items in by_source.items():
        needed = {f for s in items for f in json.loads(s["json"])["frames"]}
        ref = reference_frames(inputs.raw_dir / f"{source}.mp4", needed, SIZE)
        for s in items:
            meta = json.loads(s["json"])
            for k, index in enumerate(meta["frames"]):
                got = np.asarray(Image.open(io.BytesIO(s[f"f{k}.png"])).convert("RGB"))
                assert got.shape == (SIZE[1], SIZE[0], 3)
                np.testing.assert_array_equal(got, ref[index], err_msg=f"{s['__key__']} f{k}")


def test_json_carries_the_triplet(inputs: ShardInputs, shards: Path):
    kept = inputs.kept.assign(key=lambda d: [sample_key(*k) for k in zip(d.source, d.scene, d.f0)])
    rows = kept.set_index("key")
    for split in SPLITS:
        for s in read_back(shards / "shards", split):
            meta, row = json.loads(s["json"]), rows.loc[s["__key__"]]
            assert meta["key"] == s["__key__"] and meta["split"] == split == row["split"]
            assert meta["frames"] == [row.f0, row.f1, row.f2]
            assert meta["t"] == row["t"] and meta["pts"] == [row.pts0, row.pts1, row.pts2]
            assert meta["phash"][0] == f"{int(row.phash0):016x}"
            assert meta["license"] == "CC0-1.0" and meta["attribution"] == "inbetweener tests"
            assert meta["motion"] == row["motion"] and meta["holds"] == [row.hold0, row.hold1, row.hold2]
            assert (meta["width"], meta["height"], meta["format"]) == (*SIZE, "png")


def test_samples_carry_their_origin_uri_and_checksum(inputs: ShardInputs, shards: Path):
    """Each sample's json, and its manifest row, name the source video's origin (the
    sources.parquet ``uri``) and its file's sha256: a sample alone says where it is from."""
    sources = pd.read_parquet(inputs.raw_dir / "sources.parquet").set_index("name")
    manifest = pd.read_parquet(shards / "shards" / "manifest.parquet").set_index("key")
    seen = set()
    for split in SPLITS:
        for s in read_back(shards / "shards", split):
            meta = json.loads(s["json"])
            row = sources.loc[meta["source"]]
            assert (meta["uri"], meta["sha256"]) == (row["uri"], row["sha256"])
            assert (manifest.loc[s["__key__"], "uri"], manifest.loc[s["__key__"], "sha256"]) \
                == (row["uri"], row["sha256"])
            assert len(meta["sha256"]) == 64 and meta["uri"]
            seen.add(meta["source"])
    assert len(seen) == len(inputs.kept["source"].unique()) > 1


def test_sample_blocks_are_what_tarwriter_writes():
    """The packer's blocks for a sample equal webdataset's TarWriter output, byte for byte
    (members of odd sizes, an empty one, a ``_`` member left out)."""
    sample = {"__key__": "src_0001_000002", "f0.png": b"x" * 513, "f1.png": b"",
              "f2.png": bytes(range(256)) * 9, "json": b'{"k":1}', "_meta": b"dropped"}
    buf = io.BytesIO()
    writer = wds.TarWriter(buf, encoder=False, **TAR_SETTINGS)
    writer.write(sample)
    writer.close()
    blocks, sizes = sample_blocks(sample)
    assert buf.getvalue()[: len(blocks)] == blocks and not buf.getvalue()[len(blocks):].strip(b"\0")
    assert sizes == {"f0.png": 513, "f1.png": 0, "f2.png": 2304, "json": 7}


def test_tars_are_what_webdataset_writes(shards: Path, tmp_path: Path):
    """Every shard equals what webdataset's ShardWriter writes for the same samples."""
    root = shards / "shards"
    for split in SPLITS:
        sink = ShardSink(tmp_path, split, PARAMS.maxcount, PARAMS.maxsize)
        for tar in sorted((root / split).glob("*.tar")):
            for key, members in iter_tar_samples(tar):
                sink.write({"__key__": key, **members})
        sink.close()
        for tar in sorted((root / split).glob("*.tar")):
            assert tar.read_bytes() == (tmp_path / split / tar.name).read_bytes(), tar.name


def test_maxcount_splits_shards(shards: Path):
    table = pd.read_parquet(shards / "shards" / "shards.parquet")
    manifest = pd.read_parquet(shards / "shards" / "manifest.parquet")
    for split in SPLITS:
        n = int((manifest["split"] == split).sum())
        part = table[table["split"] == split]
        assert len(part) == math.ceil(n / PARAMS.maxcount)
        assert part["samples"].max() <= PARAMS.maxcount and part["samples"].sum() == n


def test_manifest_and_indexes_match_the_tars(shards: Path):
    root = shards / "shards"
    table = pd.read_parquet(root / "shards.parquet")
    manifest = pd.read_parquet(root / "manifest.parquet")
    for row in table.itertuples():
        path = root / row.shard
        assert sha256_file(path) == row.sha256 and path.stat().st_size == row.bytes
        in_tar = [s["__key__"] for s in wds.DataPipeline(wds.SimpleShardList([str(path)]),
                                                          wds.tarfile_to_samples())]
        rows = manifest[manifest["shard"] == row.shard].sort_values("shard_index")
        assert in_tar == list(rows["key"]) and list(rows["shard_index"]) == list(range(len(rows)))
    for split in SPLITS:
        index = read_wids_index(root / f"{split}.json")
        part = table[table["split"] == split]
        assert [s["url"] for s in index["shardlist"]] == list(part["shard"])
        assert [s["nsamples"] for s in index["shardlist"]] == list(part["samples"])
    assert verify(root).ok


def test_metrics_and_report(shards: Path):
    metrics = json.loads((shards / "metrics.json").read_text())
    manifest = pd.read_parquet(shards / "shards" / "manifest.parquet")
    assert metrics["total"]["samples"] == len(manifest)
    for split in SPLITS:
        assert metrics[split]["samples"] == int((manifest["split"] == split).sum())
    report = shards / "report"
    t = pd.read_csv(report / "t.csv")
    assert t[list(SPLITS)].to_numpy().sum() == len(manifest)
    assert t.loc[t["t"] == 0.5, "train"].item() == int(((manifest.t == 0.5) & (manifest.split == "train")).sum())
    assert pd.read_csv(report / "motion.csv")[list(SPLITS)].to_numpy().sum() == len(manifest)
    scenes = manifest.groupby(["source", "scene"]).ngroups
    assert pd.read_csv(report / "drawings_per_scene.csv")[list(SPLITS)].to_numpy().sum() == scenes
    sheet = Image.open(report / "contact_sheet.png")
    assert sheet.height > 4 * 128 and sheet.width > 3 * 128
    for name in ("t", "motion", "drawings_per_scene"):
        assert Image.open(report / f"{name}.png").size == (640, 360)


def test_rerun_is_byte_identical(inputs: ShardInputs, shards: Path, tmp_path: Path):
    """A second run (inline encoding this time) writes the very same bytes."""
    run_shard(PARAMS, inputs.raw_dir, inputs.triplets_dir, tmp_path / "shards",
              tmp_path / "metrics.json", tmp_path / "report", workers=0)
    assert tree(tmp_path) == tree(shards)


def test_interrupted_run_then_rerun(inputs: ShardInputs, shards: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch):
    """Killed while packing: whole tars only, no tables; the re-run packs from the
    parts already written (no source is decoded again) and matches an uninterrupted run."""
    real = shard_mod._pack
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    out = tmp_path / "shards"
    with monkeypatch.context() as m:
        m.setattr(shard_mod, "_pack", dying)
        with pytest.raises(KeyboardInterrupt):
            run_shard(PARAMS, inputs.raw_dir, inputs.triplets_dir, out)
    assert not list(out.rglob(".*")) and not (out / "manifest.parquet").exists()
    sources = sorted(inputs.kept["source"].unique())
    parts = sorted(p.name for p in default_parts_dir(out).iterdir())
    assert [p.rsplit("-", 3)[0] for p in parts] == sources  # every source's part written
    (out / "train").mkdir(exist_ok=True)
    (out / "train/train-000042.tar").write_bytes(b"stale")  # a previous run's leftovers
    (out / "val").mkdir(exist_ok=True)
    (out / "val/.val-000000.tar.999.tmp").write_bytes(b"partial")
    engine = CountingEngine()
    run_shard(PARAMS, inputs.raw_dir, inputs.triplets_dir, out, engine=engine)
    assert engine.ran == []  # resumed: nothing decoded or encoded again
    assert tree(out) == tree(shards / "shards")


@pytest.mark.parametrize("fmt", ["webp", "jpg"])
def test_other_formats(inputs: ShardInputs, shards: Path, tmp_path: Path, fmt: str):
    params = PARAMS.model_copy(update={"format": fmt, "contact_sheet": 0})
    result = run_shard(params, inputs.raw_dir, inputs.triplets_dir, tmp_path)
    ref = {s["__key__"]: s for s in read_back(shards / "shards", "val")}
    for s in read_back(tmp_path, "val"):
        got = np.asarray(Image.open(io.BytesIO(s[f"f1.{fmt}"])).convert("RGB")).astype(int)
        want = np.asarray(Image.open(io.BytesIO(ref[s["__key__"]]["f1.png"])).convert("RGB"))
        if fmt == "webp":  # lossless
            np.testing.assert_array_equal(got, want)
        else:
            assert np.abs(got - want).mean() < 3
    assert set(result.manifest["format"]) == {fmt} and verify(tmp_path).ok


def test_decord_backend_reads_the_same_frames(inputs: ShardInputs, shards: Path, tmp_path: Path):
    """decord scales with its own (bicubic) filter: same samples, nearly the same pixels."""
    run_shard(PARAMS, inputs.raw_dir, inputs.triplets_dir, tmp_path, backend="decord")
    ref = {s["__key__"]: s for s in read_back(shards / "shards", "test")}
    got = read_back(tmp_path, "test")
    assert [s["__key__"] for s in got] == list(ref)
    for s in got:
        a = np.asarray(Image.open(io.BytesIO(s["f0.png"]))).astype(int)
        b = np.asarray(Image.open(io.BytesIO(ref[s["__key__"]]["f0.png"])))
        assert np.abs(a - b).mean() < 4


def test_bad_sources_are_skipped(inputs: ShardInputs, tmp_path: Path):
    """A missing file and a truncated file lose their triplets; the others are written."""
    raw = tmp_path / "raw"
    shutil.copytree(inputs.raw_dir, raw)
    (raw / "synthetic-01.mp4").unlink()
    data = (raw / "synthetic-02.mp4").read_bytes()
    (raw / "synthetic-02.mp4").write_bytes(data[: len(data) // 2])
    result = run_shard(PARAMS, raw, inputs.triplets_dir, tmp_path / "shards")
    kept = inputs.kept
    assert set(result.manifest["source"]) == {"synthetic-00"}
    assert result.skipped["video file missing"] == int((kept.source == "synthetic-01").sum())
    assert result.skipped["decode failed"] == int((kept.source == "synthetic-02").sum())
    assert result.metrics["skipped"]["decode failed"] == result.skipped["decode failed"]
    assert verify(tmp_path / "shards").ok


def test_missing_columns_stop_the_stage(inputs: ShardInputs, tmp_path: Path):
    table = pd.read_parquet(inputs.triplets_dir / "filtered.parquet").drop(columns=["t"])
    (tmp_path / "triplets").mkdir()
    table.to_parquet(tmp_path / "triplets" / "filtered.parquet")
    with pytest.raises(shard_mod.ShardError, match=r"missing columns \['t'\]"):
        run_shard(PARAMS, inputs.raw_dir, tmp_path / "triplets", tmp_path / "shards")


def test_nothing_kept_writes_empty_tables(inputs: ShardInputs, tmp_path: Path):
    table = pd.read_parquet(inputs.triplets_dir / "filtered.parquet").assign(keep=False)
    (tmp_path / "triplets").mkdir()
    table.to_parquet(tmp_path / "triplets" / "filtered.parquet")
    result = run_shard(PARAMS, inputs.raw_dir, tmp_path / "triplets", tmp_path / "shards",
                       tmp_path / "metrics.json", tmp_path / "report")
    assert result.metrics["total"] == {"samples": 0, "shards": 0, "bytes": 0}
    assert len(pd.read_parquet(tmp_path / "shards" / "manifest.parquet")) == 0
    assert (tmp_path / "report" / "contact_sheet.png").is_file() and verify(tmp_path / "shards").ok


def test_main_prints_a_summary(inputs: ShardInputs, tmp_path: Path, capsys: pytest.CaptureFixture):
    params = tmp_path / "params.yaml"
    params.write_text("sources: [{name: synthetic, kind: synthetic}]\n"
                      "shard: {short_side: 64, maxcount: 50, contact_sheet: 2}\n")
    code = shard_stage.main(["--params", str(params), "--raw", str(inputs.raw_dir),
                           "--triplets", str(inputs.triplets_dir), "--out", str(tmp_path / "s"),
                           "--metrics", str(tmp_path / "m.json"), "--report", str(tmp_path / "r")])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0 and line.startswith(f"shard: {len(inputs.kept)} samples (train ")
    assert "samples/s" in line and "MB" in line


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_reads_never_go_past_the_demux_count(inputs: ShardInputs, backend: str):
    """decord hangs past the real end: indices at or beyond ``frames`` are never asked."""
    video = inputs.raw_dir / "synthetic-00.mp4"
    read = FrameRead(video)
    got = [f.index for f in read_frames(video, [3, 9, 10, 11, 500], PARAMS.short_side, frames=10,
                                        codec="h264", backend=backend, result=read)]
    assert got == [3, 9] and read.backend == backend and not read.error
    assert read.delivered == 2 and read.size == SIZE


def test_decord_falls_back_to_pyav(inputs: ShardInputs, tmp_path: Path):
    """An index shorter than the demux count (or a codec decord lacks) means PyAV."""
    video = inputs.raw_dir / "synthetic-00.mp4"
    read = FrameRead(video)
    real = len(inputs.truth[inputs.truth["clip"] == "synthetic-00"])
    got = [f.index for f in read_frames(video, [0, 5, real - 1], PARAMS.short_side, frames=real + 5,
                                        codec="h264", backend="decord", result=read)]
    assert got == [0, 5, real - 1] and read.backend == "pyav"
    webm = write_video(tmp_path / "clip.webm", frames=12, size=(96, 64), codec="libvpx")
    read = FrameRead(webm)
    got = [f.index for f in read_frames(webm, [1, 11], 64, frames=12, codec="vp8",
                                        backend="decord", result=read)]
    assert got == [1, 11] and read.backend == "pyav" and read.size == (96, 64)


def test_decord_failing_midway_hands_the_rest_to_pyav(inputs: ShardInputs,
                                                     monkeypatch: pytest.MonkeyPatch):
    """A decode error after some batches: PyAV reads the indices decord had not delivered."""
    video = inputs.raw_dir / "synthetic-00.mp4"
    wanted = list(range(0, 60, 2))
    real_batch = DecordReader._batch

    def failing(self, indices):
        if indices[0] >= 32:
            raise RuntimeError("injected decode error")
        return real_batch(self, indices)

    monkeypatch.setattr(DecordReader, "_batch", failing)
    read = FrameRead(video)
    got = [f.index for f in read_frames(video, wanted, PARAMS.short_side, frames=60, codec="h264",
                                        backend="decord", result=read)]
    assert got == wanted and read.backend == "pyav" and not read.error
    assert read.delivered == len(wanted)


def test_removed_triplets_frames_come_from_the_same_pass(inputs: ShardInputs, tmp_path: Path):
    """The report's removed-triplet frames are decoded in the shard pass (also for a
    source with nothing kept) and equal the source frames; the sheet is written."""
    filtered = inputs.triplets
    wanted = wanted_frames(filtered, per_reason=2, seed=0)
    assert wanted, "the inputs have removed triplets"
    kept = load_kept(inputs.triplets_dir)
    captured: dict[str, dict[int, np.ndarray]] = {}
    write_samples(kept.iloc[:0], load_sources(inputs.raw_dir), PARAMS, tmp_path / "out",
                  workers=0, extra=wanted, captured=captured)
    assert {s: sorted(f) for s, f in captured.items()} == wanted
    for source, frames in captured.items():
        ref = reference_frames(inputs.raw_dir / f"{source}.mp4", set(frames), SIZE)
        for index, rgb in frames.items():
            np.testing.assert_array_equal(rgb, ref[index], err_msg=f"{source} {index}")


def test_report_has_the_removed_sheet(shards: Path):
    sheet = Image.open(shards / "report" / REMOVED_SHEET)
    assert sheet.width > 3 * 32 and sheet.height > len(REASONS) * 16
