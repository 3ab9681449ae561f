"""Near-duplicate search over fixed-width binary keys by multi-index hashing (MIH).

A key is a row of ``w`` uint64 words read as one ``64 * w``-bit string (word 0 first).
MIH cuts that string into ``blocks`` contiguous substrings. If two keys differ in at most
``distance`` bits and ``blocks > distance``, at least one block holds none of the
differing bits (pigeonhole), so the pair shares that block exactly. Bucketing every key
by each block value therefore finds *every* pair within ``distance``; only the pairs that
share a bucket are verified on the full key. With blocks of ~16+ bits, buckets of
unrelated keys stay tiny and the cost grows with n plus the number of true matches,
not with n^2 (see ``benchmarks/bench_near_dup.py``).

Buckets are built by sorting each block column (``np.argsort``) instead of a Python dict
of block value -> ids: the same index, vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.hashing import hamming

WORD_BITS = 64


def key_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance of multi-word keys: rows of ``a`` against rows of ``b`` (int64)."""
    return hamming(a, b).sum(axis=-1, dtype=np.int64)


def as_keys(keys: np.ndarray) -> np.ndarray:
    """Validate and view keys as a C-contiguous (n, words) uint64 array."""
    keys = np.asarray(keys)
    if keys.ndim == 1:
        keys = keys[:, None]
    if keys.ndim != 2 or keys.dtype != np.uint64:
        raise ValueError(f"keys must be an (n, words) uint64 array, got {keys.dtype} {keys.shape}")
    return np.ascontiguousarray(keys)


