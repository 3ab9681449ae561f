"""``inbetweener unpack``: shards to an ATD-style folder that the benchmark reads back."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from support.training import write_tiny_shards

from inbetweener.cli import main


def stored_frames(shards: Path, split: str) -> dict[str, dict[str, bytes]]:
    """key -> {member suffix: bytes}, read straight from the tar (the ground truth)."""
    out: dict[str, dict[str, bytes]] = {}
    with tarfile.open(shards / split / f"{split}-000000.tar") as tar:
        for member in tar.getmembers():
            key, _, suffix = member.name.partition(".")
            data = tar.extractfile(member)
            assert data is not None
            out.setdefault(key, {})[suffix] = data.read()
    return out


def test_unpack_writes_middle_triplets_byte_for_byte(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    shards = write_tiny_shards(tmp_path / "shards")
    assert main(["unpack", str(shards), str(tmp_path / "out")]) == 0
    truth = stored_frames(shards, "test")
    middle = {k for k, v in truth.items() if b'"t": 0.5' in v["json"]}
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == middle and 0 < len(middle) < len(truth)
    for key in middle:
        for n, member in ((1, "f0.png"), (2, "f1.png"), (3, "f2.png")):
            assert (tmp_path / "out" / key / f"frame{n}.png").read_bytes() == truth[key][member]
    assert f"{len(truth) - len(middle)} with t != 0.5 left out" in capsys.readouterr().out


def test_unpack_any_t_and_splits(tmp_path: Path) -> None:
    shards = write_tiny_shards(tmp_path / "shards")
    assert main(["unpack", str(shards), str(tmp_path / "out"), "--split", "train", "val",
                 "--any-t"]) == 0
    expected = set(stored_frames(shards, "train")) | set(stored_frames(shards, "val"))
    assert {p.name for p in (tmp_path / "out").iterdir()} == expected


def test_unpack_refuses_existing_output_and_empty_input(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    shards = write_tiny_shards(tmp_path / "shards")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["unpack", str(shards), str(out)]) == 2
    assert "exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert main(["unpack", str(tmp_path / "nothing"), str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o2").exists()
    assert main(["unpack", str(shards), str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists()


def test_unpacked_folder_is_read_by_the_benchmark(tmp_path: Path) -> None:
    shards = write_tiny_shards(tmp_path / "shards")
    main(["unpack", str(shards), str(tmp_path / "out")])
    report = tmp_path / "bench.json"
    assert main(["benchmark", "--triplets", str(tmp_path / "out"), "--methods", "blend",
                 "--json", str(report), "--quiet"]) == 0
    written = len(list((tmp_path / "out").iterdir()))
    assert json.loads(report.read_text())["methods"]["blend"]["count"] == written > 0


def test_a_split_the_folder_lacks_names_the_splits_it_has(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """An export without a test split: the message lists what it does have."""
    shards = write_tiny_shards(tmp_path / "shards", {"train": 3, "val": 2})
    assert main(["unpack", str(shards), str(tmp_path / "out")]) == 2
    assert "no test shards; it has train, val (choose with --split)" in capsys.readouterr().err
    assert main(["unpack", str(shards), str(tmp_path / "out"), "--split", "val", "--any-t"]) == 0


def test_unpack_one_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--source``: only that source's triplets (a held-out work to benchmark); a source
    the shards lack is an error that names the ones they have, and writes nothing."""
    shards = write_tiny_shards(tmp_path / "shards")
    tar = shards / "test" / "test-000000.tar"
    members, samples = [], 0
    with tarfile.open(tar) as src:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name.endswith(".json"):
                meta = json.loads(data)
                meta["source"] = "work-a" if samples % 2 else "work-b"
                data, samples = json.dumps(meta).encode(), samples + 1
            members.append((m.name, data))
    with tarfile.open(tar, "w") as dst:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    assert main(["unpack", str(shards), str(tmp_path / "a"), "--source", "work-a",
                 "--any-t"]) == 0
    truth = stored_frames(shards, "test")
    expected = {k for k, v in truth.items() if json.loads(v["json"])["source"] == "work-a"}
    assert {p.name for p in (tmp_path / "a").iterdir()} == expected
    assert 0 < len(expected) < len(truth)
    assert main(["unpack", str(shards), str(tmp_path / "c"), "--source", "work-c"]) == 2
    assert "no samples of source work-c" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
