"""One default, the tested one (issue 20): ``params.yaml`` is the schema's defaults, written out.

Tests, docs and ``inbetweener interpolate`` use the defaults of the schema (``pipeline/core/config.py``, ``vfi/config.py``);
``dvc repro`` uses ``params.yaml``. Where the two disagree the shipped run is not the
tested one (a ``cuts.detector: content`` here once missed every cut of a black-and-white
film). Every key must also be written in the file: dvc sees only the params written there,
so a key left unwritten could change with the code without dvc re-running its stage.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from support import REPO

from vfi.config import ProjectParams as Params
from vfi.config import load_project_params as load_params

ROOT = REPO
SECTIONS = [name for name in Params.model_fields if name != "sources"]  # sources: no defaults

# Key path -> why params.yaml keeps a value that is not the schema's default. Each entry
# is pending a change of the code default (issue 20), after which it must go: an entry
# whose key no longer differs fails test_allowed_differences_still_differ.
ALLOWED: dict[str, str] = {}


@pytest.fixture(scope="module")
def shipped() -> Params:
    return load_params(ROOT / "params.yaml")


def differences(path: str, got: Any, want: Any, written: bool) -> list[str]:
    """Key paths (with both values) where ``got`` is not ``want`` or was not written.

    ``want`` comes from the schema's own default instance, so a nested default (such as
    ``filter.split``) is compared with what the parent section really defaults to.
    """
    if not written:
        return [f"{path}: not written in params.yaml (schema default {want!r}); "
                "dvc sees only the params written there"]
    if isinstance(want, BaseModel):
        return [line for name in type(want).model_fields
                for line in differences(f"{path}.{name}", getattr(got, name),
                                        getattr(want, name), name in got.model_fields_set)]
    if got != want:
        return [f"{path}: params.yaml has {got!r}, the schema default is {want!r}"]
    return []


def section_differences(shipped: Params, section: str) -> list[str]:
    """Every difference under one top-level key of params.yaml."""
    default = Params.model_fields[section].get_default(call_default_factory=True)
    return differences(section, getattr(shipped, section), default,
                       section in shipped.model_fields_set)


def key_of(line: str) -> str:
    return line.split(":", 1)[0]


@pytest.mark.parametrize("section", SECTIONS)
def test_params_yaml_is_the_schema_defaults(shipped: Params, section: str) -> None:
    found = [d for d in section_differences(shipped, section) if key_of(d) not in ALLOWED]
    assert not found, "params.yaml and the schema (pipeline/core/config.py, vfi/config.py) disagree:\n" + "\n".join(found)


def test_allowed_differences_still_differ(shipped: Params) -> None:
    """An allow-list entry whose key now agrees (the code default was changed) is stale."""
    found = {key_of(d) for s in SECTIONS for d in section_differences(shipped, s)}
    stale = sorted(set(ALLOWED) - found)
    assert not stale, f"remove from ALLOWED, params.yaml now equals the default: {stale}"


def test_a_difference_and_a_missing_key_are_named() -> None:
    """The check itself: a changed nested value and an unwritten key fail by key path."""
    raw = {"sources": [{"name": "s", "kind": "synthetic"}],
           "filter": {"split": {"train": 0.7, "val": 0.2, "test": 0.1}}}
    found = section_differences(Params.model_validate(raw), "filter")
    assert "filter.split.train: params.yaml has 0.7, the schema default is 0.8" in found
    assert any(d.startswith("filter.seed: not written") for d in found)
    assert section_differences(Params.model_validate(raw), "cuts")[0].startswith("cuts: not written")
