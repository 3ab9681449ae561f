"""detect_cuts on the synthetic source: cuts against truth, hashes, pts, determinism."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline import download
from pipeline.config import CutsParams, parse_params
from pipeline.detect_cuts import (
    DECODED_TABLE,
    FRAME_COLUMNS,
    SCENE_COLUMNS,
    main,
    run_detect_cuts,
)
from pipeline.hashing import frame_hashes, hamming, reference_hashes
from pipeline.tables import FRAMES_TABLE, SCENES_TABLE, SOURCES_TABLE
from pipeline.video import open_reader

# Like the default source in params.yaml (320x240, 24 fps, dissolves and flashes), smaller.
SYNTH = {"kind": "synthetic", "name": "syn", "clips": 6, "seed": 0, "width": 320,
         "height": 240, "seconds": 10.0, "transition_prob": 0.1}
TOLERANCE = 1  # frames: a cut found one frame early or late still counts


@dataclass(frozen=True)
class SynthRun:
    raw: Path
    out: Path
    truth: pd.DataFrame
    frames: pd.DataFrame
    scenes: pd.DataFrame
    decoded: pd.DataFrame


def _synth_raw(root: Path) -> Path:
    raw = root / "raw"
    result = download.run_download(parse_params({"sources": [SYNTH]}), raw, root=root)
    download.write_outputs(result, raw)
    return raw


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthRun:
    root = tmp_path_factory.mktemp("cuts")
    raw = _synth_raw(root)
    out = root / "analysis"
    run_detect_cuts(CutsParams(), raw, out)
    return SynthRun(raw, out, pd.read_parquet(raw / download.TRUTH_TABLE),
                    pd.read_parquet(out / FRAMES_TABLE), pd.read_parquet(out / SCENES_TABLE),
                    pd.read_parquet(out / DECODED_TABLE))


def _match(truth: list[int], found: list[int]) -> int:
    """Truth cuts with a found cut within TOLERANCE (each found cut used once)."""
    free, hits = list(found), 0
    for cut in truth:
        near = [f for f in free if abs(f - cut) <= TOLERANCE]
        if near:
            free.remove(min(near, key=lambda f: abs(f - cut)))
            hits += 1
    return hits


def test_cut_recall_and_precision(synth: SynthRun):
    """Hard cuts found with the default params.

    A detection inside a dissolve is reported but not counted against precision:
    the truth calls a dissolve gradual, not a cut, yet splitting one is harmless here
    (triplets must not straddle it either; the filter stage finds transitions from
    the thumbnails). Raw precision, dissolves included, is printed too.
    """
    hits = truth_n = found_n = in_dissolve = 0
    for clip, truth in synth.truth.groupby("clip"):
        cuts = truth.loc[truth["is_cut_start"], "frame"].tolist()
        scenes = synth.scenes[synth.scenes["source"] == clip]
        found = scenes.loc[scenes["scene"] > 0, "first_frame"].tolist()
        dissolve = set(truth.loc[truth["transition"] == "dissolve", "frame"])
        stray = [f for f in found if all(abs(f - c) > TOLERANCE for c in cuts)]
        in_dissolve += sum(f in dissolve for f in stray)
        hits += _match(cuts, found)
        truth_n, found_n = truth_n + len(cuts), found_n + len(found)
    recall, precision = hits / truth_n, hits / (found_n - in_dissolve)
    print(f"\ncuts: truth {truth_n}, found {found_n}, matched {hits}, inside dissolves "
          f"{in_dissolve}; recall {recall:.3f}, precision {precision:.3f} "
          f"(raw, dissolves counted as false: {hits / found_n:.3f})")
    assert truth_n >= 15, "the synthetic set should have enough cuts to measure"
    assert recall >= 0.95 and precision >= 0.95


def test_one_row_per_true_frame_with_true_pts(synth: SynthRun):
    assert (synth.decoded["status"] == "ok").all(), synth.decoded["error"].tolist()
    assert (synth.decoded["reader"] == "pyav").all()
    counts = synth.frames.groupby("source").size()
    assert counts.to_dict() == synth.truth.groupby("clip").size().to_dict()
    assert synth.decoded.set_index("source")["frames"].to_dict() == counts.to_dict()
    merged = synth.frames.merge(synth.truth, left_on=["source", "frame"],
                                right_on=["clip", "frame"], suffixes=("", "_truth"))
    assert len(merged) == len(synth.frames)
    np.testing.assert_allclose(merged["pts"], merged["pts_truth"], atol=1e-9)


def test_schemas_and_row_order(synth: SynthRun, tmp_path: Path):
    frames, scenes = synth.frames, synth.scenes
    assert list(frames.columns) == list(FRAME_COLUMNS)
    assert list(scenes.columns) == list(SCENE_COLUMNS)
    assert frames["phash"].dtype == np.uint64 and frames["scene"].dtype == np.int32
    order = pd.read_parquet(synth.raw / SOURCES_TABLE)["name"].tolist()
    assert list(dict.fromkeys(frames["source"])) == order
    for _, part in frames.groupby("source", sort=False):
        assert part["frame"].tolist() == list(range(len(part)))
        assert part["pts"].is_monotonic_increasing
    assert {len(t) for t in frames["thumb"]} == {CutsParams().thumb_size ** 2}
    first = frames.groupby("source").head(1)
    assert (first["motion"] == 0).all() and (first["score"] == 0).all()
    assert frames["score"].notna().all() and (frames["luma_std"] >= 0).all()


def test_scenes_tile_each_source(synth: SynthRun):
    frames = synth.frames
    for source, part in synth.scenes.groupby("source", sort=False):
        rows = frames[frames["source"] == source]
        assert part["scene"].tolist() == list(range(len(part)))
        assert part["first_frame"].iloc[0] == 0 and part["last_frame"].iloc[-1] == len(rows) - 1
        first, last = part["first_frame"].to_numpy(), part["last_frame"].to_numpy()
        assert (first[1:] == last[:-1] + 1).all()
        assert (part["end_pts"].iloc[:-1].to_numpy() == part["start_pts"].iloc[1:].to_numpy()).all()
        assert part["end_pts"].iloc[-1] == pytest.approx(rows["pts"].iloc[-1] + 1 / 24)
        assert (part["frames"] == part["last_frame"] - part["first_frame"] + 1).all()
        assert (rows.groupby("scene").size().to_numpy() == part["frames"].to_numpy()).all()
        assert (part["duration"] > 0).all()


def test_hashes_equal_imagehash(synth: SynthRun):
    """Stored uint64 hashes are imagehash's, bit for bit (bit order: int(str(h), 16))."""
    source = synth.frames["source"].iloc[0]
    rows = synth.frames[synth.frames["source"] == source]
    path = synth.raw / f"{source}.mp4"
    with open_reader(path, CutsParams().analysis_size, "pyav") as reader:
        images = [Image.fromarray(f.rgb) for f in reader]
    phash = np.array([int(str(imagehash.phash(im)), 16) for im in images], dtype=np.uint64)
    dhash = np.array([int(str(imagehash.dhash(im)), 16) for im in images], dtype=np.uint64)
    assert (rows["phash"].to_numpy() == phash).all()
    assert (rows["dhash"].to_numpy() == dhash).all()


