"""Near-duplicate search over fixed-width binary keys by multi-index hashing (MIH).

A key is a row of ``w`` uint64 words read as one ``64 * w``-bit string (word 0 first).
MIH cuts it into ``blocks`` contiguous substrings; with ``blocks > distance``, two keys
within ``distance`` bits share at least one block exactly (pigeonhole), so bucketing by
each block finds *every* pair within ``distance``, and only the pairs sharing a bucket
are verified on the full key. The cost grows with n plus the number of true matches.

- :func:`mih_pairs`: every pair (i < j) within ``distance`` (:func:`brute_pairs`: O(n^2));
- :func:`dedup`: rows in order, each dropped when an earlier *kept* row is that close,
  with the links that join every near-duplicate cluster (:class:`Dedup`).

Memory is bounded: one block column at a time, pairs verified in bounded chunks, each
pair recorded once. Design and scaling notes: docs/NOTES.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.analysis.hashing import hamming

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
    """(n, blocks) uint64: the value of every block of every key.

    For tests and small inputs only: ``mih_pairs`` computes one block column at a time,
    because all of them at once are 8 bytes x blocks per key (23 GB at 3.6e8 keys).
    """
    keys = as_keys(keys)
    bounds = block_bounds(keys.shape[1] * WORD_BITS, blocks)
    return np.stack([_bits(keys, lo, hi) for lo, hi in bounds], axis=1)


def _sorted_block(keys: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, block values) of all keys, sorted by the block [start, stop), then row id.

    When the block and the row id fit in one uint64 together they are sorted as one
    packed word: an in-place ``np.sort`` of uint64 is ~15x faster than a stable argsort
    (0.27 s vs 4 s at 1e7 keys) and ties come out in row order just the same.
    """
    value = _bits(keys, start, stop)
    shift = max(len(keys) - 1, 1).bit_length()
    if stop - start + shift > WORD_BITS:
        order = np.argsort(value, kind="stable")
        return order, value[order]
    value <<= np.uint64(shift)
    value |= np.arange(len(keys), dtype=np.uint64)
    value.sort()
    rows = (value & np.uint64((1 << shift) - 1)).astype(np.int64)
    value >>= np.uint64(shift)
    return rows, value


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted values: (in a run of two or more equal values, starts a run), per value."""
    new = np.empty(len(ordered) + 1, bool)
    new[0] = new[-1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:-1])
    return ~(new[:-1] & new[1:]), new[:-1]


def _shared_runs(keys: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose block [start, stop) another row shares, grouped by block value with
    row ids ascending in a group, and each one's count of later rows in its group.

    Rows with a block value of their own can pair with nobody: dropping them here keeps
    the per-block arrays at the size of the shared buckets.
    """
    rows, value = _sorted_block(keys, start, stop)
    member, head = _runs(value)
    del value
    rows, head = rows[member], head[member]
    run_end = np.r_[np.flatnonzero(head)[1:], len(rows)]
    later = run_end[np.cumsum(head) - 1] - np.arange(len(rows)) - 1
    return rows, later


def chunk_spans(counts: np.ndarray, limit: int):
    """Yield [start, stop) spans of ``counts`` summing to at most ``limit`` (or one item
    that alone exceeds it): the unit of work that keeps expanded arrays bounded."""
    total = np.cumsum(counts)
    start = 0
    while start < len(counts):
        done = total[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(total, done + limit, side="right")))
        yield start, stop
        start = stop


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, offset): item i repeated counts[i] times, numbered 0 .. counts[i] - 1."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)


def _candidate_chunks(rows: np.ndarray, later: np.ndarray, limit: int):
    """Yield (a, b) arrays of the bucket pairs of ``_shared_runs``, about ``limit`` pairs a
    chunk, so that one block's candidates never exist all at once (a large bucket has
    m^2 / 2 of them). Position p pairs with p + 1 .. p + later[p]; a < b row-wise."""
    for start, stop in chunk_spans(later, limit):
        owner, offset = expand(later[start:stop])
        first = owner + start
        yield rows[first], rows[first + offset + 1]


def _verified(keys: np.ndarray, a: np.ndarray, b: np.ndarray, distance: int,
              earlier_blocks: list[tuple[int, int]]) -> np.ndarray:
    """Pair codes a * n + b of the candidates within ``distance`` whose first shared block
    is the current one (none of ``earlier_blocks`` equal): each pair is kept by exactly
    one block, so the codes of all blocks are already distinct and never need a unique."""
    diff = keys[a]
    diff ^= keys[b]
    near = hamming(diff, np.uint64(0)).sum(axis=1, dtype=np.int64) <= distance
    diff, a, b = diff[near], a[near], b[near]
    first = np.ones(len(a), bool)
    for lo, hi in earlier_blocks:
        first &= _bits(diff, lo, hi) != 0
    return a[first].astype(np.int64) * max(len(keys), 1) + b[first]


CANDIDATE_CHUNK = 1 << 20  # bucket pairs verified at once: ~100 MB of gathered keys


