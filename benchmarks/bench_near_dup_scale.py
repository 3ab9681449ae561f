"""Benchmark near-duplicate search at filter scale: time and peak memory from 1e5 to 1e7 keys.

Keys have the filter's real width (``KEY_COLUMNS``: three 64-bit phashes, 192 bits) and
its defaults (``FilterParams``: ``near_dup_distance``, ``mih_blocks``). They are random
but for planted structure, so true pairs exist: 2% of rows in clusters around a
centre (0 .. distance + 2 flipped bits, so some fall just outside the radius), 0.5%
in chains of consecutive rows one to three bits apart (a slow pan: the greedy pass's
longest dependency), 1% exact repeats of other rows (reused footage).

Every size runs in a fresh subprocess, so ``ru_maxrss`` is that size's own high-water
mark; "rss MB" is that mark minus the mark after the keys were made (the keys
themselves and the interpreter), "traced MB" is tracemalloc's peak during the call
(numpy reports its buffers to tracemalloc). Timed: ``mih_pairs`` (the pair search) and
``dedup`` (exact-copy collapse, MIH on the distinct keys, greedy keep/drop), each
called once. Ratios are against the first size. The pair set is checked against
``brute_pairs`` on a sample (``--sample`` random rows plus every row of a few clusters,
chains and repeats); the script exits 1 if they differ.

    python benchmarks/bench_near_dup_scale.py [--sizes 100000 1000000 10000000] [--sample 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from pipeline.core.config import FilterParams
from pipeline.curation import near_dup
from pipeline.curation.curate import KEY_COLUMNS

WORDS = len(KEY_COLUMNS)
BITS = 64 * WORDS


def flips(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """(m, WORDS) xor masks of up to counts[i] random bits (a repeated bit cancels)."""
    most = int(counts.max(initial=0))
    pos = rng.integers(0, BITS, size=(len(counts), most))
    bit = np.where(np.arange(most) < counts[:, None], np.uint64(1) << (pos % 64).astype(np.uint64), np.uint64(0))
    return np.stack([np.bitwise_xor.reduce(np.where(pos // 64 == w, bit, np.uint64(0)), axis=1)
                     for w in range(WORDS)], axis=1).astype(np.uint64)


def make_keys(n: int, distance: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Keys (see module doc) and the row groups of a few clusters, chains and repeats."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**64, size=(n, WORDS), dtype=np.uint64, endpoint=False)
    roles = rng.permutation(n)
    members, repeats = roles[: n // 50], roles[n // 50 : n // 50 + n // 100]
    centres = roles[n // 50 + n // 100 : n // 50 + n // 100 + max(1, n // 250)]
    cluster = rng.integers(0, len(centres), len(members))
    keys[members] = keys[centres[cluster]] ^ flips(rng, rng.integers(0, distance + 3, len(members)))
    originals = rng.integers(0, n, len(repeats))
    keys[repeats] = keys[originals]
    length = rng.integers(2, 41, max(1, n // 200 // 20))
    starts = np.sort(rng.choice(n - 41, len(length), replace=False)) if n > 41 else np.zeros(0, np.int64)
    chains = []
    for start, size in zip(starts, length):           # a few hundred chains, not rows
        steps = flips(rng, rng.integers(1, 4, size - 1))
        keys[start + 1 : start + size] = keys[start] ^ np.bitwise_xor.accumulate(steps, axis=0)
        chains.append(np.arange(start, start + size))
    groups = [np.r_[centres[c], members[cluster == c]] for c in range(min(20, len(centres)))]
    groups += chains[:20] + [np.r_[repeats[:200], originals[:200]]]
    return keys, groups


def sample_rows(n: int, groups: list[np.ndarray], size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return np.unique(np.concatenate([rng.choice(n, min(size, n), replace=False)] + groups))


def restricted(pairs: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """The pairs with both ends in ``rows``, renumbered as positions in ``rows``."""
    where = np.full(n, -1, np.int64)
    where[rows] = np.arange(len(rows))
    both = (where[pairs[:, 0]] >= 0) & (where[pairs[:, 1]] >= 0)
    return where[pairs[both]]


def measured(fn, *args):
    """(seconds, tracemalloc peak MB, result) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, out


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(n: int, distance: int, blocks: int, sample: int, seed: int) -> dict:
    """One size, measured in this (fresh) process."""
    keys, groups = make_keys(n, distance, seed)
    base = maxrss_mb()
    mih_s, mih_mb, pairs = measured(near_dup.mih_pairs, keys, distance, blocks)
    dedup_s, dedup_mb, found = measured(near_dup.dedup, keys, distance, blocks)
    rss = maxrss_mb() - base
    rows = sample_rows(n, groups, sample, seed)
    brute = near_dup.brute_pairs(keys[rows], distance)
    brute = brute[np.lexsort((brute[:, 1], brute[:, 0]))]
    mine = restricted(pairs, rows, n)
    return {"n": n, "pairs": len(pairs), "dropped": int(found.dropped.sum()), "mih_s": mih_s,
            "dedup_s": dedup_s, "mih_mb": mih_mb, "dedup_mb": dedup_mb, "rss_mb": rss,
            "keys_mb": keys.nbytes / 2**20, "sample": len(rows), "sample_pairs": len(brute),
            "same": bool(mine.shape == brute.shape and np.array_equal(mine, brute))}


def report(results: list[dict]) -> None:
    first = results[0]
    print("| n | pairs | dropped | mih s | dedup s | mih t/t0 | dedup t/t0 | keys MB | rss MB | "
          "traced MB mih | traced MB dedup | mem/mem0 | sample (pairs) | same pairs |")
    print("|" + "---|" * 14)
    for r in results:
        print(f"| {r['n']:,} | {r['pairs']:,} | {r['dropped']:,} | {r['mih_s']:.2f} | {r['dedup_s']:.2f} | "
              f"{r['mih_s'] / first['mih_s']:.1f} | {r['dedup_s'] / first['dedup_s']:.1f} | "
              f"{r['keys_mb']:.0f} | {r['rss_mb']:.0f} | {r['mih_mb']:.0f} | {r['dedup_mb']:.0f} | "
              f"{r['dedup_mb'] / first['dedup_mb']:.1f} | {r['sample']:,} ({r['sample_pairs']:,}) | {r['same']} |")


def main() -> int:
    defaults = FilterParams()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--distance", type=int, default=defaults.near_dup_distance)
    parser.add_argument("--blocks", type=int, default=defaults.mih_blocks)
    parser.add_argument("--sample", type=int, default=20_000, help="random rows checked by brute force")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)   # one size, JSON out
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.distance, args.blocks, args.sample, args.seed)))
        return 0
    print(f"keys: {BITS} bits, distance <= {args.distance}, {args.blocks} MIH blocks")
    results = []
    for n in args.sizes:
        command = [sys.executable, sys.argv[0], "--worker", str(n), "--distance", str(args.distance),
                   "--blocks", str(args.blocks), "--sample", str(args.sample), "--seed", str(args.seed)]
        results.append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
    report(results)
    if not all(r["same"] for r in results):
        print("MIH and brute force disagree on the sample")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
