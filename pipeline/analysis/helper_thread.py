"""One helper thread that applies a function to queued items in order: :class:`HelperThread`.

The analysis pass overlaps its work with decoding this way (the decoders, OpenCV and
numpy's larger operations release the GIL): the decoding loop ``put``s each frame and
one thread handles the frames in the order they came, so the results are exactly those
of calling the function inline. An error in the thread is raised in the caller's
thread by the next ``put`` or by ``join``; the queue is bounded, so memory stays flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class HelperThread:
    """Calls ``fn(*item)`` for every ``put(*item)``, in order, on one daemon thread.

    The thread starts on the first ``put``; ``join`` waits until every queued item is
    handled and raises the thread's error if there was one. After an error the thread
    keeps taking items (and drops them), so a producer never blocks on a full queue.
    """

    def __init__(self, fn: Callable[..., Any], size: int, name: str) -> None:
        if size < 1:
            raise ValueError(f"queue size must be at least 1, got {size}")
        self.fn = fn
        self._queue: queue.Queue[tuple | None] = queue.Queue(size)
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._error: BaseException | None = None
        self._started = False

    def put(self, *item: Any) -> None:
        """Queue one call's arguments (blocks while the queue is full)."""
        self._raise()
        if not self._started:
            self._thread.start()
            self._started = True
        self._queue.put(item)

    def join(self) -> None:
        """Wait until every queued item is handled; raise the thread's error if any.

        Idempotent: a second call only raises the error again.
        """
        if self._started and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.fn(*item)
                except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
