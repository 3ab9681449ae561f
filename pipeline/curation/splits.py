"""Leak-free splits: scenes that share footage form a group; a group's hash picks its split.

Near-duplicate links between triplets join their scenes into groups (union-find over
``(source, scene)``, :func:`scene_groups`), so reused footage never straddles splits.
A group's split (:func:`group_splits`, :func:`split_for`) is
``sha256(f"{seed}:{source}:{scene}")`` of its smallest member, read as a number in
[0, 1) and bucketed by the train/val/test fractions: no random state, no dependence on
processing order, and adding unrelated sources never moves an existing group.

A source may pin its footage (``sources[i].split``, carried in ``sources.parquet``):
``test`` sends every scene of it to test (a held-out work), ``train`` keeps its scenes
in train or val (the same hash, bucketed by the train:val ratio renormalised to sum to
1), ``auto`` is the rule above. A group takes its members' strongest pin, ``test`` over
``train`` over ``auto``. Why: docs/NOTES.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Mapping

from pipeline.core.config import SplitFractions

SPLITS = ("train", "val", "test")
PINS = ("auto", "train", "test")  # weakest first: a group takes its strongest member's pin
SceneKey = tuple[str, int]


class UnionFind:
    """Disjoint sets over hashable items, with path halving and union by size."""

    def __init__(self, items: Iterable[Hashable] = ()) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.size: dict[Hashable, int] = {}
        for item in items:
            self.add(item)

    def add(self, item: Hashable) -> None:
        if item not in self.parent:
            self.parent[item], self.size[item] = item, 1

    def find(self, item: Hashable) -> Hashable:
        self.add(item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def groups(self) -> list[list[Hashable]]:
        """Members of every set, each sorted, sets ordered by their smallest member."""
        found: dict[Hashable, list[Hashable]] = {}
        for item in self.parent:
            found.setdefault(self.find(item), []).append(item)
        return sorted((sorted(members) for members in found.values()), key=lambda m: m[0])


def scene_groups(scenes: Iterable[SceneKey], links: Iterable[tuple[SceneKey, SceneKey]]) -> dict[SceneKey, int]:
    """Group index of every scene: 0, 1, ... in order of each group's smallest member."""
    uf = UnionFind(scenes)
    for a, b in links:
        uf.union(a, b)
    return {member: index for index, members in enumerate(uf.groups()) for member in members}


def unit_hash(key: SceneKey, seed: int) -> float:
    """A deterministic, uniform number in [0, 1) for a scene key and seed."""
    digest = hashlib.sha256(f"{seed}:{key[0]}:{key[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_for(key: SceneKey, seed: int, fractions: SplitFractions, pinned: str = "auto") -> str:
    """The split of the group whose smallest member is ``key``, under the group's pin.

    ``test``: test. ``train``: train or val by the same hash, the train:val ratio
    renormalised (train when both fractions are 0: the pin wins over the fractions).
    ``auto``: train/val/test by ``fractions``.
    """
    if pinned not in PINS:
        raise ValueError(f"unknown split pin {pinned!r}: expected one of {', '.join(PINS)}")
    if pinned == "test":
        return "test"
    u = unit_hash(key, seed)
    if pinned == "train":
        learn = fractions.train + fractions.val
        return "train" if learn == 0 or u * learn < fractions.train else "val"
    if u < fractions.train:
        return "train"
    if u < fractions.train + fractions.val:
        return "val"
    return "test"


def strongest_pin(pins: Iterable[str]) -> str:
    """The pin a group takes from its members' pins: test over train over auto."""
    return max(pins, key=PINS.index, default="auto")


def group_splits(groups: dict[SceneKey, int], seed: int, fractions: SplitFractions,
                 pins: Mapping[str, str] | None = None) -> dict[int, str]:
    """Split of every group index, decided by the group's smallest member and the
    strongest pin of its members' sources (``pins``: source -> pin; absent is auto)."""
    pins = pins or {}
    canonical: dict[int, SceneKey] = {}
    pinned: dict[int, str] = {}
    for key, group in groups.items():
        if group not in canonical or key < canonical[group]:
            canonical[group] = key
        pinned[group] = strongest_pin((pinned.get(group, "auto"), pins.get(key[0], "auto")))
    return {group: split_for(key, seed, fractions, pinned[group]) for group, key in canonical.items()}
