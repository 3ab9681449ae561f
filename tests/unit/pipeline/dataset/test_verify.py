"""inbetweener verify: every kind of damage is found and reported as (file, key, problem)."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from support.shard_inputs import build_shard_inputs

from inbetweener import cli
from pipeline.core.config import ShardParams
from pipeline.dataset.shards import run_shard
from pipeline.dataset.verify import Problem, verify

SHARD = "val/val-000000.tar"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = build_shard_inputs(tmp_path_factory.mktemp("inputs"), clips=1)
    out = tmp_path_factory.mktemp("shards") / "shards"
    run_shard(ShardParams(short_side=64, maxcount=6), inputs.raw_dir, inputs.triplets_dir, out)
    return out


@pytest.fixture
def copy(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "shards"))


def member(path: Path, suffix: str, nth: int = 1) -> tarfile.TarInfo:
    """The ``nth`` member of a tar whose name ends with ``suffix``."""
    with tarfile.open(path) as tar:
        return [m for m in tar.getmembers() if m.name.endswith(suffix)][nth]


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def problems_of(root: Path) -> list[Problem]:
    result = verify(root)
    assert not result.ok
    return result.problems


def test_good_folder_passes(good: Path, capsys: pytest.CaptureFixture):
    assert verify(good).ok
    assert cli.main(["verify", str(good)]) == 0
    assert capsys.readouterr().out.strip().endswith(": OK")


def test_flipped_byte_in_an_image(copy: Path):
    info = member(copy / SHARD, ".f1.png")
    key = info.name.split(".")[0]
    flip(copy / SHARD, info.offset_data + info.size // 2)
    problems = problems_of(copy)
    assert Problem(SHARD, "", "sha256 does not match shards.parquet") in problems
    assert any(p.key == key and p.problem.startswith("f1.png does not decode") for p in problems)


def test_flipped_byte_in_the_png_header_is_a_decode_failure(copy: Path):
    info = member(copy / SHARD, ".f0.png")
    flip(copy / SHARD, info.offset_data + 1)  # the PNG signature
    problems = problems_of(copy)
    assert any(p.problem.startswith("f0.png does not decode") for p in problems)


def test_flipped_byte_in_json(copy: Path):
    info = member(copy / SHARD, ".json")
    flip(copy / SHARD, info.offset_data)  # the opening brace
    problems = problems_of(copy)
    assert any(p.key == info.name.split(".")[0] and "json does not parse" in p.problem
               for p in problems)


def test_truncated_tar(copy: Path):
    path = copy / SHARD
    info = member(path, ".f2.png", nth=3)
    path.write_bytes(path.read_bytes()[: info.offset_data + 100])
    problems = problems_of(copy)
    assert any(p.file == SHARD and p.problem.startswith("size ") for p in problems)
    assert any(p.problem.startswith("truncated or corrupt tar") for p in problems)
    assert any(p.problem == "sample in manifest but not in shard" for p in problems)


def test_missing_member(copy: Path):
    path = copy / SHARD
    drop = member(path, ".f1.png", nth=2).name
    with tarfile.open(path) as src:
        kept = [(m, src.extractfile(m).read()) for m in src.getmembers() if m.name != drop]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as dst:
        for info, data in kept:
            dst.addfile(info, io.BytesIO(data))
    problems = problems_of(copy)
    assert Problem(SHARD, drop.split(".")[0], "missing member f1.png") in problems


def test_missing_shard_file(copy: Path):
    (copy / SHARD).unlink()
    assert Problem(SHARD, "", "missing shard file") in problems_of(copy)


def test_extra_unlisted_shard(copy: Path, capsys: pytest.CaptureFixture):
    shutil.copyfile(copy / SHARD, copy / "val" / "val-000099.tar")
    assert problems_of(copy) == [Problem("val/val-000099.tar", "", "shard not listed in shards.parquet")]
    assert cli.main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "val/val-000099.tar\t-\tshard not listed in shards.parquet" in out
    assert "1 problem(s)" in out


def test_missing_tables(tmp_path: Path):
    assert problems_of(tmp_path) == [Problem("manifest.parquet", "", "missing table")]


def test_verify_shows_progress_unless_quiet(good: Path, capsys: pytest.CaptureFixture):
    """A long check says how far it is (plain lines when not a terminal, as in a log)."""
    total = len(pd.read_parquet(good / "manifest.parquet"))
    assert cli.main(["verify", str(good)]) == 0
    err = capsys.readouterr().err
    assert f"verify: 100% ({total}/{total} sample)" in err
    assert cli.main(["verify", str(good), "--quiet"]) == 0
    assert "verify:" not in capsys.readouterr().err