@pytest.mark.parametrize("short_side", [192, 96, 33, 7])
def test_fast_hashes_are_imagehash_bit_for_bit(synth: SynthRun, short_side: int):
    """frame_hashes re-implements imagehash's resize; it must agree on every frame.

    Real decoded frames at several analysis sizes (down- and upscaling inside the hash),
    plus flat frames (every DCT coefficient ~0: ties everywhere) and noise.
    """
    greys = []
    for path in sorted(synth.raw.glob("*.mp4"))[:2]:
        with open_reader(path, short_side, "pyav") as reader:
            greys += [np.asarray(Image.fromarray(f.rgb).convert("L")) for f in reader][::3]
    rng = np.random.default_rng(short_side)
    shape = greys[0].shape
    greys += [np.full(shape, v, np.uint8) for v in (0, 1, 128, 255)]
    greys += [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(8)]
    fast = [frame_hashes(g) for g in greys]
    reference = [reference_hashes(Image.fromarray(g)) for g in greys]
    assert fast == reference
    image = Image.fromarray(greys[0])  # the documented bit order: int(str(h), 16)
    assert reference[0][0] == int(str(imagehash.phash(image)), 16)
    assert reference[0][1] == int(str(imagehash.dhash(image)), 16)


def test_hamming():
    a = np.array([0, 0xFFFFFFFFFFFFFFFF, 0b1011], dtype=np.uint64)
    b = np.array([0, 0, 0b0001], dtype=np.uint64)
    assert hamming(a, b).tolist() == [0, 64, 2]
    assert int(hamming(np.uint64(1 << 63), np.uint64(0))) == 1


def test_deterministic(synth: SynthRun, tmp_path: Path):
    run_detect_cuts(CutsParams(), synth.raw, tmp_path)
    for table in (FRAMES_TABLE, SCENES_TABLE):
        assert (tmp_path / table).read_bytes() == (synth.out / table).read_bytes(), table


def _first_source_only(synth: SynthRun, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A raw dir holding just the first synthetic clip (for quicker end-to-end runs)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    sources = pd.read_parquet(synth.raw / SOURCES_TABLE).head(1)
    (raw / sources["path"].iloc[0]).symlink_to(synth.raw / sources["path"].iloc[0])
    sources.to_parquet(raw / SOURCES_TABLE)
    return raw, sources


@pytest.mark.parametrize("detector", ["adaptive", "hash", "histogram"])
def test_other_detectors_run(synth: SynthRun, tmp_path: Path, detector: str):
    """Every configured detector works end to end; scores come through for all."""
    raw, sources = _first_source_only(synth, tmp_path)
    result = run_detect_cuts(CutsParams(detector=detector), raw, tmp_path / "out")
    assert result.decoded["status"].tolist() == ["ok"]
    assert len(result.frames) == sources["frames"].iloc[0]
    assert result.frames["score"].iloc[1:].notna().all()
    assert len(result.scenes) >= 1


def test_main_prints_a_summary(synth: SynthRun, tmp_path: Path, capsys: pytest.CaptureFixture):
    raw, sources = _first_source_only(synth, tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text("sources:\n  - {name: syn, kind: synthetic}\ncuts:\n  min_scene_len: 4\n")
    assert main(["--params", str(params), "--raw", str(raw), "--out", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("detect_cuts: 1 source(s) (1 ok, 0 partial, 0 failed)")
    assert f"{sources['frames'].iloc[0]} frames" in line and "cuts" in line
