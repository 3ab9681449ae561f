"""Where the per-source work of download, detect_cuts and shard runs (``engine`` param).

A stage hands the engine a picklable module-level function and one item per source;
the engine calls it once per item and reports each result as it finishes: ``local``
(:class:`pipeline.engine.local.LocalEngine`, one call after another in the stage's
process, no Ray) or ``ray`` (:class:`pipeline.engine.cluster.RayEngine`, one Ray task
per item with ``ray.num_cpus`` CPUs). The function runs its risky part inside the guard
(``pipeline.core.guard``), so a hang or a crash comes back as a recorded value on either
engine; a Ray worker killed under the task comes back as an :class:`Outcome` with
``error`` set, recorded for that source. Each function writes its source's result as a
part (``pipeline.engine.parts``); the stage merges the parts in source order, so the
tables are the same bytes whichever engine ran them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pipeline.core.config import Params

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """One item's result: ``value`` when the function returned, else ``error``."""

    index: int
    value: R | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class Engine(Protocol):
    """Runs ``fn(item)`` for every item; yields outcomes in completion order."""

    name: str

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Outcome[R]]: ...

    def task_cpus(self) -> int:
        """Threads one item's work may use (encoder pools size themselves by it)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Engine: ...

    def __exit__(self, *exc: object) -> None: ...


def make_engine(params: Params | None) -> Engine:
    """The engine ``params.engine`` names (local when ``params`` is None)."""
    if params is None or params.engine == "local":
        from pipeline.engine.local import LocalEngine

        return LocalEngine()
    from pipeline.engine.cluster import RayEngine

    return RayEngine(params.ray)


def engine_map(engine: Engine | None, fn: Callable[[T], R], items: Sequence[T]
               ) -> Iterator[Outcome[R]]:
    """``engine.map``, with None meaning the local engine (what tests and old callers pass)."""
    if engine is None:
        from pipeline.engine.local import LocalEngine

        engine = LocalEngine()
    return engine.map(fn, items)


def run_all(engine: Engine, fn: Callable[[T], R], items: Sequence[T],
            on_done: Callable[[Outcome[R]], Any] | None = None) -> list[Outcome[R]]:
    """Every item's outcome, in item order (whatever order they finished in)."""
    out: list[Outcome[R] | None] = [None] * len(items)
    for outcome in engine.map(fn, items):
        out[outcome.index] = outcome
        if on_done is not None:
            on_done(outcome)
    missing = [i for i, o in enumerate(out) if o is None]
    if missing:  # an engine that drops an item is a bug: never let it pass silently
        raise RuntimeError(f"engine {engine.name} returned no outcome for item(s) {missing}")
    return out  # type: ignore[return-value]
