"""An engine that records what it ran, for tests of what a re-run does again."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.engine.local import LocalEngine


class CountingEngine(LocalEngine):
    """The local engine, remembering the name (``name(item)``) of each item it ran."""

    def __init__(self, name: Callable[[object], str] = lambda item: item.src.name) -> None:
        self.name = name
        self.ran: list[str] = []

    def map(self, fn, items):
        self.ran += [self.name(item) for item in items]
        return super().map(fn, items)
