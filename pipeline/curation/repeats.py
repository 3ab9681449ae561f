"""Repeated footage: a kept triplet whose frames all appear, within a few hash bits, in an
earlier linked scene (a shot cut into the film twice) is dropped by the filter stage.

:func:`repeated_footage` works on the candidates table and the scene links of near-
duplicate search; it compares frame hashes scene pair by scene pair, at most
``COVER_CELLS`` comparisons at a time, so memory stays flat on long films.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analysis.hashing import hamming
from pipeline.curation.near_dup import chunk_spans, expand


def _frame_hashes(rows: pd.DataFrame, name: str) -> np.ndarray:
    """(rows, 3) uint64: the ``name`` hash of each row's f0, f1, f2."""
    return rows[[f"{name}{k}" for k in range(3)]].to_numpy(np.uint64)


COVER_CELLS = 1 << 22  # frame-hash comparisons held at once by repeated_footage


@dataclass(frozen=True)
class SceneHashes:
    """The distinct values of one hash over the frames of some rows, per scene.

    ``values[start[s]:start[s + 1]]``: scene s's distinct values, ascending;
    ``index[i, k]``: the position in ``values`` of row i's frame k.
    """

    values: np.ndarray
    start: np.ndarray
    index: np.ndarray


def scene_hashes(scene: np.ndarray, hashes: np.ndarray, scenes: int) -> SceneHashes:
    """``SceneHashes`` of rows with scene ids ``scene`` and (rows, 3) ``hashes``.

    A drawing is in up to three triplets of a scene, so its distinct values are ~1/3 of
    the frames, and each is compared once."""
    owner = np.repeat(scene, hashes.shape[1])
    flat = hashes.reshape(-1)
    order = np.lexsort((flat, owner))
    owner, flat = owner[order], flat[order]
    head = np.ones(len(flat), bool)
    head[1:] = (owner[1:] != owner[:-1]) | (flat[1:] != flat[:-1])
    index = np.empty(len(order), np.int64)
    index[order] = np.cumsum(head) - 1
    start = np.searchsorted(owner[head], np.arange(scenes + 1))
    return SceneHashes(flat[head], start, index.reshape(hashes.shape))


def any_within(query: np.ndarray, targets: np.ndarray, lo: np.ndarray, hi: np.ndarray, distance: int,
               cells: int = COVER_CELLS) -> np.ndarray:
    """Per query i: is some ``targets[lo[i]:hi[i]]`` within ``distance`` bits of it.

    All-pairs within each range, in chunks of about ``cells`` comparisons, so a big
    scene costs time, never a (queries x targets) array."""
    out = np.zeros(len(query), bool)
    count = hi - lo
    for start, stop in chunk_spans(count, cells):
        owner, offset = expand(count[start:stop])
        near = hamming(query[start + owner], targets[lo[start + owner] + offset]) <= distance
        out[start:stop] = np.bincount(owner[near], minlength=stop - start) > 0
    return out


def _pairs_covered(later_rows: np.ndarray, pair_of_row: np.ndarray, pairs: np.ndarray,
                   earlier: SceneHashes, mine: SceneHashes, distance: int) -> np.ndarray:
    """Per (row, pair) item: every frame of the row (``mine.index`` positions, its scene
    ``pairs[:, 1]``) within ``distance`` of a value of the pair's earlier scene."""
    a, b = pairs[:, 0], pairs[:, 1]
    tasks = mine.start[b + 1] - mine.start[b]           # distinct values of each later scene
    task_pair, offset = expand(tasks)
    query = mine.start[b[task_pair]] + offset
    covered = any_within(mine.values[query], earlier.values, earlier.start[a[task_pair]],
                         earlier.start[a[task_pair] + 1], distance, COVER_CELLS)
    base = (np.cumsum(tasks) - tasks)[pair_of_row] - mine.start[b[pair_of_row]]
    return covered[base[:, None] + mine.index[later_rows]].all(axis=1)


def repeated_footage(table: pd.DataFrame, links: np.ndarray, distance: int) -> np.ndarray:
    """Kept rows of the later scene of a linked pair whose frames all repeat the earlier
    scene's frames (module doc: repeated footage). Scenes are ordered by first row.

    Per hash, a later scene's frame must be within ``distance`` of one of the earlier
    scene's frames (any row, any of f0, f1, f2). Done for all linked pairs at once, in
    chunks of about ``COVER_CELLS`` (row, pair) items, each scene's values deduplicated.
    """
    out = np.zeros(len(table), bool)
    if len(links) == 0:
        return out
    scene = pd.factorize(pd.MultiIndex.from_arrays([table["source"], table["scene"]]))[0]
    pairs = np.unique(np.sort(scene[links], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs) == 0:
        return out
    scenes = int(scene.max()) + 1
    kept = np.flatnonzero(table["keep"].to_numpy(bool) & np.isin(scene, pairs[:, 1]))
    kept = kept[np.argsort(scene[kept], kind="stable")]
    kept_start = np.searchsorted(scene[kept], np.arange(scenes + 1))
    earlier_rows = np.flatnonzero(np.isin(scene, pairs[:, 0]))
    hashes = []
    for name in ("phash", "dhash"):
        frames = _frame_hashes(table, name)
        hashes.append((scene_hashes(scene[earlier_rows], frames[earlier_rows], scenes),
                       scene_hashes(scene[kept], frames[kept], scenes)))
    items = kept_start[pairs[:, 1] + 1] - kept_start[pairs[:, 1]]
    for start, stop in chunk_spans(items, COVER_CELLS):
        pair_of_row, offset = expand(items[start:stop])
        later_rows = kept_start[pairs[start + pair_of_row, 1]] + offset    # positions in ``kept``
        ok = np.ones(len(later_rows), bool)
        for earlier, mine in hashes:
            ok &= _pairs_covered(later_rows, pair_of_row, pairs[start:stop], earlier, mine, distance)
        out[kept[later_rows[ok]]] = True
    return out
