"""inbetweener export: query -> byte-for-byte copies of the chosen samples, with tables and card."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support.shard_inputs import ShardInputs, build_shard_inputs

from inbetweener import cli
from pipeline.core.config import ShardParams
from pipeline.dataset.manifest import (
    SPLITS,
    ShardSink,
    iter_tar_samples,
    read_wids_index,
)
from pipeline.dataset.shards import run_shard
from pipeline.dataset.subset import ExportError, licence_section, run_export
from pipeline.dataset.verify import verify
from pipeline.stages.export import main as export_main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ShardInputs:
    return build_shard_inputs(tmp_path_factory.mktemp("inputs"), clips=2)


@pytest.fixture(scope="module")
def shards(inputs: ShardInputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    run_shard(ShardParams(short_side=64, maxcount=8), inputs.raw_dir, inputs.triplets_dir, out)
    return out


def members_by_key(root: Path) -> dict[str, dict[str, bytes]]:
    return {key: members for tar in sorted(root.rglob("*.tar"))
            for key, members in iter_tar_samples(tar)}


def test_export_by_t_copies_members_byte_for_byte(shards: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = run_export(shards, "t == 0.5", SPLITS, out, maxcount=5)
    source = pd.read_parquet(shards / "manifest.parquet")
    want = source[source["t"] == 0.5]
    assert sorted(result.manifest["key"]) == sorted(want["key"]) and len(want) > 5
    original, copied = members_by_key(shards), members_by_key(out)
    assert copied.keys() == set(want["key"])
    assert all(copied[k] == original[k] for k in copied)
    assert verify(out).ok
    table = pd.read_parquet(out / "shards.parquet")
    assert table["samples"].max() <= 5
    for split in set(want["split"]):
        index = read_wids_index(out / f"{split}.json")
        assert sum(s["nsamples"] for s in index["shardlist"]) == int((want["split"] == split).sum())
    meta_cols = [c for c in source.columns if c not in ("shard", "shard_index", "tar_offset", "tar_bytes")]
    got = pd.read_parquet(out / "manifest.parquet").set_index("key").loc[want["key"], meta_cols[1:]]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want[meta_cols[1:]].reset_index(drop=True))


def test_export_by_source_and_split(shards: Path, tmp_path: Path):
    result = run_export(shards, "source == 'synthetic-01'", ["val"], tmp_path / "out")
    assert set(result.manifest["source"]) == {"synthetic-01"} and set(result.manifest["split"]) == {"val"}
    assert sorted((tmp_path / "out").rglob("*.tar")) == sorted((tmp_path / "out" / "val").glob("*.tar"))
    card = (tmp_path / "out" / "README.md").read_text()
    assert "source == 'synthetic-01'" in card and "| synthetic-01 | CC0-1.0 | inbetweener tests |" in card


def test_export_is_deterministic(shards: Path, tmp_path: Path):
    for name in ("a", "b"):
        run_export(shards, "f0 > 10", SPLITS, tmp_path / name, maxcount=7)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_unknown_column_lists_columns(shards: Path, tmp_path: Path):
    with pytest.raises(ExportError, match=r"tee.*columns are: key, shard, shard_index, .*\bt\b"):
        run_export(shards, "tee == 0.5", SPLITS, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_empty_result_is_an_error(shards: Path, tmp_path: Path):
    with pytest.raises(ExportError, match="selects no samples"):
        run_export(shards, "t > 2", SPLITS, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_non_empty_out_needs_force(shards: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty; use --force"):
        run_export(shards, "t == 0.5", SPLITS, out)
    assert (out / "keep.txt").read_text() == "mine"
    run_export(shards, "t == 0.5", SPLITS, out, force=True)
    assert not (out / "keep.txt").exists() and verify(out).ok
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_refuses_to_write_over_the_source(shards: Path):
    with pytest.raises(ExportError, match="source shards folder"):
        run_export(shards, "t == 0.5", SPLITS, shards / "sub", force=True)


def test_cli_export(shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    params = tmp_path / "params.yaml"
    params.write_text("sources: []\n")
    code = cli.main(["export", "--where", "t != 0.5", "--split", "train", "--split", "test",
                     "--out", str(tmp_path / "out"), "--shards", str(shards), "--maxcount", "3",
                     "--params", str(params)])
    got = capsys.readouterr()
    assert code == 0 and "export:" in got.out
    n = len(pd.read_parquet(tmp_path / "out" / "manifest.parquet"))
    assert f"export: 100% ({n}/{n} sample)" in got.err  # how far the copy is
    card = (tmp_path / "out" / "README.md").read_text()
    assert hashlib.sha256(params.read_bytes()).hexdigest() in card and "inbetweener version: " in card
    assert cli.main(["export", "--where", "nope > 1", "--out", str(tmp_path / "x"),
                     "--shards", str(shards)]) == 2
    assert "columns are:" in capsys.readouterr().err


def test_dvc_stage_main_replaces_its_output(shards: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(
        "sources: [{name: s, kind: synthetic}]\n"
        "export: {where: 't == 0.5', splits: [train], out: exported, maxcount: 4}\n")
    for _ in range(2):  # second run: the output exists and is replaced
        assert export_main(["--params", "params.yaml", "--shards", str(shards)]) == 0
    manifest = pd.read_parquet("exported/manifest.parquet")
    assert set(manifest["split"]) == {"train"} and set(manifest["t"]) == {0.5}
    assert verify(Path("exported")).ok


def test_copied_blocks_make_the_tars_tarwriter_would(shards: Path, tmp_path: Path):
    """Raw block copies end the archive exactly as webdataset's TarWriter does."""
    result = run_export(shards, "f0 % 2 == 0", SPLITS, tmp_path / "out", maxcount=4)
    for split in set(result.manifest["split"]):
        sink = ShardSink(tmp_path / "rewritten", split, 4, 1 << 30)
        for tar in sorted((tmp_path / "out" / split).glob("*.tar")):
            for key, members in iter_tar_samples(tar):
                sink.write({"__key__": key, **members})
        sink.close()
        for tar in sorted((tmp_path / "out" / split).glob("*.tar")):
            assert tar.read_bytes() == (tmp_path / "rewritten" / split / tar.name).read_bytes()


