"""``engine: local``: every item in this process, one after another (no Ray import)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from pipeline.engine import Outcome

T = TypeVar("T")
R = TypeVar("R")


class LocalEngine:
    """Calls ``fn(item)`` in order. An exception from ``fn`` (a bug: stage functions
    record their failures as values) propagates, as it would without an engine."""

    name = "local"

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Outcome[R]]:
        for index, item in enumerate(items):
            yield Outcome(index, fn(item))

    def task_cpus(self) -> int:
        return os.cpu_count() or 1

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
