"""Run one unit of work in a separate process, with a timeout, and never die with it.

:func:`run_guarded` calls a picklable module-level function in a worker process and
returns a :class:`GuardResult`; a decoder that hangs, leaks or crashes becomes an error
string for that one source (an exception, a crash signal or a timeout), never an
exception in the stage, which goes on with the others.

Workers are forks of a ``forkserver``: a clean, single-threaded process that imports the
``preload`` modules once and runs with single-threaded BLAS/OpenMP (unless the user set
those variables). The result comes back pickled through a pipe, which suits a few MB
of table per source. Why each of these choices, with timings: docs/NOTES.md.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_CONTEXT = "forkserver"
_KILL_GRACE_S = 5.0  # how long to wait for a killed or finished worker to be reaped
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class GuardResult(Generic[T]):
    """``value`` when the call returned, else None and ``error`` says why."""

    value: T | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _child(conn: Connection, fn: Callable[..., Any], args: Sequence[Any]) -> None:
    """Worker body: call ``fn`` and send ("ok", value) or ("error", reason) back."""
    try:
        message: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as exc:  # the parent must hear about every failure, then we exit
        message = ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(message)
    except Exception as exc:  # e.g. an unpicklable value: report that instead
        conn.send(("error", f"result not sendable: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _exit_reason(code: int | None) -> str:
    """Describe how a worker that sent nothing ended."""
    if code is None:
        return "worker vanished without a result"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker crashed: killed by {name}"
    return f"worker exited with code {code} without a result"


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set the variables the user has not set, for the duration of the block."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _context(preload: Sequence[str]) -> mp.context.BaseContext:
    """The forkserver context, its server running (started once per process).

    ``preload`` and ``WORKER_ENV`` only take effect when the server starts, i.e. on the
    first call in a process.
    """
    ctx = mp.get_context(_CONTEXT)
    if preload:
        ctx.set_forkserver_preload(list(preload))
    with _environment(WORKER_ENV):
        forkserver.ensure_running()
    return ctx


def run_guarded(fn: Callable[..., T], args: Sequence[Any], timeout: float,
                preload: Sequence[str] = ()) -> GuardResult[T]:
    """Call ``fn(*args)`` in a worker process; kill it after ``timeout`` seconds.

    ``fn`` and ``args`` must be picklable (a module-level function). Never raises for
    what happens in the worker: an exception becomes "TypeName: message", a crash
    "worker crashed: killed by SIGSEGV", a hang "timeout after N s".
    """
    ctx = _context(preload)
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, fn, tuple(args)), daemon=True)
    proc.start()
    sender.close()  # only the child writes; EOF then means the child is gone
    try:
        return _collect(proc, receiver, timeout)
    finally:
        receiver.close()
        if proc.is_alive():
            proc.kill()
        proc.join(_KILL_GRACE_S)


def _collect(proc: mp.process.BaseProcess, receiver: Connection,
             timeout: float) -> GuardResult[Any]:
    """Wait for the worker's message (read before join, so big results cannot block)."""
    if not receiver.poll(timeout):
        proc.kill()
        return GuardResult(None, f"timeout after {timeout:g} s")
    try:
        kind, payload = receiver.recv()
    except (EOFError, OSError):
        proc.join(_KILL_GRACE_S)
        return GuardResult(None, _exit_reason(proc.exitcode))
    if kind == "ok":
        return GuardResult(payload)
    return GuardResult(None, payload)
