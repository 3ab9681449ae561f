"""Repeated footage (``pipeline.curation.repeats``): copies of a shot found across linked
scenes, against a plain reference implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.hashing import hamming
from pipeline.curation.repeats import repeated_footage

W, H = 128, 96


def test_repeated_footage_drops_a_copy_cut_into_other_triplets():
    """Scene 1 repeats scene 0's drawings (a few bits of grain apart) but its triplets
    take other frames; scene 2 shares one linked triplet yet has its own footage."""
    rng = np.random.default_rng(0)
    drawings = rng.integers(0, 2**63, size=(8, 2), dtype=np.uint64)  # (phash, dhash) per drawing
    unrelated = rng.integers(0, 2**63, size=(4, 2), dtype=np.uint64)

    def rows(scene: int, picks: list[tuple[int, int, int]], pool: np.ndarray, flip: int) -> list[dict]:
        out = []
        for f0, (a, b, c) in enumerate(picks):
            row = {"source": "s", "scene": scene, "f0": 10 * scene + f0, "keep": True}
            for k, d in enumerate((a, b, c)):
                row[f"phash{k}"] = pool[d, 0] ^ np.uint64((1 << flip) - 1)  # `flip` bits off
                row[f"dhash{k}"] = pool[d, 1]
            out.append(row)
        return out

    table = pd.DataFrame(rows(0, [(0, 1, 2), (1, 2, 3), (4, 5, 6)], drawings, 0)
                         + rows(1, [(0, 2, 3), (3, 4, 6), (5, 6, 7)], drawings, 3)
                         + rows(2, [(0, 1, 2), (0, 1, 3)], np.vstack([drawings[:3], unrelated]), 0))
    links = np.array([[0, 3], [0, 6]])  # scene 0 ~ scene 1, scene 0 ~ scene 2
    got = repeated_footage(table, links, distance=4)
    # scene 1: rows 3, 4 repeat scene-0 frames; row 5 shows drawing 7, never in scene 0.
    # scene 2: row 6 repeats 0, 1, 2 exactly; row 7's third frame is its own.
    assert got.tolist() == [False, False, False, True, True, False, True, False]
    assert not repeated_footage(table, links, distance=2)[3:6].any()  # 3 bits of grain > 2
    assert not repeated_footage(table.assign(keep=False), links, 4).any()  # only kept rows


# --- repeated_footage before "filter at scale" (issue 13), kept as the reference ---------
# One Python iteration per linked scene pair and a (rows, 3, distinct hashes) distance
# array per pair: plainly right, but slow and unbounded for big scenes.

def reference_covered(later: pd.DataFrame, earlier: pd.DataFrame, distance: int) -> np.ndarray:
    ok = np.ones(len(later), bool)
    for name in ("phash", "dhash"):
        theirs = np.unique(earlier[[f"{name}{k}" for k in range(3)]].to_numpy(np.uint64))
        mine = later[[f"{name}{k}" for k in range(3)]].to_numpy(np.uint64)
        ok &= (hamming(mine[:, :, None], theirs[None, None, :]).min(axis=2) <= distance).all(axis=1)
    return ok


def reference_repeated_footage(table: pd.DataFrame, links: np.ndarray, distance: int) -> np.ndarray:
    out = np.zeros(len(table), bool)
    if len(links) == 0:
        return out
    scene = pd.factorize(pd.MultiIndex.from_arrays([table["source"], table["scene"]]))[0]
    pairs = np.unique(np.sort(scene[links], axis=1), axis=0)
    keep = table["keep"].to_numpy(bool)
    for a, b in pairs[pairs[:, 0] != pairs[:, 1]]:
        later = np.flatnonzero((scene == b) & keep)
        if len(later):
            out[later[reference_covered(table.iloc[later], table.iloc[np.flatnonzero(scene == a)], distance)]] = True
    return out


def footage_table(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of a few scenes in two sources whose frames come from a small pool of drawings,
    with 0-3 bits of grain (phash and dhash apart), and random links."""
    n = int(rng.integers(0, 150))
    pool = rng.integers(0, 2**64, (int(rng.integers(1, 40)), 2), dtype=np.uint64)
    table = {"source": rng.choice(["a", "b"], n), "scene": rng.integers(0, int(rng.integers(1, 8)), n),
             "f0": np.arange(n), "keep": rng.random(n) < 0.7}
    for k in range(3):
        drawing = rng.integers(0, len(pool), n)
        grain = np.zeros(n, np.uint64)
        for _ in range(int(rng.integers(0, 4))):
            grain ^= np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)
        table[f"phash{k}"] = pool[drawing, 0] ^ grain
        table[f"dhash{k}"] = pool[drawing, 1] ^ (grain if rng.random() < 0.5 else np.uint64(0))
    links = rng.integers(0, max(n, 1), (int(rng.integers(0, 20)) if n else 0, 2))
    return pd.DataFrame(table), links


@pytest.mark.parametrize("seed", range(20))
def test_repeated_footage_equals_the_reference_implementation(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    if seed % 3 == 0:                      # tiny chunks: rows, pairs and comparisons split
        monkeypatch.setattr("pipeline.curation.repeats.COVER_CELLS", int(rng.integers(4, 64)))
    for _ in range(8):
        table, links = footage_table(rng)
        distance = int(rng.integers(0, 64)) if rng.random() < 0.2 else int(rng.integers(0, 8))
        got = repeated_footage(table, links, distance)
        np.testing.assert_array_equal(got, reference_repeated_footage(table, links, distance))


def test_repeated_footage_of_one_big_scene_pair_is_chunked(monkeypatch):
    """Two 2000-row scenes: the old code held 2000 x 3 x ~6000 distances; the chunked
    search gives the same answer with only ``COVER_CELLS`` comparisons at a time."""
    rng = np.random.default_rng(1)
    pool = rng.integers(0, 2**64, (3000, 2), dtype=np.uint64)
    pick = np.r_[rng.integers(0, 3000, (2000, 3)), rng.integers(0, 2000, (2000, 3))]
    table = pd.DataFrame({"source": "s", "scene": np.repeat([0, 1], 2000), "keep": True,
                          **{f"phash{k}": pool[pick[:, k], 0] for k in range(3)},
                          **{f"dhash{k}": pool[pick[:, k], 1] for k in range(3)}})
    monkeypatch.setattr("pipeline.curation.repeats.COVER_CELLS", 1 << 16)
    got = repeated_footage(table, np.array([[0, 2000]]), 3)
    np.testing.assert_array_equal(got, reference_repeated_footage(table, np.array([[0, 2000]]), 3))
    assert got[2000:].sum() > 0 and not got[:2000].any()
