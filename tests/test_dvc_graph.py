"""dvc.yaml stays true to the code: each stage depends on exactly the modules it imports.

A stage whose imported module is missing from its deps would not re-run when that module
changes; a stale extra dep re-runs it for nothing. Both are caught here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "vfi")
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _module_file(name: str) -> Path | None:
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
    return {n for n in found if _module_file(n) is not None}


def code_deps(module: str) -> set[str]:
    """Repo-relative files a module needs, transitively; a package counts as its folder."""
    todo, seen = [module], set()
    while todo:
        path = _module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_imports(path))
    out = set()
    for path in seen:
        rel = path.relative_to(ROOT).as_posix()
        if rel.endswith("__init__.py") and rel.count("/") == 1:
            continue  # the top-level package markers are empty
        parts = rel.split("/")
        out.add("/".join(parts[:2]) if len(parts) > 2 else rel)
    return out


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_match_imports(name: str):
    stage = STAGES[name]
    module = re.match(r"python -m ([\w.]+)", stage["cmd"]).group(1)
    declared = {d for d in stage["deps"] if d.startswith(tuple(f"{p}/" for p in PACKAGES))}
    assert declared == code_deps(module), f"{name}: dvc.yaml deps differ from the imports"
