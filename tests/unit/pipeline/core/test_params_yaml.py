"""Params are read as DVC writes them (issue 21): YAML 1.2, the way ruamel.yaml reads it.

``dvc exp run -S model.lr=2e-05`` writes ``lr: 2e-05``; a YAML 1.1 reader (PyYAML) sees
the string ``"2e-05"`` and the run stopped with ``model.lr: Input should be a valid
number``. These tests pin the loader's types, check that the shipped params.yaml means
the same under both YAML versions (no key relies on 1.1's ``on``/``yes`` booleans), and
run the sweep verb exactly as typed in a small DVC repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

from pipeline.core.config import ConfigError, load_params, read_params_yaml
from vfi.config import load_project_params, load_vfi_params

ROOT = REPO


def _read(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return read_params_yaml(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("2e-05", 2e-05), ("1e-4", 1e-4), ("1.0e-5", 1e-5), (".5", 0.5), ("0.00002", 2e-05),
    ("-1e3", -1000.0), ("300", 300), ("true", True), ("false", False), ("True", True),
    ("on", "on"), ("off", "off"), ("yes", "yes"), ("no", "no"), ("auto", "auto"),
], ids=str)
def test_scalars_read_as_yaml_1_2(tmp_path: Path, text: str, expected: Any) -> None:
    got = _read(tmp_path, f"value: {text}\n")["value"]
    assert got == expected and type(got) is type(expected), f"{text!r} -> {got!r}"


def _plain(value: Any) -> bool:
    """Only builtin containers and scalars, recursively (what pydantic and == expect)."""
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list:
        return all(_plain(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


def test_the_shipped_params_are_plain_and_mean_the_same_in_yaml_1_1() -> None:
    """Plain dicts and lists, and no value whose meaning depends on the YAML version:
    the file reads the same for DVC, for the stages and for PyYAML-based tools."""
    raw = read_params_yaml(ROOT / "params.yaml")
    assert _plain(raw)
    assert raw == yaml.safe_load((ROOT / "params.yaml").read_text())


def test_a_value_dvc_writes_reaches_both_configs(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text()
    for old, new in (("  lr: 0.00001 ", "  lr: 2e-05   "), ("  scan: auto ", "  scan: off  ")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    params = load_params(path)
    assert load_project_params(path).model.lr == 2e-05 and load_vfi_params(path).model.lr == 2e-05
    assert params.download.scan == "off"  # YAML 1.1 made it False: "should be 'auto' or 'off'"


@pytest.mark.parametrize(("text", "why"), [
    ("model: {lr: [1e-5\n", "not valid YAML"),
    ("model: {lr: 1e-5}\nmodel: {lr: 2e-5}\n", "not valid YAML"),  # dvc refuses it too
])
def test_unreadable_params_are_a_config_error(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=why):
        load_vfi_params(path)


def test_a_missing_params_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")


# ------------------------------------------------------------- the verb, as typed

READER = """\
import json
from vfi.config import load_project_params, load_vfi_params

params, vfi = load_project_params(), load_vfi_params()
json.dump({"lr": params.model.lr, "vfi_lr": vfi.model.lr, "steps": vfi.train.steps},
          open("read.json", "w"))
"""
STAGE = """\
stages:
  read:
    cmd: python read_params.py
    deps: [read_params.py]
    params: [model, train.steps]
    outs: [read.json]
"""


def _sh(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def one_stage_repo(tmp_path: Path) -> Path:
    """The shipped params.yaml and one stage that reads it the way every stage does."""
    for name, text in (("params.yaml", (ROOT / "params.yaml").read_text()),
                       ("read_params.py", READER), ("dvc.yaml", STAGE)):
        (tmp_path / name).write_text(text)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        _sh(cmd, tmp_path)
    return tmp_path


def test_dvc_exp_run_set_param_as_typed(one_stage_repo: Path) -> None:
    """The sweep verb verbatim: DVC writes ``lr: 2e-05`` and the stage reads a number.
    (tests/project/test_repro.py runs it through training and checks the checkpoint.)"""
    _sh(["dvc", "exp", "run", "-S", "model.lr=2e-05", "-S", "train.steps=5"], one_stage_repo)
    assert "lr: 2e-05" in (one_stage_repo / "params.yaml").read_text()
    read = json.loads((one_stage_repo / "read.json").read_text())
    assert read == {"lr": 2e-05, "vfi_lr": 2e-05, "steps": 5}
