"""Multi-index hashing: exhaustive (same pairs as brute force), correct bit blocks, and
the greedy keep-the-first de-duplication the filter relies on; the bounded-memory,
vectorised versions give exactly the arrays of the plain implementations they replaced."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.curation.near_dup import (
    Dedup,
    _greedy,
    block_bounds,
    block_values,
    brute_pairs,
    dedup,
    first_copies,
    key_distance,
    mih_pairs,
)


def random_keys(n: int, words: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64, size=(n, words), dtype=np.uint64, endpoint=False)


def plant(keys: np.ndarray, count: int, max_bits: int, seed: int) -> np.ndarray:
    """Copy ``count`` random rows over others, flipping up to ``max_bits`` bits each."""
    rng = np.random.default_rng(seed)
    keys = keys.copy()
    bits = keys.shape[1] * 64
    for src, dst in zip(rng.integers(0, len(keys), count), rng.integers(0, len(keys), count)):
        keys[dst] = keys[src]
        for b in rng.choice(bits, int(rng.integers(0, max_bits + 1)), replace=False):
            keys[dst, b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return keys


def sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def test_key_distance_sums_the_words():
    a = np.array([0, 0xFF, 2**64 - 1], np.uint64)
    b = np.array([1, 0x0F, 0], np.uint64)
    assert key_distance(a[None], b[None]).tolist() == [69]
    assert key_distance(np.stack([a, a]), np.stack([b, a])).tolist() == [69, 0]


@pytest.mark.parametrize("bits, blocks", [(64, 8), (192, 8), (192, 7), (128, 3), (192, 192)])
def test_block_values_match_a_bit_string_reference(bits, blocks):
    keys = random_keys(20, bits // 64, seed=blocks)
    values = block_values(keys, blocks)
    for row, key in zip(values, keys):
        text = "".join(f"{int(w):064b}" for w in key)
        assert [int(text[lo:hi], 2) for lo, hi in block_bounds(bits, blocks)] == row.tolist()


def test_blocks_wider_than_a_word_are_refused():
    with pytest.raises(ValueError, match="exceed 64 bits"):
        block_bounds(192, 2)


@pytest.mark.parametrize("n, words, distance, blocks", [
    (300, 1, 3, 4), (300, 1, 6, 8), (500, 3, 6, 8), (500, 3, 12, 13), (200, 2, 0, 3),
])
def test_mih_finds_exactly_the_brute_force_pairs(n, words, distance, blocks):
    keys = plant(random_keys(n, words, seed=n + words), count=n // 5, max_bits=distance + 3, seed=distance)
    mih = mih_pairs(keys, distance, blocks)
    brute = sorted_pairs(brute_pairs(keys, distance))
    assert len(brute) > 0
    np.testing.assert_array_equal(mih, brute)


def test_mih_on_low_entropy_keys_equals_brute_force():
    """Keys that share most blocks (similar frames of one scene) make big buckets."""
    rng = np.random.default_rng(7)
    base = random_keys(1, 3, seed=1)
    keys = np.repeat(base, 400, axis=0)
    for row in keys:
        for b in rng.choice(192, int(rng.integers(0, 12)), replace=False):
            row[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    np.testing.assert_array_equal(mih_pairs(keys, 6, 8), sorted_pairs(brute_pairs(keys, 6)))


def test_mih_needs_more_blocks_than_distance():
    with pytest.raises(ValueError, match="blocks > distance"):
        mih_pairs(random_keys(5, 1, 0), distance=8, blocks=8)


def test_empty_and_single_key():
    assert mih_pairs(np.zeros((0, 3), np.uint64), 6, 8).shape == (0, 2)
    assert mih_pairs(random_keys(1, 3, 0), 6, 8).shape == (0, 2)
    assert not dedup(random_keys(1, 3, 0), 6, 8).dropped.any()


def test_dedup_keeps_the_first_and_drops_later_copies():
    keys = random_keys(6, 3, seed=3)
    keys[4] = keys[1]
    keys[5] = keys[1] ^ np.array([1, 0, 0], np.uint64)
    found = dedup(keys, 6, 8)
    assert found.dropped.tolist() == [False, False, False, False, True, True]
    assert found.duplicate_of.tolist() == [-1, -1, -1, -1, 1, 1]


def test_dedup_compares_with_kept_rows_only():
    """A ~ B and B ~ C but not A ~ C: B is dropped (near A), so C stays: nothing kept is
    within the distance of another kept row."""
    a = np.zeros(1, np.uint64)
    b = np.array([0b111], np.uint64)          # 3 bits from a
    c = np.array([0b111111], np.uint64)       # 3 bits from b, 6 from a
    found = dedup(np.stack([a, b, c]), distance=4, blocks=5)
    assert found.dropped.tolist() == [False, True, False]
    assert found.duplicate_of.tolist() == [-1, 0, -1]
    assert {tuple(p) for p in found.links.tolist()} == {(0, 1), (1, 2)}


def test_dedup_of_many_exact_copies_stays_linear_in_links():
    keys = np.repeat(random_keys(1, 3, 5), 5000, axis=0)
    found = dedup(keys, 6, 8)
    assert found.dropped.sum() == 4999
    assert len(found.links) == 4999             # each copy linked to the first, not all pairs


def test_dedup_matches_a_brute_force_greedy_and_links_every_near_pair():
    keys = plant(random_keys(400, 3, seed=9), count=80, max_bits=6, seed=9)
    keys[10:15] = keys[3]                         # exact copies mixed with near ones
    found = dedup(keys, 6, 8)
    brute = brute_pairs(keys, 6)
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in found.links:
        parent[root(i)] = root(j)
    for i, j in brute:
        assert root(i) == root(j)
    dropped_by_brute = np.zeros(len(keys), bool)
    kept: list[int] = []
    near = {i: set() for i in range(len(keys))}
    for i, j in brute:
        near[i].add(j)
        near[j].add(i)
    for i in range(len(keys)):
        if any(k in near[i] for k in kept):
            dropped_by_brute[i] = True
        else:
            kept.append(i)
    np.testing.assert_array_equal(found.dropped, dropped_by_brute)


# --- the implementations before "filter at scale" (issue 13), kept as references -------
# They materialise every block column at once, concatenate every block's pairs, collapse
# copies with np.unique(axis=0) and run the greedy pass row by row: slow and big, but
# plainly right. The vectorised code must give the very same arrays.

def reference_mih_pairs(keys: np.ndarray, distance: int, blocks: int) -> np.ndarray:
    keys = np.ascontiguousarray(keys if keys.ndim == 2 else keys[:, None])
    n = max(len(keys), 1)
    found = [np.empty(0, np.int64)]
    for column in block_values(keys, blocks).T:
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        new_run = np.r_[True, ordered[1:] != ordered[:-1]]
        run_id = np.cumsum(new_run) - 1
        run_end = np.r_[np.flatnonzero(new_run)[1:], len(column)][run_id]
        later = run_end - np.arange(len(column)) - 1
        first = np.repeat(np.arange(len(column)), later)
        offset = np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later) + 1
        a, b = order[first], order[first + offset]
        near = key_distance(keys[a], keys[b]) <= distance
        found.append(np.minimum(a, b)[near].astype(np.int64) * n + np.maximum(a, b)[near])
    code = np.unique(np.concatenate(found))
    return np.stack([code // n, code % n], axis=1)


def reference_greedy(n: int, pairs: np.ndarray) -> np.ndarray:
    dup = np.full(n, -1, np.int64)
    if len(pairs) == 0:
        return dup
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))
    later, earlier = pairs[order, 1], pairs[order, 0]
    starts = np.searchsorted(later, np.arange(n + 1))
    for row in np.unique(later):
        for other in earlier[starts[row] : starts[row + 1]]:
            if dup[other] < 0:
                dup[row] = other
                break
    return dup


def reference_dedup(keys: np.ndarray, distance: int, blocks: int) -> Dedup:
    _, first_rows, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    reps = np.sort(first_rows)
    rank = np.empty(len(first_rows), np.int64)
    rank[np.argsort(first_rows, kind="stable")] = np.arange(len(first_rows))
    rep_index = rank[inverse.reshape(-1)]
    rep_row = reps[rep_index]
    rep_pairs = reference_mih_pairs(keys[reps], distance, blocks)
    dup_rep = reference_greedy(len(reps), rep_pairs)[rep_index]
    duplicate_of = np.where(dup_rep >= 0, reps[np.maximum(dup_rep, 0)], -1)
    copies = np.flatnonzero(rep_row != np.arange(len(keys)))
    duplicate_of[copies] = np.where(dup_rep[copies] >= 0, duplicate_of[copies], rep_row[copies])
    links = np.concatenate([reps[rep_pairs].reshape(-1, 2), np.stack([rep_row[copies], copies], axis=1)])
    return Dedup(dropped=duplicate_of >= 0, duplicate_of=duplicate_of, links=links.astype(np.int64))


def structured_keys(rng: np.random.Generator, n: int, words: int, distance: int) -> np.ndarray:
    """Random keys with planted near copies, exact copies, a chain and a tight cluster."""
    keys = random_keys(n, words, int(rng.integers(1 << 30)))
    if n < 2:
        return keys
    keys = plant(keys, int(rng.integers(0, n)), distance + 2, int(rng.integers(1 << 30)))
    copies = rng.integers(0, n, (int(rng.integers(0, n // 4 + 1)), 2))
    keys[copies[:, 1]] = keys[copies[:, 0]]
    start, length = int(rng.integers(0, n)), int(rng.integers(2, 80))
    for row in range(start + 1, min(n, start + length)):        # each a few bits from the last
        keys[row] = keys[row - 1]
        for b in rng.choice(words * 64, int(rng.integers(1, 4)), replace=False):
            keys[row, b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    centre, members = keys[int(rng.integers(0, n))], rng.integers(0, n, int(rng.integers(0, 20)))
    keys[members] = centre
    for row in members:
        for b in rng.choice(words * 64, int(rng.integers(0, distance + 1)), replace=False):
            keys[row, b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return keys


def assert_same_dedup(keys: np.ndarray, distance: int, blocks: int) -> None:
    got, want = dedup(keys, distance, blocks), reference_dedup(keys, distance, blocks)
    for name in ("dropped", "duplicate_of", "links"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("seed", range(40))
def test_mih_and_dedup_equal_the_reference_implementation(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    words = int(rng.integers(1, 4))
    distance = int(rng.integers(0, 9))
    blocks = int(rng.integers(max(distance + 1, -(-64 * words // 64)), distance + 5))
    n = int(rng.choice([0, 1, 2, 3, 10, 100, 400]))
    if seed % 3 == 0:
        monkeypatch.setattr("pipeline.curation.near_dup.CANDIDATE_CHUNK", int(rng.integers(1, 20)))
    keys = structured_keys(rng, n, words, distance)
    got, want = mih_pairs(keys, distance, blocks), reference_mih_pairs(keys, distance, blocks)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert_same_dedup(keys, distance, blocks)


@pytest.mark.parametrize("distance", range(0, 12))
def test_dedup_equals_the_reference_at_every_distance(distance):
    rng = np.random.default_rng(100 + distance)
    keys = structured_keys(rng, 300, 3, distance)
    assert_same_dedup(keys, distance, 13)
    assert_same_dedup(keys[:1], distance, 13)


def test_dedup_equals_the_reference_on_exact_copies_only():
    keys = np.repeat(random_keys(4, 3, 11), [1, 50, 3, 7], axis=0)[np.random.default_rng(0).permutation(61)]
    assert_same_dedup(keys, 6, 8)
    assert_same_dedup(np.zeros((0, 3), np.uint64), 6, 8)


def random_graph(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """Unique (i < j) pairs, shuffled: random edges, long chains, cliques or a mix."""
    if kind == "chain":      # 0-1-2-...: kept and dropped alternate, one row decided a round
        i = np.arange(n - 1)
        pairs = np.stack([i, i + 1], axis=1)
        pairs = np.r_[pairs, rng.integers(0, n, (n // 10, 2))]
    elif kind == "cliques":
        label = rng.integers(0, max(1, n // 8), n)
        pairs = np.argwhere((label[:, None] == label[None]) & (rng.random((n, n)) < 0.6))
    else:
        pairs = rng.integers(0, n, (int(rng.integers(0, 4 * n)), 2))
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    pairs = np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)
    return pairs[rng.permutation(len(pairs))]


@pytest.mark.parametrize("kind", ["random", "chain", "cliques"])
def test_greedy_rounds_equal_the_row_by_row_loop(kind):
    rng = np.random.default_rng(len(kind))
    for n in [1, 2, 3, 5, 20, 100, 600] * 20:
        pairs = random_graph(rng, n, kind)
        np.testing.assert_array_equal(_greedy(n, pairs), reference_greedy(n, pairs))


def test_greedy_on_one_long_chain():
    """Row i ~ i + 1 for 3000 rows: even rows kept, odd rows dropped for the row before."""
    i = np.arange(2999)
    dup = _greedy(3000, np.stack([i, i + 1], axis=1)[::-1])
    np.testing.assert_array_equal(dup, np.where(np.arange(3000) % 2 == 1, np.arange(3000) - 1, -1))


def test_first_copies_matches_np_unique():
    rng = np.random.default_rng(4)
    keys = random_keys(500, 2, 4)
    keys[rng.integers(0, 500, 200)] = keys[rng.integers(0, 500, 200)]
    keys[rng.integers(0, 500, 50), 0] = keys[0, 0]          # equal first words, other keys
    reps, rep_index = first_copies(keys)
    _, first_rows, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    np.testing.assert_array_equal(reps, np.sort(first_rows))
    np.testing.assert_array_equal(keys[reps[rep_index]], keys)
    np.testing.assert_array_equal(reps[rep_index], first_rows[inverse.reshape(-1)])
