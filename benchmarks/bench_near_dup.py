"""Benchmark near-duplicate search: multi-index hashing against numpy all-pairs.

Keys are 192-bit triplet keys (three 64-bit phashes): random keys plus planted
near-duplicates (1% of the rows copied with up to ``distance + 2`` flipped bits, so some
fall just outside the radius). For every size both methods run in the same process, the
pair sets are compared (they must be equal: MIH with blocks > distance is exhaustive),
and the ratio brute / MIH is printed, with each method's time per key: flat for MIH
(linear), growing with n for brute force (quadratic). 10^5 keys take about a minute of
brute force.

    python benchmarks/bench_near_dup.py [--sizes 1000 10000 100000] [--distance 6 --blocks 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline.curation.near_dup import brute_pairs, mih_pairs

WORDS = 3


def make_keys(n: int, distance: int, seed: int) -> np.ndarray:
    """Random keys with 1% planted near-duplicates (0 .. distance + 2 flipped bits)."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**64, size=(n, WORDS), dtype=np.uint64, endpoint=False)
    count = max(1, n // 100)
    src, dst = rng.choice(n, size=(2, count), replace=False)
    keys[dst] = keys[src]
    for row in dst:
        for bit in rng.choice(WORDS * 64, int(rng.integers(0, distance + 3)), replace=False):
            keys[row, bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return keys


def timed(fn, *args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def canonical(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in pairs}


def run(sizes: list[int], distance: int, blocks: int, seed: int) -> None:
    print(f"keys: {WORDS * 64} bits, distance <= {distance}, {blocks} MIH blocks; 1% planted near-duplicates")
    print(f"{'n':>8} {'pairs':>6} {'mih s':>8} {'brute s':>8} {'brute/mih':>10} {'mih us/key':>11} "
          f"{'brute us/key':>13}  same pairs")
    for n in sizes:
        keys = make_keys(n, distance, seed)
        mih_s, mih = timed(mih_pairs, keys, distance, blocks)
        brute_s, brute = timed(brute_pairs, keys, distance)
        same = canonical(mih) == canonical(brute)
        print(f"{n:>8} {len(mih):>6} {mih_s:>8.3f} {brute_s:>8.3f} {brute_s / mih_s:>10.1f} "
              f"{1e6 * mih_s / n:>11.2f} {1e6 * brute_s / n:>13.2f}  {same}")
        if not same:
            raise SystemExit("MIH and brute force disagree")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 30_000, 100_000])
    parser.add_argument("--distance", type=int, default=6)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run(args.sizes, args.distance, args.blocks, args.seed)


if __name__ == "__main__":
    main()