def test_card_lists_licences_and_their_obligations():
    manifest = pd.DataFrame({"source": ["a", "a", "b", "c"],
                             "license": ["CC BY-SA 3.0", "CC BY-SA 3.0", "public domain", "CC0-1.0"],
                             "attribution": ["Work A by Someone", "Work A by Someone", "Work B", ""]})
    text = "\n".join(licence_section(manifest))
    assert "| CC BY-SA 3.0 | Work A by Someone | 2 |" in text and "| CC0-1.0 | c | 1 |" in text
    assert "**Attribution.**" in text and "**Share-alike (CC BY-SA 3.0).**" in text
    query = text.split("`--where \"")[1].split("\"`")[0]
    assert set(manifest.query(query)["source"]) == {"b", "c"}  # the advice is a working query
    free = "\n".join(licence_section(manifest[manifest["source"] != "a"]))
    assert "Share-alike" not in free and "Attribution" not in free


def test_card_flags_a_source_without_licence(inputs: ShardInputs, tmp_path: Path):
    """A source the download stage recorded without a licence ("unknown"): its samples
    say so, and the export card names it in bold as not to be redistributed."""
    raw = tmp_path / "raw"
    shutil.copytree(inputs.raw_dir, raw)
    table = pd.read_parquet(raw / "sources.parquet")
    table.loc[table["name"] == "synthetic-01", "license"] = "unknown"
    table.to_parquet(raw / "sources.parquet", index=False)
    run_shard(ShardParams(short_side=64, maxcount=8), raw, inputs.triplets_dir, tmp_path / "shards")
    run_export(tmp_path / "shards", "", SPLITS, tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    front = card.split("---")[1]
    assert "- unknown" in front and "- cc0-1.0" in front
    notice = next(line for line in card.splitlines() if line.startswith("**No known licence"))
    assert "**No known licence: do not redistribute.** inbetweener tests" in notice
    assert "source(s) synthetic-01)" in notice and "synthetic-00" not in notice
    assert "| unknown | inbetweener tests |" in card
