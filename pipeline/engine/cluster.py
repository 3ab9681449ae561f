"""``engine: ray``: one Ray task per item, on a cluster joined or started here.

Which cluster (``ray.address``, then ``$RAY_ADDRESS``):

- empty: an embedded local cluster of ``ray.cluster_cpus`` CPUs (0: this machine's),
  its object store capped at ``ray.object_store_mb`` (Ray's default takes 30% of RAM),
  no dashboard, token auth off (Ray 2.60 turns it on and writes ``~/.ray/auth_token``;
  an embedded cluster is reachable from this machine only). It is shut down on close.
- ``auto``, ``host:port`` or ``ray://host:port``: join that cluster (left running).

Before ``ray.init`` the address is probed with a plain TCP connect bounded by
``ray.init_timeout``: without it, an unreachable head or a machine without loopback
makes ``init`` retry for minutes. Ray has no per-task timeout; the stage's own guard
inside each task supplies one.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from pipeline.core.config import RayParams
from pipeline.core.stage import StageError
from pipeline.engine import Outcome

log = logging.getLogger("inbetweener.engine")

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_GCS_PORT = 6379
CLIENT_ATTEMPTS = 3  # connections tried through Ray Client (RayEngine._join)


class EngineError(StageError):
    """The cluster cannot be started or reached; nothing was run (the stage exits 2
    with this message, like a config error)."""


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    """The task body: the stage function, in a Ray worker."""
    return fn(item)


def cluster_address(params: RayParams) -> str:
    """The address to join, or "" for an embedded cluster."""
    return params.address or os.environ.get("RAY_ADDRESS", "")


def probe_address(address: str, timeout: float) -> None:
    """Fail fast, with the address in the message, when nothing listens there."""
    if address == "auto":
        return  # Ray reads the running cluster's address from this machine's session
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, str(DEFAULT_GCS_PORT)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise EngineError(f"ray cluster at {address!r} not reachable within {timeout:g} s: "
                          f"{exc}") from None


def _check_loopback(timeout: float) -> None:
    """An embedded cluster talks over 127.0.0.1; say so at once if it cannot."""
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=timeout):
                pass
    except OSError as exc:
        raise EngineError(f"embedded ray cluster needs the loopback interface: {exc}") from None


def _worker_env() -> dict[str, str]:
    """What workers of an embedded cluster need to import what this driver imports
    (test modules, a checkout that is not installed): the driver's import path."""
    path = [p for p in sys.path if p and os.path.isdir(p)]
    return {"PYTHONPATH": os.pathsep.join([os.getcwd(), *path])}


class RayEngine:
    """One Ray task per item; results reported as they finish (``ray.wait``)."""

    name = "ray"

    def __init__(self, params: RayParams) -> None:
        try:
            import ray
        except ImportError:
            raise EngineError("engine: ray needs Ray: pip install -e '.[ray]' "
                              "(ray==2.60.0)") from None
        self._ray, self._params, self._owned = ray, params, False
        if not ray.is_initialized():
            self._start(cluster_address(params))

    def _start(self, address: str) -> None:
        ray, params = self._ray, self._params
        common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                                  "configure_logging": False}
        if address:
            probe_address(address, params.init_timeout)
            self._join(address, common)
            log.info("joined ray cluster %s", address)
            return
        _check_loopback(params.init_timeout)
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        cpus = params.cluster_cpus or os.cpu_count() or 1
        ray.init(num_cpus=cpus, object_store_memory=params.object_store_mb << 20,
                 runtime_env={"env_vars": _worker_env()}, **common)
        self._owned = True
        log.info("started an embedded ray cluster of %d CPU(s)", cpus)

    def _join(self, address: str, common: dict[str, Any]) -> None:
        """``ray.init`` on a running cluster; through Ray Client (``ray://``), tried up
        to CLIENT_ATTEMPTS times. The client proxy forks a server per connection, and
        that fork dies now and then before it serves (ray-project/ray#63202: an empty
        log and "Starting Ray client server failed"); a new connection forks again."""
        if not address.startswith("ray://"):
            self._ray.init(address=address, **common)
            return
        for attempt in range(1, CLIENT_ATTEMPTS + 1):
            try:
                self._ray.init(address=address, **common)
                return
            except ConnectionAbortedError as exc:
                if attempt == CLIENT_ATTEMPTS:
                    raise EngineError(f"ray client at {address} failed to start a server "
                                      f"for this driver {attempt} times: {exc}") from exc
                log.warning("ray client at %s: %s; connecting again (%d of %d)", address,
                            str(exc).splitlines()[0], attempt + 1, CLIENT_ATTEMPTS)

    def task_cpus(self) -> int:
        return max(1, int(self._params.num_cpus))

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Outcome[R]]:
        ray = self._ray
        task = ray.remote(_call).options(num_cpus=self._params.num_cpus,
                                         max_retries=self._params.max_retries)
        pending = {task.remote(fn, item): i for i, item in enumerate(items)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                yield self._outcome(index, ref)

    def _outcome(self, index: int, ref: Any) -> Outcome[Any]:
        """A task's value, or what Ray says went wrong (a dead worker, a lost node)."""
        try:
            return Outcome(index, self._ray.get(ref))
        except self._ray.exceptions.RayError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return Outcome(index, None, f"engine: {type(exc).__name__}: {reason}"[:500])

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
