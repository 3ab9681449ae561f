"""The module map of docs/ARCHITECTURE.md, rendered from the tree itself: one row per
folder of ``pipeline``, ``vfi`` and ``inbetweener`` with its package docstring and its
modules. ``python tests/support/module_map.py`` rewrites the section between the
markers; ``tests/project/test_structure.py`` fails when it is stale."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "ARCHITECTURE.md"
START, END = "<!-- module-map:start -->", "<!-- module-map:end -->"
PACKAGES = ("inbetweener", "pipeline", "vfi")


def _doc(path: Path) -> str:
    text = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(text.split("\n\n")[0].split()).replace("|", "\\|")


def rows() -> list[str]:
    out = ["| folder | what it holds | modules |", "|---|---|---|"]
    for package in PACKAGES:
        folders = sorted({p.parent for p in (REPO / package).rglob("*.py")} - {REPO / package / "__pycache__"})
        for folder in folders:
            init = folder / "__init__.py"
            modules = sorted(p.stem for p in folder.glob("*.py") if p.name != "__init__.py")
            names = ", ".join(f"`{m}`" for m in modules) or "–"
            out.append(f"| `{folder.relative_to(REPO).as_posix()}/` | {_doc(init) if init.exists() else ''} | {names} |")
    return out


def render(text: str) -> str:
    """``text`` with the section between the markers replaced by the current map."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n" + "\n".join(rows()) + f"\n{END}{tail}"


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    sys.exit(0)
