"""Which project files a module runs: its static import closure inside the project.

Used to name what a result depends on: a part's fingerprint covers only the code of the
stage that wrote it (``pipeline.engine.parts``), and ``dvc.yaml``'s deps are checked
against the same closure (``tests/project/test_structure.py``). Only ``import`` statements count;
the project imports no module by a computed name.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "vfi")


def module_file(name: str) -> Path | None:
    """The file of a project module or package, or None (a name inside a module)."""
    path = ROOT / (name.replace(".", "/") + ".py")
    package = ROOT / name.replace(".", "/") / "__init__.py"
    return path if path.exists() else package if package.exists() else None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGES):
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(PACKAGES)}
    return {n for n in found if module_file(n) is not None}


@lru_cache(maxsize=None)
def module_closure(module: str) -> tuple[Path, ...]:
    """Every project file ``module`` imports, transitively, itself included (sorted)."""
    todo, seen = [module], set()
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_imports(path))
    return tuple(sorted(seen))
