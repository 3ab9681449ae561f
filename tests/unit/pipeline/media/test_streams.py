"""A file whose first video stream is not the main one: every stage reads the main one.

The case a user hit: an mkv whose first video stream is a 96x54, 1 fps thumbnail track
(an ordinary stream, not an attached picture) and whose second is the real clip. The
probe and detect_cuts counted and analysed the real stream while the shard stage read
the thumbnail, so it wrote 2 of 39 kept triplets ("decode failed" for the rest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import webdataset as wds
from av.video.reformatter import Interpolation
from support.videos import write_thumbnail_first

from pipeline.analysis import analyse as detect_cuts
from pipeline.core.config import (
    CutsParams,
    FilterParams,
    ShardParams,
    TripletParams,
    parse_params,
)
from pipeline.core.tables import FILTERED_TABLE
from pipeline.curation import curate as filter_stage
from pipeline.curation import extract as extract_triplets
from pipeline.dataset.manifest import SPLITS
from pipeline.dataset.shards import run_shard
from pipeline.media import probe
from pipeline.media.images import decode_image
from pipeline.media.video import (
    analysis_size,
    decord_refusal,
    open_reader,
    read_frames,
    stream_info,
)
from pipeline.sources import download
from pipeline.synth import SynthSpec, generate

BACKENDS = ["pyav", "decord"]
SHARD = ShardParams(short_side=128, maxcount=20, contact_sheet=0)


@pytest.fixture(scope="module")
def thumbnail_first(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stream 0: 96x54 at 1 fps; stream 1: a 384x216, 24 fps synthetic H.264 clip."""
    root = tmp_path_factory.mktemp("streams")
    spec = SynthSpec(clips=1, seconds=4.0, width=384, height=216, seed=3, static_prob=0.0,
                     repeat_prob=0.0)
    clip = generate(spec, root / "synth").videos[0]
    return write_thumbnail_first(clip, root / "thumbnail_first.mkv", size=(96, 54), fps=1)


def main_index(path: Path) -> int:
    with av.open(str(path)) as container:
        return probe.main_stream(container).index


def main_frames(path: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Independent decode of the main stream, area-scaled to ``size`` like the readers."""
    with av.open(str(path)) as container:
        stream = container.streams[main_index(path)]
        return [frame.reformat(width=size[0], height=size[1], format="rgb24",
                               interpolation=Interpolation.AREA).to_ndarray()
                for frame in container.decode(stream)]


def test_the_file_is_the_reported_case(thumbnail_first: Path):
    with av.open(str(thumbnail_first)) as container:
        video = container.streams.video
        assert [(s.codec_context.width, s.codec_context.height) for s in video] == \
            [(96, 54), (384, 216)]
        assert not any(s.disposition & av.stream.Disposition.attached_pic for s in video)
    info = probe.probe(thumbnail_first)
    assert main_index(thumbnail_first) == 1 and (info.width, info.frames) == (384, 96)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_reads_the_probes_main_stream(thumbnail_first: Path, backend: str):
    """Both backends: the reader's stream is probe.main_stream; decord is not trusted here."""
    info = stream_info(thumbnail_first)
    assert info.index == main_index(thumbnail_first) and (info.width, info.height) == (384, 216)
    assert "2 video streams" in decord_refusal(info, "h264", 96)
    with open_reader(thumbnail_first, 64, backend, codec="h264", frames=96) as reader:
        frames = list(reader)
    assert reader.info.index == info.index and reader.name == "pyav" and not reader.error
    want = main_frames(thumbnail_first, reader.size)
    assert len(frames) == len(want) == 96
    for frame, ref in zip(frames, want):
        np.testing.assert_array_equal(frame.rgb, ref, err_msg=f"frame {frame.index}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_kept_frames_come_from_the_main_stream(thumbnail_first: Path, backend: str):
    size = analysis_size(384, 216, SHARD.short_side)
    want = main_frames(thumbnail_first, size)
    got = {f.index: f.rgb for f in read_frames(thumbnail_first, [2, 40, 95], SHARD.short_side,
                                               frames=96, codec="h264", backend=backend)}
    assert sorted(got) == [2, 40, 95]
    for index, rgb in got.items():
        np.testing.assert_array_equal(rgb, want[index], err_msg=f"frame {index}")


@dataclass(frozen=True)
class Stages:
    raw: Path
    triplets: Path
    kept: pd.DataFrame


def run_analysis(mkv: Path, root: Path, backend: str) -> Stages:
    """download -> detect_cuts -> extract_triplets -> filter, as the stages run them."""
    params = parse_params({"sources": [{"name": "thumbs", "kind": "path", "path": str(mkv),
                                        "license": "CC0-1.0"}]})
    got = download.run_download(params, root / "raw", root=root)
    download.write_outputs(got, root / "raw")
    assert [r.status for r in got.rows] == ["ok"] and got.rows[0].frames == 96
    cuts = detect_cuts.run_detect_cuts(CutsParams(reader=backend), root / "raw", root / "analysis")
    assert cuts.decoded["frames"].tolist() == [96] and cuts.decoded["status"].tolist() == ["ok"]
    extracted = extract_triplets.run_extract(root / "analysis", TripletParams())
    extract_triplets.write_outputs(extracted, root / "triplets")
    filtered = filter_stage.run_filter(root / "analysis", root / "triplets", FilterParams())
    filtered.filtered.to_parquet(root / "triplets" / FILTERED_TABLE)
    return Stages(root / "raw", root / "triplets", filtered.filtered[filtered.filtered["keep"]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kept_triplet_is_sharded_from_the_main_stream(thumbnail_first: Path, tmp_path: Path,
                                                            backend: str):
    stages = run_analysis(thumbnail_first, tmp_path, backend)
    assert len(stages.kept) >= 10
    result = run_shard(SHARD, stages.raw, stages.triplets, tmp_path / "shards", backend=backend)
    assert not result.skipped and len(result.manifest) == len(stages.kept)
    size = analysis_size(384, 216, SHARD.short_side)
    want = main_frames(thumbnail_first, size)
    urls = sorted(str(p) for p in (tmp_path / "shards").rglob("*.tar"))
    samples = list(wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples()))
    assert len(samples) == len(stages.kept) and {json.loads(s["json"])["split"]
                                                 for s in samples} <= set(SPLITS)
    for s in samples:
        meta = json.loads(s["json"])
        assert (meta["width"], meta["height"]) == size
        for k, index in enumerate(meta["frames"]):
            np.testing.assert_array_equal(decode_image(s[f"f{k}.png"]), want[index],
                                          err_msg=f"{s['__key__']} f{k}")
