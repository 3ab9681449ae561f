"""Multi-index hashing: exhaustive (same pairs as brute force), correct bit blocks, and
the greedy keep-the-first de-duplication the filter relies on."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.near_dup import (
    block_bounds,
    block_values,
    brute_pairs,
    dedup,
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
