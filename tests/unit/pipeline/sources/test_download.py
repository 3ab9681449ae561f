"""download stage: synthetic, local and bad sources side by side; atomic outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import REPO
from support.videos import write_video

from pipeline.core.config import parse_params
from pipeline.core.tables import SOURCES_TABLE
from pipeline.sources import download
from pipeline.sources.fetch import sha256_file
from pipeline.stages import download as download_stage

TINY_SYNTH = {"kind": "synthetic", "name": "syn", "clips": 2, "seed": 3, "width": 96,
              "height": 64, "seconds": 2.0, "min_shot_seconds": 0.5, "max_shot_seconds": 1.0}


def _run(tmp_path: Path, sources: list[dict]) -> tuple[download.DownloadResult, pd.DataFrame]:
    params = parse_params({"sources": sources, "download": {"timeout": 2.0, "retries": 0}})
    raw = tmp_path / "raw"
    result = download.run_download(params, raw, root=tmp_path, partial_dir=tmp_path / "part")
    download.write_outputs(result, raw)
    return result, pd.read_parquet(raw / SOURCES_TABLE)


@pytest.fixture()
def local_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", frames=12, size=(64, 48))


def test_synthetic_and_local_sources(tmp_path: Path, local_video: Path):
    sha = sha256_file(local_video)
    result, table = _run(tmp_path, [
        TINY_SYNTH,
        {"kind": "path", "name": "local", "path": "clip.mp4", "sha256": sha, "license": "CC0",
         "split": "test"},
    ])
    assert list(table["name"]) == ["syn-00", "syn-01", "local"]
    assert list(table["split"]) == ["auto", "auto", "test"]  # each video carries its source's pin
    assert (table["status"] == "ok").all(), table["error"].tolist()
    local = table.set_index("name").loc["local"]
    assert (local["frames"], local["width"], local["height"]) == (12, 64, 48)
    assert local["sha256"] == sha and local["license"] == "CC0" and local["codec"] == "h264"
    assert local["uri"] == "clip.mp4"  # as params give it: no checkout path in the tables
    raw = tmp_path / "raw"
    assert (raw / "local.mp4").read_bytes() == local_video.read_bytes()
    truth = pd.read_parquet(raw / download.TRUTH_TABLE)
    for row in table[table["kind"] == "synthetic"].itertuples():
        assert row.frames == int((truth["clip"] == row.name).sum())
        assert (raw / row.path).is_file() and row.sha256 == sha256_file(raw / row.path)
    assert not [p for p in raw.iterdir() if p.name.startswith(".")], "temporary files left"
    # Progressive, unbarred sources: the scan columns say "nothing to do", so every reader
    # decodes them exactly as before the scan existed.
    assert (table["scan"] == "progressive").all() and (table["crop"] == "").all()
    assert (table["field_order"] == "").all() and (table["pattern"] == "").all()
    assert (table["scan_error"] == "").all()
    assert (table["out_frames"] == table["frames"]).all() and (table["out_fps"] == table["fps"]).all()


@pytest.mark.parametrize(
    ("make", "sha", "reason"),
    [
        (lambda p: p.write_bytes(b""), None, "probe: "),
        (lambda p: p.write_bytes(b"<html><body>not a video</body></html>"), None, "probe: "),
        (lambda p: write_video(p, frames=12, size=(64, 48)), "0" * 64, "sha256 mismatch"),
        (lambda p: None, None, "no such file"),
    ],
    ids=["empty", "html", "checksum", "missing"],
)
def test_bad_local_source_is_recorded_and_skipped(tmp_path: Path, local_video: Path, make, sha, reason):
    make(tmp_path / "bad.mp4")
    bad = {"kind": "path", "name": "bad", "path": "bad.mp4"} | ({"sha256": sha} if sha else {})
    result, table = _run(tmp_path, [bad, {"kind": "path", "name": "good", "path": "clip.mp4"}])
    rows = table.set_index("name")
    assert rows.loc["bad", "status"] == "error" and reason in rows.loc["bad", "error"]
    assert rows.loc["good", "status"] == "ok"
    assert not list((tmp_path / "raw").glob("bad*")), "a rejected file stayed in data/raw"
    assert "1 failed" in download_stage.summary(result)


def test_unreadable_local_file_is_recorded(tmp_path: Path, local_video: Path, monkeypatch):
    """A file the stage may not read (root ignores chmod, so the read is made to fail)."""
    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(download, "sha256_file", denied)
    result, table = _run(tmp_path, [{"kind": "path", "name": "locked", "path": "clip.mp4"}])
    assert table.loc[0, ["status", "error"]].tolist() == ["error", "cannot read: Permission denied"]


def test_download_entry_per_kind_matches_run_download(tmp_path: Path, local_video: Path):
    """run_download is expand + download_entry in order: the same rows, entry by entry."""
    from pipeline.sources.entries import expand_sources

    sources = [TINY_SYNTH, {"kind": "path", "name": "local", "path": "clip.mp4"},
               {"kind": "folder", "name": "none", "path": "missing"}]
    params = parse_params({"sources": sources})
    whole = download.run_download(params, tmp_path / "a", root=tmp_path, partial_dir=tmp_path / "p")
    parts = [download.download_entry(e, tmp_path / "b", tmp_path, tmp_path / "p", params.download)
             for e in expand_sources(params.sources, tmp_path)]
    assert [len(p.rows) for p in parts] == [2, 1, 1]
    assert parts[0].truth is not None and parts[1].truth is None
    assert pd.concat([p.truth for p in parts if p.truth is not None]).equals(
        pd.concat(whole.truth))
    assert [r.name for p in parts for r in p.rows] == [r.name for r in whole.rows]
    assert parts[2].rows[0].error == "folder: no such directory: missing"


def test_scan_params_reach_the_scan(tmp_path: Path, local_video: Path, monkeypatch):
    """``download.scan``/``crop_bars``/``scan_frames`` are passed on; off skips the scan."""
    seen = []
    real = download.scan_source

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(download, "scan_source", spy)
    params = parse_params({"sources": [{"kind": "path", "name": "local", "path": "clip.mp4"}],
                           "download": {"scan": "off", "crop_bars": "off", "scan_frames": 60}})
    result = download.run_download(params, tmp_path / "raw", root=tmp_path)
    assert seen == [{"scan": "off", "crop_bars": "off", "budget": 60}]
    assert result.rows[0].scan == "progressive" and result.rows[0].out_frames == 12


def test_stage_fails_with_summary_when_nothing_is_usable(tmp_path: Path):
    (tmp_path / "params.yaml").write_text(
        "sources:\n  - {kind: path, name: a, path: nope.mp4}\n"
        "  - {kind: path, name: b, path: nope2.mp4}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.download", "--params", "params.yaml", "--out", "raw"],
        cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert "0 usable video(s), 2 failed (no such file" in proc.stdout
    assert "no usable source" in proc.stderr
    table = pd.read_parquet(tmp_path / "raw" / SOURCES_TABLE)
    assert list(table["status"]) == ["error", "error"]


def test_config_error_exits_2_naming_the_key(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("sources:\n  - {kind: path, name: a/b, path: x}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.download", "--params", str(tmp_path / "params.yaml"),
         "--out", str(tmp_path / "raw")], capture_output=True, text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "sources[0].name: unsafe name 'a/b'" in proc.stderr
    assert not (tmp_path / "raw").exists()


def test_url_sources_mixed_faults(tmp_path: Path, local_video: Path):
    """Every fault of the fetcher, as the stage records it; the good URLs all land."""
    from support.http_server import serve

    data = local_video.read_bytes()
    truncated = data[: len(data) * 6 // 10]
    with serve({"v.mp4": data, "cut.mp4": truncated}) as srv:
        sources = [
            {"kind": "url", "name": "good", "url": srv.url("/ok/v.mp4"), "license": "CC-BY-4.0"},
            {"kind": "url", "name": "dropped", "url": srv.url("/drop/v.mp4")},
            {"kind": "url", "name": "flaky", "url": srv.url("/flaky/v.mp4"),
             "sha256": sha256_file(local_video)},
            {"kind": "url", "name": "gone", "url": srv.url("/missing")},
            {"kind": "url", "name": "page", "url": srv.url("/html")},
            {"kind": "url", "name": "blank", "url": srv.url("/empty")},
            {"kind": "url", "name": "wrongsum", "url": srv.url("/ok/v.mp4"), "sha256": "1" * 64},
            {"kind": "url", "name": "cut", "url": srv.url("/ok/cut.mp4")},
        ]
        params = parse_params({"sources": sources,
                               "download": {"timeout": 2.0, "retries": 2, "backoff": 0.0}})
        raw = tmp_path / "raw"
        result = download.run_download(params, raw, root=tmp_path, partial_dir=tmp_path / "part")
        dropped_ranges = [r.range for r in srv.requests("/drop/v.mp4")]
    rows = result.table().set_index("name")
    assert list(rows.index[rows["status"] == "ok"]) == ["good", "dropped", "flaky"]
    for name in ("good", "dropped", "flaky"):
        assert (raw / rows.loc[name, "path"]).read_bytes() == data
    assert dropped_ranges[0] is None and dropped_ranges[1].startswith("bytes=")
    assert rows.loc["good", "license"] == "CC-BY-4.0" and rows.loc["good", "frames"] == 12
    expect = {"gone": "http 404", "page": "html page", "blank": "empty body",
              "wrongsum": "sha256 mismatch", "cut": "probe: truncated"}
    for name, reason in expect.items():
        assert rows.loc[name, "error"].startswith(reason), (name, rows.loc[name, "error"])
    left = sorted(p.name for p in raw.iterdir())
    assert left == ["dropped.mp4", "flaky.mp4", "good.mp4"], left
    assert "5 failed" in download_stage.summary(result)


def test_interrupted_download_resumes_on_the_next_run(tmp_path: Path, local_video: Path):
    """Retries exhausted mid-body: the partial survives the run and the re-run resumes it."""
    from support.http_server import serve

    data = local_video.read_bytes()
    with serve({"v.mp4": data}) as srv:
        source = {"kind": "url", "name": "big", "url": srv.url("/drop/v.mp4")}
        params = parse_params({"sources": [source], "download": {"retries": 0, "backoff": 0.0}})
        first = download.run_download(params, tmp_path / "raw", partial_dir=tmp_path / "part")
        assert first.rows[0].status == "error"
        assert len(list((tmp_path / "part").iterdir())) == 1, "partial file not kept"
        second = download.run_download(params, tmp_path / "raw", partial_dir=tmp_path / "part")
        ranges = [r.range for r in srv.requests("/drop/v.mp4")]
    assert second.rows[0].status == "ok"
    assert ranges[0] is None and ranges[1] == f"bytes={len(data) // 2}-"
    assert (tmp_path / "raw" / "big.mp4").read_bytes() == data
    assert not list((tmp_path / "part").iterdir())
