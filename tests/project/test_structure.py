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
from support import REPO

from pipeline.core.code import module_closure

ROOT = REPO
PACKAGES = ("pipeline", "vfi")
WHOLE_FOLDERS = ("engine", "synth")  # depended on as one folder each (a stage uses all of it)
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def code_deps(module: str) -> set[str]:
    """Repo-relative files a module needs, transitively; a package counts as its folder."""
    seen = module_closure(module)
    out = set()
    for path in seen:
        rel = path.relative_to(ROOT).as_posix()
        parts = rel.split("/")
        if parts[-1] == "__init__.py" and _docstring_only(path):
            continue  # a package marker that only says what the folder holds
        if parts[0] == "pipeline" and parts[1] not in WHOLE_FOLDERS:
            out.add(rel)  # pipeline's role folders: each module, so a stage re-runs only for its own code
        else:
            out.add("/".join(parts[:2]) if len(parts) > 2 else rel)
    return out


def _docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_match_imports(name: str):
    stage = STAGES[name]
    module = re.match(r"python -m ([\w.]+)", stage["cmd"]).group(1)
    declared = {d for d in stage["deps"] if d.startswith(tuple(f"{p}/" for p in PACKAGES))}
    assert declared == code_deps(module), f"{name}: dvc.yaml deps differ from the imports"


def _stage_modules() -> set[str]:
    """The modules dvc.yaml's commands run (``python -m X``): the stages."""
    found = (re.search(r"python -m ([\w.]+)", stage["cmd"]) for stage in STAGES.values())
    return {m.group(1) for m in found if m}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path) -> set[str]:
    """Every module name ``path`` may import (relative imports resolved): for
    ``from a.b import c`` both ``a.b`` and ``a.b.c``, since ``c`` may be a module."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return found


def test_no_module_imports_a_stage():
    """A stage module never imports another stage module: shared logic lives in a helper
    both import. Checked for every module of the packages (tests and benchmarks may
    import stages); a module may import its own package's ``__init__``."""
    stages = _stage_modules()
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = _module_name(path)
            for target in sorted(_imported_names(path) & stages):
                if target != name and not name.startswith(f"{target}."):
                    offenders.append(f"{path.relative_to(ROOT)} imports the stage {target}")
    assert not offenders, "\n".join(offenders)


# Which top-level packages each may import: the data pipeline nothing above it, the model
# package the pipeline's helpers, the command line both.
MAY_IMPORT = {"pipeline": {"pipeline"}, "vfi": {"pipeline", "vfi"},
              "inbetweener": {"pipeline", "vfi", "inbetweener"}}


def test_imports_point_one_way():
    """``pipeline`` never imports ``vfi`` or the command line, ``vfi`` never imports the
    command line (lazy imports inside functions count too)."""
    offenders = []
    for package, allowed in MAY_IMPORT.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for target in sorted(_imported_names(path)):
                top = target.split(".")[0]
                if top in MAY_IMPORT and top not in allowed:
                    offenders.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_no_test_imports_a_test():
    """Tests share builders through ``tests/support/`` (imported as ``support``), never by
    importing each other (a test module's import runs its fixtures' module-level setup
    and ties two files that should change apart), and never as a package ``tests``."""
    offenders = [f"{path.relative_to(ROOT)} imports {target}"
                 for path in sorted((ROOT / "tests").rglob("*.py"))
                 for target in sorted(_imported_names(path))
                 if target.split(".")[-1].startswith("test_") or target.split(".")[0] == "tests"]
    assert not offenders, "\n".join(offenders)


def test_tests_mirror_the_code():
    """``tests/unit/<package>/<folder>/`` exists only where ``<package>/<folder>/`` does;
    beside ``unit`` are ``support`` (builders) and ``project`` (whole-repository checks).
    (No test folder is named like a package at the top of ``tests/``, which is on the
    path: it would shadow the package for every process the tests start.)"""
    unit = ROOT / "tests" / "unit"
    stray = [path.relative_to(ROOT).as_posix() for path in sorted(unit.rglob("test_*.py"))
             if not (ROOT / path.parent.relative_to(unit)).is_dir()]
    assert not stray, f"test files in folders the code does not have: {stray}"
    top = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert top == {"unit", "project", "support"}, top
    assert not list((ROOT / "tests").glob("test_*.py")), "a test file at the top of tests/"


def _section_keys(section: str) -> set[str]:
    """The keys of one params.yaml section, from its typed schema."""
    from vfi.config import ProjectParams

    return set(ProjectParams.model_fields[section].annotation.model_fields)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_params_are_listed_by_key_where_some_keys_are_result_neutral(name: str):
    """A section with result-neutral keys (vfi.config.RESULT_NEUTRAL) is listed key by
    key, every key but those; other sections are listed whole (every key matters)."""
    from vfi.config import RESULT_NEUTRAL

    listed = [p for p in STAGES[name].get("params", []) if isinstance(p, str)]
    for section in {p.split(".")[0] for p in listed}:
        keys = {p.split(".", 1)[1] for p in listed if p.startswith(f"{section}.")}
        neutral = set(RESULT_NEUTRAL.get(section, ()))
        if neutral:
            assert section not in listed, f"{name}: lists all of {section}, neutral keys too"
            assert keys == _section_keys(section) - neutral, f"{name}: {section} keys"
        else:
            assert section in listed and not keys, f"{name}: {section} should be whole"


# pipeline's folders, lowest first: a module imports only its own folder and those before
# it, so the tree reads bottom-up (docs/ARCHITECTURE.md draws it).
LAYERS = ("core", "engine", "media", "synth", "sources", "analysis", "curation", "dataset", "stages")


def test_pipeline_layers_point_down():
    """Every ``pipeline`` module sits in a role folder and imports no folder above its own."""
    offenders = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if len(parts) == 2:
            assert parts[1] == "__init__.py", f"{path.relative_to(ROOT)}: not in a role folder"
            continue
        mine = LAYERS.index(parts[1])
        for target in sorted(_imported_names(path)):
            folder = target.split(".")[1] if target.startswith("pipeline.") else None
            if folder in LAYERS and LAYERS.index(folder) > mine:
                offenders.append(f"{path.relative_to(ROOT)} imports {target} (a layer above)")
    assert not offenders, "\n".join(offenders)


def test_the_architecture_module_map_is_current():
    """docs/ARCHITECTURE.md's module map is the tree's (regenerate it with
    ``python tests/support/module_map.py``)."""
    from support import module_map

    text = module_map.DOC.read_text()
    assert module_map.render(text) == text, "stale module map: run python tests/support/module_map.py"


DOCSTRING_LINES = 15  # a module docstring states its interface; measurements live in docs/


def test_module_docstrings_are_short():
    """Every module of the three packages opens with a docstring of at most
    ``DOCSTRING_LINES`` lines (history and figures belong in docs/NOTES.md)."""
    long = []
    for package in (*PACKAGES, "inbetweener"):
        for path in sorted((ROOT / package).rglob("*.py")):
            doc = ast.get_docstring(ast.parse(path.read_text()), clean=False)
            if doc is not None and len(doc.splitlines()) > DOCSTRING_LINES:
                long.append(f"{path.relative_to(ROOT)}: {len(doc.splitlines())} lines")
    assert not long, "\n".join(long)
