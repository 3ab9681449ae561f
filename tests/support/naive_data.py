"""Two small synthetic clips through the data stages (download's output, detect_cuts,
extract_triplets, filter, shard), and the naive set built from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.analysis import analyse as detect_cuts
from pipeline.core.atomic import write_parquet
from pipeline.core.config import CutsParams, FilterParams, ShardParams, TripletParams
from pipeline.core.tables import FILTERED_TABLE
from pipeline.curation import curate as filter_stage
from pipeline.curation import extract as extract_triplets
from pipeline.dataset.shards import run_shard
from support.shard_inputs import synthetic_raw
from vfi.training.naive import NaiveSet, naive_triplets

SIZE = 64
FILTER = FilterParams()


@dataclass(frozen=True)
class Data:
    root: Path
    truth: pd.DataFrame   # the generator's, one row per frame (clip = source)
    frames: pd.DataFrame  # frames.parquet: the scene of every decoded frame
    filtered: pd.DataFrame
    naive: NaiveSet

    def dirs(self, root: Path | None = None) -> tuple[Path, Path, Path]:
        root = root or self.root
        return root / "raw", root / "analysis", root / "triplets"


def build_naive_data(root: Path) -> Data:
    """The data stages on two synthetic clips into ``root``, and the naive set built from them."""
    truth = synthetic_raw(root / "raw", clips=2)
    cuts = detect_cuts.run_detect_cuts(CutsParams(), root / "raw", root / "analysis")
    extracted = extract_triplets.run_extract(root / "analysis", TripletParams())
    extract_triplets.write_outputs(extracted, root / "triplets")
    filtered = filter_stage.run_filter(root / "analysis", root / "triplets", FILTER).filtered
    write_parquet(filtered, root / "triplets" / FILTERED_TABLE)
    run_shard(ShardParams(short_side=SIZE, maxcount=8), root / "raw", root / "triplets", root / "shards")
    naive = naive_triplets(root / "raw", root / "analysis", root / "triplets", SIZE,
                           filter_params=FILTER)
    return Data(root, truth, cuts.frames, filtered, naive)
