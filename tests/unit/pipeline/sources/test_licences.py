"""Provenance you can rely on: a source without a licence is flagged loudly, not silently
``unknown`` (issue 21, item 6). The sample-level half (``uri``, ``sha256`` in every
sample's json and the manifest) is tested on a real shard run in ``tests/unit/pipeline/dataset/test_shards.py``,
the card's notice on a real export in ``tests/unit/pipeline/dataset/test_subset.py``."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from support.videos import write_video

from pipeline.core.config import parse_params
from pipeline.core.tables import SOURCES_TABLE
from pipeline.dataset.subset import front_matter, licence_section
from pipeline.sources import download
from pipeline.sources.licences import licence_known, normalised_licence
from pipeline.stages import download as download_stage


def _download(tmp_path: Path, sources: list[dict]) -> tuple[download.DownloadResult, pd.DataFrame]:
    params = parse_params({"sources": sources})
    raw = tmp_path / "raw"
    result = download.run_download(params, raw, root=tmp_path, partial_dir=tmp_path / "part")
    download.write_outputs(result, raw)
    return result, pd.read_parquet(raw / SOURCES_TABLE).set_index("name")


def test_the_rule():
    assert not any(map(licence_known, (None, "", "  ", "unknown", "Unknown ")))
    assert licence_known("CC BY 4.0") and licence_known("public domain (US)")
    assert normalised_licence("") == "unknown" == normalised_licence(" UNKNOWN")
    assert normalised_licence(" CC0-1.0 ") == "CC0-1.0"


def test_a_source_without_licence_is_flagged_not_refused(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture):
    """One warning per unlicensed source, naming it and the params.yaml entry to fix;
    the note is in sources.parquet and the summary counts them; nothing is refused."""
    write_video(tmp_path / "mine.mp4", frames=12, size=(64, 48))
    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "a.mp4", frames=12, size=(64, 48))
    sources = [{"kind": "path", "name": "mine", "path": "mine.mp4"},
               {"kind": "folder", "name": "shelf", "path": "clips"},
               {"kind": "path", "name": "given", "path": "mine.mp4", "license": "CC BY 4.0"}]
    with caplog.at_level(logging.WARNING, logger="inbetweener.download"):
        result, table = _download(tmp_path, sources)
    assert (table["status"] == "ok").all()  # flagged, never refused
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    for name, entry in (("mine", "mine"), ("shelf-a", "shelf")):
        text = next(w for w in warnings if w.startswith(f"source {name} "))
        assert "has no licence" in text and "license 'unknown'" in text
        assert f"set license: on the params.yaml sources entry '{entry}'" in text
        assert table.loc[name, "license"] == "unknown"
        assert f"params.yaml sources entry '{entry}'" in table.loc[name, "license_note"]
        assert "must not be redistributed" in table.loc[name, "license_note"]
    assert table.loc["given", "license"] == "CC BY 4.0" and table.loc["given", "license_note"] == ""
    assert download_stage.summary(result).endswith("; 2 without a licence (see the warnings)")


def test_an_empty_licence_is_unknown_too(tmp_path: Path):
    write_video(tmp_path / "mine.mp4", frames=12, size=(64, 48))
    _, table = _download(tmp_path, [{"kind": "path", "name": "mine", "path": "mine.mp4",
                                     "license": " "}])
    assert table.loc["mine", "license"] == "unknown" and table.loc["mine", "license_note"]


def _manifest() -> pd.DataFrame:
    return pd.DataFrame({"source": ["mine-a", "mine-a", "mine-b", "pd"],
                         "license": ["unknown", "unknown", "unknown", "public domain"],
                         "attribution": ["", "", "My clip B", "Work P"],
                         "split": ["train"] * 4})


def test_card_names_the_unlicensed_works_in_bold():
    manifest = _manifest()
    text = "\n".join(licence_section(manifest))
    notice = next(line for line in text.splitlines() if line.startswith("**No known licence"))
    assert notice.startswith("**No known licence: do not redistribute.** My clip B; mine-a (3 sample(s)")
    assert "source(s) mine-a, mine-b" in notice and "`license:`" in notice
    query = notice.split("`--where \"")[1].split("\"`")[0]
    assert set(manifest.query(query)["source"]) == {"pd"}  # the advice is a working query
    assert "No known licence" not in "\n".join(licence_section(manifest[manifest["source"] == "pd"]))


def test_front_matter_says_unknown():
    shards = pd.DataFrame({"split": ["train"]})
    header = "\n".join(front_matter(_manifest(), shards))
    assert "license:\n- other\n- unknown\n" in header