def mih_pairs(keys: np.ndarray, distance: int, blocks: int) -> np.ndarray:
    """Every pair (i < j) of keys within ``distance`` bits, by multi-index hashing.

    Exhaustive because ``blocks > distance`` is required (pigeonhole). One block column
    exists at a time, its buckets are verified in chunks of ``CANDIDATE_CHUNK`` pairs,
    and a pair is recorded only by the first block it shares, so memory is a few
    arrays of n plus the true pairs. Rows come out sorted.
    """
    keys = as_keys(keys)
    if blocks <= distance:
        raise ValueError(f"MIH needs blocks > distance to be exhaustive (blocks={blocks}, distance={distance})")
    bounds = block_bounds(keys.shape[1] * WORD_BITS, blocks)
    found = [np.empty(0, np.int64)]
    for index, (lo, hi) in enumerate(bounds):
        rows, later = _shared_runs(keys, lo, hi)
        for a, b in _candidate_chunks(rows, later, CANDIDATE_CHUNK):
            found.append(_verified(keys, a, b, distance, bounds[:index]))
        del rows, later
    code = np.sort(np.concatenate(found))
    n = max(len(keys), 1)
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
    reps, rep_index = first_copies(keys)
    rep_row = reps[rep_index]
    rep_pairs = mih_pairs(keys[reps], distance, blocks)
    dup_rep = _greedy(len(reps), rep_pairs)[rep_index]
    duplicate_of = np.where(dup_rep >= 0, reps[np.maximum(dup_rep, 0)], -1)
    copies = np.flatnonzero(rep_row != np.arange(len(keys)))
    duplicate_of[copies] = np.where(dup_rep[copies] >= 0, duplicate_of[copies], rep_row[copies])
    links = np.concatenate([reps[rep_pairs].reshape(-1, 2), np.stack([rep_row[copies], copies], axis=1)])
    return Dedup(dropped=duplicate_of >= 0, duplicate_of=duplicate_of, links=links.astype(np.int64))


def _mix(keys: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every key: only narrows the search for equal keys (never trusted)."""
    h = np.zeros(len(keys), np.uint64)
    for word in range(keys.shape[1]):
        h ^= keys[:, word]
        h *= np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    return h


def first_copies(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reps, rep_index): the first row of every distinct key, ascending, and each row's
    index into ``reps`` (the same partition as ``np.unique(keys, axis=0)``).

    ``np.unique(axis=0)`` sorts structured rows (36 s at 1e7 keys of 3 words) and
    ``np.lexsort`` 14 s; here a packed sort of the top bits of a key hash finds the
    few rows that can equal another, and only those are sorted on the full key.
    """
    keys = as_keys(keys)
    n = len(keys)
    shift = max(n - 1, 1).bit_length()
    packed = (_mix(keys) >> np.uint64(shift)) << np.uint64(shift)
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    shared = _runs(packed >> np.uint64(shift))[0]
    suspects = np.sort((packed[shared] & np.uint64((1 << shift) - 1)).astype(np.int64))
    del packed, shared
    leader = np.arange(n, dtype=np.int64)           # the first row holding each row's key
    if len(suspects):
        order = suspects[np.lexsort(keys[suspects].T[::-1])]   # stable: equal keys in row order
        ordered = keys[order]
        head = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
        leader[order] = order[np.flatnonzero(head)][np.cumsum(head) - 1]
    is_rep = leader == np.arange(n)
    return np.flatnonzero(is_rep), (np.cumsum(is_rep) - 1)[leader]


UNDECIDED, KEPT, DROPPED = 0, 1, 2  # _greedy row states


def _greedy(n: int, pairs: np.ndarray) -> np.ndarray:
    """For rows 0..n-1 in order: the first earlier kept neighbour, or -1 (row kept).

    Decided in rounds instead of row by row: a row is decided as soon as its smallest
    earlier neighbour that is not dropped is kept (the row is dropped, a duplicate of
    it) or there is none (kept). Only final states are read, so the answer is the
    sequential one; the smallest undecided row is always decidable, and a round
    touches only the still undecided rows' pairs. Rounds ~ the longest chain of
    alternating keep/drop decisions, a handful on real footage.
    """
    dup = np.full(n, -1, np.int64)
    if len(pairs) == 0:
        return dup
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))    # by later row, then earlier row
    later, earlier = pairs[order, 1].astype(np.int64), pairs[order, 0].astype(np.int64)
    state = np.full(n, KEPT, np.int8)
    state[later] = UNDECIDED
    while len(later):
        later, earlier = _greedy_round(later, earlier, state, dup)
    return dup


def _greedy_round(later: np.ndarray, earlier: np.ndarray, state: np.ndarray,
                  dup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One round of ``_greedy`` over the pairs (sorted by later, earlier row) of the
    undecided rows; updates ``state`` and ``dup``, returns the pairs still needed."""
    group = np.r_[True, later[1:] != later[:-1]]
    alive = state[earlier] != DROPPED
    lost = ~np.logical_or.reduceat(alive, np.flatnonzero(group))
    state[later[group][lost]] = KEPT                 # every earlier neighbour dropped
    later, earlier = later[alive], earlier[alive]
    head = np.r_[True, later[1:] != later[:-1]] if len(later) else np.zeros(0, bool)
    row, first = later[head], earlier[head]         # smallest earlier neighbour not dropped
    hit = state[first] == KEPT
    state[row[hit]] = DROPPED
    dup[row[hit]] = first[hit]
    pending = state[later] == UNDECIDED
    return later[pending], earlier[pending]
