"""Per-source part files beside a stage's output: named, published atomically, pruned.

A part is one source's result, written by whoever ran the source (this process, or a
Ray worker on another node sharing the filesystem), as a folder
``{parts}/{source}-{fingerprint}/``, filled under a temporary name and renamed into
place: it exists whole or not at all. A killed run leaves its finished parts and the
next run skips their sources; the stage merges the parts, in source order, into its
usual tables, the same bytes whichever engine wrote them and however many runs it took.
Parts live in ``data/cache/parts/{output name}/`` (:func:`default_parts_dir`), not in the
output, which dvc deletes before it runs the stage. :func:`fingerprint` hashes what the
part depends on: the source's inputs (its row, its file's sha256 and decode filter),
the stage's params, and the code of the module that writes the part with everything it
imports (:func:`code_version`). Same inputs, same name; anything changed, a new name
(the stale part is pruned when the stage merges). Why outside the output: docs/NOTES.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydantic

from pipeline.core.code import ROOT, module_closure

CACHE_DIR = Path("cache") / "parts"
_TEMP_PREFIX = "."


def default_parts_dir(out_dir: Path) -> Path:
    """``data/analysis`` -> ``data/cache/parts/analysis``: beside the output, not in it."""
    out_dir = Path(out_dir)
    return out_dir.parent / CACHE_DIR / out_dir.name


@lru_cache(maxsize=None)
def code_version(module: str) -> str:
    """sha256 of the project files ``module`` imports (path and bytes): a part is stale
    when the code that wrote it changed, and only then (a model key or another stage's
    module leaves it valid)."""
    digest = hashlib.sha256()
    for path in module_closure(module):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """JSON-ready form of params models, dataclasses, paths and numpy scalars."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def fingerprint(stage: str, *inputs: Any, code: str) -> str:
    """16 hex digits naming a part: the stage, its inputs and the version of ``code``,
    the module that writes the part (with everything it imports)."""
    text = json.dumps([stage, code_version(code), *(_plain(v) for v in inputs)], sort_keys=True,
                      default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PartStore:
    """The parts folder of one stage output (``root``)."""

    root: Path

    @classmethod
    def beside(cls, out_dir: Path, parts_dir: Path | None = None) -> PartStore:
        """The store of ``out_dir`` (``parts_dir`` given: that folder instead)."""
        return cls(Path(parts_dir) if parts_dir is not None else default_parts_dir(out_dir))

    def path(self, name: str, fp: str) -> Path:
        return self.root / f"{name}-{fp}"

    def done(self, name: str, fp: str) -> bool:
        return self.path(name, fp).is_dir()

    def prune(self, keep: Iterable[Path]) -> int:
        """Delete every entry of the parts folder not in ``keep`` (stale parts, temp
        leftovers of killed runs): the cache holds this run's parts only."""
        wanted = {Path(p).name for p in keep}
        removed = 0
        if not self.root.is_dir():
            return 0
        for entry in sorted(self.root.iterdir()):
            if entry.name not in wanted:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed += 1
        return removed


class PartWriter:
    """Fill ``dest``'s temporary sibling, then publish it with one rename.

    Use as a context manager; on an exception the temporary folder is removed and
    ``dest`` is untouched. If ``dest`` appeared meanwhile (a retried task that both
    finished), the first one stays: both hold the same bytes by construction.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = Path(dest)
        self.tmp = self.dest.with_name(f"{_TEMP_PREFIX}{self.dest.name}.{os.getpid()}.tmp")

    def __enter__(self) -> Path:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        for path in self.tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        try:
            os.rename(self.tmp, self.dest)
        except OSError:
            if not self.dest.is_dir():
                raise
            shutil.rmtree(self.tmp, ignore_errors=True)