def block_bounds(bits: int, blocks: int) -> list[tuple[int, int]]:
    """[start, stop) bit ranges of ``blocks`` near-equal contiguous blocks of a key."""
    if not 1 <= blocks <= bits:
        raise ValueError(f"blocks must be in [1, {bits}], got {blocks}")
    edges = [bits * b // blocks for b in range(blocks + 1)]
    if max(hi - lo for lo, hi in zip(edges, edges[1:])) > WORD_BITS:
        raise ValueError(f"{blocks} blocks of a {bits}-bit key exceed {WORD_BITS} bits each")
    return list(zip(edges, edges[1:]))


def _bits(keys: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The bits [start, stop) of every key as an unsigned integer (most significant first)."""
    value = np.zeros(len(keys), np.uint64)
    for word in range(start // WORD_BITS, (stop - 1) // WORD_BITS + 1):
        lo = max(start, word * WORD_BITS)
        hi = min(stop, (word + 1) * WORD_BITS)
        width = hi - lo
        part = keys[:, word] >> np.uint64((word + 1) * WORD_BITS - hi)
        if width < WORD_BITS:
            part &= np.uint64((1 << width) - 1)
            value = (value << np.uint64(width)) | part
        else:
            value = part
    return value


def block_values(keys: np.ndarray, blocks: int) -> np.ndarray:
    """(n, blocks) uint64: the value of every block of every key."""
    keys = as_keys(keys)
    bounds = block_bounds(keys.shape[1] * WORD_BITS, blocks)
    return np.stack([_bits(keys, lo, hi) for lo, hi in bounds], axis=1)


def _bucket_pairs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) pairs of rows that share ``values`` exactly (one block column)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_run = np.r_[True, ordered[1:] != ordered[:-1]]
    run_id = np.cumsum(new_run) - 1
    run_end = np.r_[np.flatnonzero(new_run)[1:], len(values)][run_id]
    later = run_end - np.arange(len(values)) - 1
    first = np.repeat(np.arange(len(values)), later)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later) + 1
    return order[first], order[first + offset]


def mih_pairs(keys: np.ndarray, distance: int, blocks: int) -> np.ndarray:
    """Every pair (i < j) of keys within ``distance`` bits, by multi-index hashing.

    Exhaustive because ``blocks > distance`` is required (pigeonhole). Each block's
    bucket pairs are verified on the full key before the next block is bucketed, so
    memory follows one block's candidates, not all of them. Rows come out sorted.
    """
    keys = as_keys(keys)
    if blocks <= distance:
        raise ValueError(f"MIH needs blocks > distance to be exhaustive (blocks={blocks}, distance={distance})")
    n = max(len(keys), 1)
    found = [np.empty(0, np.int64)]
    for column in block_values(keys, blocks).T:
        a, b = _bucket_pairs(column)
        near = key_distance(keys[a], keys[b]) <= distance
        lo, hi = np.minimum(a, b)[near], np.maximum(a, b)[near]
        found.append(lo.astype(np.int64) * n + hi)
    code = np.unique(np.concatenate(found))
    return np.stack([code // n, code % n], axis=1)


def brute_pairs(keys: np.ndarray, distance: int, cells: int = 1 << 22) -> np.ndarray:
    """Reference: all pairs (i < j) within ``distance`` by numpy all-pairs, O(n^2).

    Rows are compared in chunks of about ``cells`` key pairs, distances accumulated in
    uint8 (keys of at most 255 bits), so the work arrays stay a few tens of MB.
    """
    keys = as_keys(keys)
    if keys.shape[1] * WORD_BITS > 255:
        raise ValueError("brute_pairs supports keys of at most 255 bits")
    found = [np.empty((0, 2), np.int64)]
    chunk = max(1, cells // max(len(keys), 1))
    for start in range(0, len(keys), chunk):
        block = keys[start : start + chunk]
        rest = keys[start:]                       # only j >= start can pair with i >= start
        dist = np.zeros((len(block), len(rest)), np.uint8)
        for word in range(keys.shape[1]):
            dist += hamming(block[:, None, word], rest[None, :, word])
        i, j = np.nonzero(dist <= distance)
        upper = j > i
        found.append(np.stack([i[upper] + start, j[upper] + start], axis=1).astype(np.int64))
    return np.concatenate(found)


@dataclass(frozen=True)
class Dedup:
    """Greedy de-duplication of keys taken in row order.

    ``dropped[i]``: row i is within the distance of an earlier row that was kept.
    ``duplicate_of[i]``: the first such kept row, -1 for kept rows.
    ``links``: (i, j) pairs that connect every near-duplicate cluster (enough for
    connected components; exact duplicates are linked to their first copy only).
    """

    dropped: np.ndarray
    duplicate_of: np.ndarray
    links: np.ndarray


def dedup(keys: np.ndarray, distance: int, blocks: int) -> Dedup:
    """Keep a row unless it is a near-duplicate of an earlier *kept* row.

    Exact duplicates are collapsed first, so a key repeated m times costs m, not m^2,
    pairs: a later copy is always dropped (its first copy is either kept, or dropped
    because of a kept row that is just as close to the copy).
    """
    keys = as_keys(keys)
    _, first_rows, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    reps = np.sort(first_rows)                          # first row of every distinct key
    rank = np.empty(len(first_rows), np.int64)
    rank[np.argsort(first_rows, kind="stable")] = np.arange(len(first_rows))
    rep_index = rank[inverse.reshape(-1)]               # distinct-key index of every row
    rep_row = reps[rep_index]
    rep_pairs = mih_pairs(keys[reps], distance, blocks)
    dup_rep = _greedy(len(reps), rep_pairs)[rep_index]
    duplicate_of = np.where(dup_rep >= 0, reps[np.maximum(dup_rep, 0)], -1)
    copies = np.flatnonzero(rep_row != np.arange(len(keys)))
    duplicate_of[copies] = np.where(dup_rep[copies] >= 0, duplicate_of[copies], rep_row[copies])
    links = np.concatenate([reps[rep_pairs].reshape(-1, 2), np.stack([rep_row[copies], copies], axis=1)])
    return Dedup(dropped=duplicate_of >= 0, duplicate_of=duplicate_of, links=links.astype(np.int64))


def _greedy(n: int, pairs: np.ndarray) -> np.ndarray:
    """For rows 0..n-1 in order: the first earlier kept neighbour, or -1 (row kept)."""
    dup = np.full(n, -1, np.int64)
    if len(pairs) == 0:
        return dup
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))    # by later row, then earlier row
    later, earlier = pairs[order, 1], pairs[order, 0]
    starts = np.searchsorted(later, np.arange(n + 1))
    for row in np.unique(later):
        for other in earlier[starts[row] : starts[row + 1]]:
            if dup[other] < 0:
                dup[row] = other
                break
    return dup
