"""Atomic file output: every stage writes to a temporary name and renames when complete.

A reader (or DVC, or a re-run after a kill) therefore sees either the previous file or
the whole new one, never a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

TEMP_SUFFIX = ".tmp"


def temp_name(dest: Path) -> Path:
    """The temporary sibling of ``dest`` (same directory, so the rename is atomic)."""
    return dest.with_name(f".{dest.name}.{os.getpid()}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success fsync it and rename it to ``dest``.

    On any exception the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_parquet(df: pd.DataFrame, dest: str | os.PathLike[str]) -> None:
    """Write a table atomically, without the pandas index and with stable metadata."""
    with atomic_path(dest) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow")
