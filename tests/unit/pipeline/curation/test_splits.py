"""Per-source split pins (``sources[i].split``) against the synthetic truth.

Four synthetic sources go through the download stage (so the pin is carried by
``sources.parquet`` as in a run), analysis tables built from the truth's scenes (no
dependence on the cut detector), extract_triplets and the filter:

- ``free``    auto:  spread over train/val/test by the fractions, as without pins
- ``learn``   train: train and val only
- ``heldout`` test:  everything in test (a held-out work)
- ``twin``    train, but the same footage as ``heldout`` (same generator seed), so its
  scenes share near-duplicate groups with a test-pinned source and must go to test too

The fractions give test a large share (0.3) so that an ignored pin would show.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from support.analysis_tables import build_tables, write_analysis

from pipeline.core.config import (
    FilterParams,
    SplitFractions,
    TripletParams,
    parse_params,
)
from pipeline.core.tables import SOURCES_TABLE, source_splits
from pipeline.curation.curate import run_filter
from pipeline.curation.extract import run_extract
from pipeline.curation.extract import write_outputs as write_triplets
from pipeline.curation.splits import split_for, unit_hash
from pipeline.sources.download import run_download, write_outputs

FRACTIONS = SplitFractions(train=0.4, val=0.3, test=0.3)
PARAMS = FilterParams(split=FRACTIONS)
SPEC = {"clips": 3, "width": 128, "height": 96, "seconds": 4.0, "min_shot_seconds": 0.5,
        "max_shot_seconds": 1.0, "static_prob": 0.0, "repeat_prob": 0.0, "transition_prob": 0.0}
SOURCES = {"free": ("auto", 11), "learn": ("train", 12), "heldout": ("test", 13), "twin": ("train", 13)}


@dataclasses.dataclass(frozen=True)
class Run:
    pinned: pd.DataFrame    # filtered with the pins of sources.parquet, plus ``origin``
    unpinned: pd.DataFrame  # the same tables filtered without pins
    pins: dict[str, str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("source_split")
    params = parse_params({"sources": [
        {"name": name, "kind": "synthetic", "split": split, "seed": seed, **SPEC}
        for name, (split, seed) in SOURCES.items()]})
    result = run_download(params, root / "raw", root=root)
    write_outputs(result, root / "raw")
    truth = pd.concat(result.truth, ignore_index=True)
    frames, _ = build_tables(root / "raw", truth)
    analysis = write_analysis(frames, root / "analysis")
    write_triplets(run_extract(analysis, TripletParams()), root / "triplets")
    pins = source_splits(root / "raw")
    origin = pd.read_parquet(root / "raw" / SOURCES_TABLE).set_index("name")["origin"]
    pinned = run_filter(analysis, root / "triplets", PARAMS, pins=pins).filtered
    unpinned = run_filter(analysis, root / "triplets", PARAMS).filtered
    return Run(pinned.assign(origin=pinned["source"].map(origin)), unpinned, pins)


def of(table: pd.DataFrame, origin: str) -> pd.DataFrame:
    part = table[table["origin"] == origin]
    assert len(part) > 20, f"{origin}: too few triplets for the test to mean anything"
    return part


def test_sources_table_carries_each_sources_pin(run: Run):
    by_origin = {name.rsplit("-", 1)[0]: pin for name, pin in run.pins.items()}
    assert by_origin == {name: split for name, (split, _) in SOURCES.items()}


def test_test_pinned_source_is_all_test(run: Run):
    assert set(of(run.pinned, "heldout")["split"]) == {"test"}
    # without the pin its scenes would have spread over the splits
    unpinned = run.unpinned[run.unpinned["source"].str.startswith("heldout-")]
    assert set(unpinned["split"]) != {"test"}


def test_train_pinned_source_never_reaches_test(run: Run):
    learn = of(run.pinned, "learn")
    assert set(learn["split"]) == {"train", "val"}
    unpinned = run.unpinned[run.unpinned["source"].str.startswith("learn-")]
    assert "test" in set(unpinned["split"])
    # the same group hash, the train:val ratio renormalised: an auto-train scene stays train
    same = learn.merge(unpinned, on=["source", "f0"], suffixes=("", "_auto"))
    assert (same.loc[same["split_auto"] == "train", "split"] == "train").all()


def test_group_with_a_test_pinned_member_goes_to_test_entirely(run: Run):
    twin, heldout = of(run.pinned, "twin"), of(run.pinned, "heldout")
    shared = set(twin["group"]) & set(heldout["group"])
    assert shared, "the twin's footage should share groups with the held-out source"
    joined = run.pinned[run.pinned["group"].isin(shared)]
    assert set(joined["origin"]) >= {"twin", "heldout"}
    assert set(joined["split"]) == {"test"}
    assert (twin["reason"] == "near_duplicate").any() or (heldout["reason"] == "near_duplicate").any()
    # nothing of the held-out footage is left in train or val anywhere
    learnable = run.pinned[run.pinned["split"] != "test"]
    assert not set(learnable["group"]) & set(heldout["group"])


def test_auto_source_is_unchanged_by_the_pins_of_others(run: Run):
    free = of(run.pinned, "free")
    before = run.unpinned[run.unpinned["source"].isin(set(free["source"]))]
    pd.testing.assert_frame_equal(free.drop(columns="origin").reset_index(drop=True),
                                  before.reset_index(drop=True))
    assert len(set(free["split"])) > 1


def test_split_for_rules():
    keys = [("s", i) for i in range(20000)]
    auto = pd.Series([split_for(k, 3, FRACTIONS) for k in keys])
    train = pd.Series([split_for(k, 3, FRACTIONS, "train") for k in keys])
    assert {split_for(k, 3, FRACTIONS, "test") for k in keys[:500]} == {"test"}
    assert auto.value_counts(normalize=True)["test"] == pytest.approx(0.3, abs=0.015)
    assert set(train) == {"train", "val"}
    assert (train == "train").mean() == pytest.approx(0.4 / 0.7, abs=0.015)
    assert (train[auto == "train"] == "train").all() and (train[auto == "test"] == "val").all()
    assert auto.tolist() == [split_for(k, 3, FRACTIONS, "auto") for k in keys]
    assert unit_hash(keys[0], 3) != unit_hash(keys[0], 4)


def test_split_for_train_pin_wins_over_zero_train_fractions():
    only_test = SplitFractions(train=0.0, val=0.0, test=1.0)
    assert {split_for(("s", i), 0, only_test, "train") for i in range(50)} == {"train"}
    assert {split_for(("s", i), 0, only_test) for i in range(50)} == {"test"}
    with pytest.raises(ValueError, match="unknown split pin"):
        split_for(("s", 0), 0, FRACTIONS, "holdout")
