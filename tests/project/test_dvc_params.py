"""Every param is one DVC can see (issue 21).

DVC's run-cache hashes a stage's lock with some key names left out at every level
(``exclude=["size", "nfiles"]`` in ``dvc/stage/cache.py``): a param with such a name
never changes the hash, so after editing it ``dvc repro`` restores the old outputs from
the run-cache ("Stage 'shard' is cached") and the stage, with its validation, never runs.
``shard.size`` was such a key; it is now ``shard.short_side``. These tests walk
params.yaml, the schema and dvc.yaml for any such name.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from support import REPO

from pipeline.core.config import (
    ConfigError,
    Params,
    ShardParams,
    parse_params,
    read_params_yaml,
)
from pipeline.stages import shard as shard_stage

ROOT = REPO
FALLBACK = frozenset({"size", "nfiles"})  # dvc 3.x's list, if it cannot be asked


def run_cache_excluded() -> frozenset[str]:
    """The key names the installed DVC's run-cache hash leaves out, asked of DVC itself:
    its hash function is called with a stand-in for ``dict_sha256`` that records them."""
    try:
        from dvc.stage import cache
    except ImportError:
        return FALLBACK
    seen: list[frozenset[str]] = []

    def record(_data: Any, exclude: Any = (), **_: Any) -> str:
        seen.append(frozenset(exclude))
        return ""

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "dict_sha256", record)
        cache._get_cache_hash({"outs": []})
    return seen[0] if seen else FALLBACK


EXCLUDED = run_cache_excluded()


def dropped_keys(value: Any, path: str = "") -> Iterator[str]:
    """Key paths, at any depth and through lists, whose last name DVC would drop."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in EXCLUDED:
                yield where
            yield from dropped_keys(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from dropped_keys(item, f"{path}[{i}]")


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models inside a field's type (``list[Source]``, unions, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def schema_fields(model: type[BaseModel], path: str = "") -> Iterator[str]:
    """Every field path of the params schema, through nested sections and source kinds."""
    for name, field in model.model_fields.items():
        where = f"{path}.{name}" if path else name
        yield where
        for inner in _models(field.annotation):
            yield from schema_fields(inner, where)


def test_dvc_is_asked_for_its_exclusions() -> None:
    assert EXCLUDED >= FALLBACK, EXCLUDED  # dvc 3.x; a new name would widen the walks


def test_the_walk_finds_a_dropped_key_at_any_depth() -> None:
    raw = {"a": {"size": 1}, "b": [{"c": {"nfiles": 2}}], "maxsize": 3}
    assert list(dropped_keys(raw)) == ["a.size", "b[0].c.nfiles"]


def test_params_yaml_has_no_key_dvc_drops() -> None:
    found = list(dropped_keys(read_params_yaml(ROOT / "params.yaml")))
    assert not found, f"DVC's run-cache cannot see {found}: rename them"


def test_the_schema_has_no_field_dvc_drops() -> None:
    """Also keys params.yaml does not write (source kinds' optional fields)."""
    found = [p for p in schema_fields(Params) if p.rsplit(".", 1)[-1] in EXCLUDED]
    assert not found, f"DVC's run-cache cannot see {found}: rename them"


def param_keys(entry: str | dict[str, list[str]]) -> list[str]:
    """A dvc.yaml ``params`` entry's keys: ``key`` or ``{file: [key, ...]}``."""
    return [entry] if isinstance(entry, str) else [k for keys in entry.values() for k in keys]


def test_dvc_yaml_params_name_no_key_dvc_drops() -> None:
    stages = read_params_yaml(ROOT / "dvc.yaml")["stages"]
    found = [f"{name}: {key}" for name, stage in stages.items()
             for entry in stage.get("params", []) for key in param_keys(entry)
             if set(key.split(".")) & EXCLUDED]
    assert not found, found


# ------------------------------------------------------------ the renamed key

SOURCES = [{"name": "s", "kind": "synthetic"}]


def test_an_old_size_key_names_the_new_one() -> None:
    with pytest.raises(ConfigError, match=r"shard: size was renamed shard\.short_side .*"
                                          r"write short_side: 320"):
        parse_params({"sources": SOURCES, "shard": {"size": 320}})


@pytest.mark.parametrize("value", [-256, 0, 15, 4097])
def test_the_short_side_is_validated(value: int) -> None:
    with pytest.raises(ConfigError, match=r"shard\.short_side: Input should be"):
        parse_params({"sources": SOURCES, "shard": {"short_side": value}})


def test_the_shard_stage_refuses_a_bad_short_side(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The stage itself (as dvc.yaml runs it) stops with the key path, before any work."""
    text = (ROOT / "params.yaml").read_text()
    assert "  short_side: 256 " in text
    (tmp_path / "params.yaml").write_text(text.replace("  short_side: 256 ", "  short_side: -256 "))
    code = shard_stage.main(["--params", str(tmp_path / "params.yaml"), "--raw", str(tmp_path / "raw"),
                       "--triplets", str(tmp_path / "t"), "--out", str(tmp_path / "out")])
    assert code != 0
    assert "shard.short_side: Input should be greater than or equal to 16" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_python_callers_of_the_old_name_are_told_the_new_one() -> None:
    with pytest.raises(ValueError, match="size was renamed shard.short_side"):
        ShardParams(size=64)
