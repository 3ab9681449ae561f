"""A copy of some of the project's files in a fresh folder: the end-to-end DVC tests run
there, never in the working tree."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_project_files(rels: Iterable[str], dest: Path) -> Path:
    """Copy each project-relative path in ``rels`` to the same place under ``dest``."""
    for rel in rels:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def copy_workspace(src: Path, dest: Path) -> Path:
    """A whole workspace (git repo, DVC cache, outputs) copied to ``dest``, links kept as
    links: an expensive one built once serves every test that then changes its copy."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}
