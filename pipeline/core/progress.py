"""Progress for long work: a tqdm bar in a terminal, a few plain lines in a log.

:func:`progress` is the one way the project shows progress, chosen by where output goes:

- a terminal (``stream.isatty()``): a real tqdm bar (``dynamic_ncols``), so log lines
  printed through ``pipeline.core.logs.TqdmHandler`` do not tear it;
- anything else: plain lines, never a carriage return: ``shard: 25% (570/2279 sample)
  3.1 s`` at 25, 50, 75 and 100 % when the total is known, else ``filter: 12 source
  31.0 s`` after 15 s and then at doubling intervals (15, 45, 105, 225 s ...); one last
  line on close when the last line printed is not the final count;
- ``enabled=False``: nothing at all (library functions are quiet by default).

It works as tqdm does: wrap an iterable (counted after each item, closed when the loop
ends), or use it as a context manager and call ``update(n)``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

MILESTONES = (25, 50, 75, 100)  # percent at which a log gets a line, total known
FIRST_INTERVAL_S = 15.0  # total unknown: first line after this, then at doubling intervals


class Progress:
    """Counts work done; this base shows nothing (``enabled=False``)."""

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, desc: str,
                 unit: str) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = 0
        self.closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.n += n

    def close(self) -> None:
        """End the display (idempotent); the loop over a wrapped iterable calls it."""
        self.closed = True

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError(f"progress {self.desc!r}: no iterable to loop over")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _Bar(Progress):
    """A tqdm bar on a terminal."""

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, desc: str, unit: str,
                 stream: TextIO) -> None:
        super().__init__(iterable, total, desc, unit)
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        super().update(n)
        self.bar.update(n)

    def close(self) -> None:
        if not self.closed:
            self.bar.close()
        super().close()


class _Lines(Progress):
    """A few plain lines, for a log (see the module doc for when they come)."""

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, desc: str, unit: str,
                 stream: TextIO) -> None:
        super().__init__(iterable, total, desc, unit)
        self.stream = stream
        self.start = time.monotonic()
        self.shown = -1  # the count of the last line printed
        self.milestone = 0  # the last percent milestone printed
        self.interval = FIRST_INTERVAL_S
        self.due = self.start + self.interval

    def update(self, n: int = 1) -> None:
        super().update(n)
        if self.total:
            done = 100 * self.n / self.total
            reached = [m for m in MILESTONES if self.milestone < m <= done]
            if reached:
                self.milestone = reached[-1]
                self._line()
        elif time.monotonic() >= self.due:
            self._line()
            self.interval *= 2
            self.due = time.monotonic() + self.interval

    def close(self) -> None:
        if not self.closed and self.shown != self.n:
            self._line()
        super().close()

    def _line(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.total:
            count = f"{100 * self.n // self.total}% ({self.n}/{self.total} {self.unit})"
        else:
            count = f"{self.n} {self.unit}"
        print(f"{self.desc}: {count} {elapsed:.1f} s", file=self.stream, flush=True)
        self.shown = self.n


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed file
        return False


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str,
             unit: str = "it", enabled: bool = True, stream: TextIO | None = None) -> Progress:
    """Progress over ``iterable`` or ``total`` units, shown on ``stream`` (default stderr).

    ``total`` defaults to ``len(iterable)`` when it has one. See the module doc for what
    a terminal, a log and ``enabled=False`` get.
    """
    if total is None and iterable is not None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if not enabled:
        return Progress(iterable, total, desc, unit)
    stream = stream if stream is not None else sys.stderr
    if _is_terminal(stream):
        return _Bar(iterable, total, desc, unit, stream)
    return _Lines(iterable, total, desc, unit, stream)
