"""params.yaml validation: every error names its key path; the shipped file is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REPO

from pipeline.core.config import ConfigError, SyntheticSource, load_params, parse_params

ROOT = REPO
GOOD_SHA = "a" * 64


def _errors(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(raw)
    return str(info.value)


def test_shipped_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params.sources[0], SyntheticSource)
    assert params.download.retries >= 0


def test_defaults_fill_missing_sections():
    params = parse_params({"sources": [{"kind": "synthetic", "name": "s"}]})
    assert params.download.timeout == 30.0
    assert params.sources[0].clip_names()[:2] == ["s-00", "s-01"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"kind": "url", "name": "a", "url": "http://h/x.mp4", "sha256": "abc"},
         "sources[1].sha256: expected 64 hex chars"),
        ({"kind": "url", "name": "a", "url": "ftp://h/x.mp4"}, "sources[1].url: expected an http"),
        ({"kind": "path", "name": "../evil", "path": "x.mp4"}, "sources[1].name: unsafe name"),
        ({"kind": "path", "name": "a/b", "path": "x.mp4"}, "sources[1].name: unsafe name"),
        ({"kind": "path", "name": "a.b", "path": "x.mp4"}, "sources[1].name: unsafe name"),
        ({"kind": "path", "name": "a", "path": "x", "colour": 1}, "sources[1].colour: unknown key"),
        ({"kind": "path", "name": "a"}, "sources[1].path: required key is missing"),
        ({"kind": "ftp", "name": "a"}, "sources[1]: unknown kind 'ftp'"),
        ({"name": "a"}, "sources[1]: missing 'kind'"),
        ({"kind": "synthetic", "name": "b", "clips": "3"}, "sources[1].clips: Input should be a valid integer"),
        ({"kind": "synthetic", "name": "b", "width": 33}, "sources[1].width: Input should be a multiple of 2"),
        ({"kind": "synthetic", "name": "b", "static_prob": 1.5}, "sources[1].static_prob: Input should be less than or equal to 1"),
        ({"kind": "synthetic", "name": "b", "min_shot_seconds": 4.0}, "min_shot_seconds must not exceed"),
        ({"kind": "synthetic", "name": "b", "seconds": 0.01}, "sources[1].seconds: gives no frame at 24 fps"),
        ({"kind": "synthetic", "name": "b", "height": 4096}, "sources[1].height: Input should be less than or equal to 2160"),
    ],
)
def test_bad_source_names_key_path(source: dict, expected: str):
    raw = {"sources": [{"kind": "synthetic", "name": "s"}, source]}
    assert expected in _errors(raw)


def test_every_problem_is_reported_at_once():
    raw = {
        "sources": [{"kind": "url", "name": "x", "url": "http://h/v", "sha256": "zz"}],
        "download": {"timeout": -1, "retires": 3},
    }
    msg = _errors(raw)
    assert "sources[0].sha256" in msg
    assert "download.timeout" in msg
    assert "download.retires: unknown key" in msg


def test_unknown_section_and_empty_sources():
    assert "extra: unknown key" in _errors({"sources": [{"kind": "synthetic", "name": "s"}], "extra": {}})
    assert "sources:" in _errors({"sources": []})


def test_clip_names_must_not_clash_with_other_sources():
    raw = {"sources": [{"kind": "synthetic", "name": "s", "clips": 2},
                       {"kind": "url", "name": "s-01", "url": "http://h/v", "sha256": GOOD_SHA}]}
    assert "sources[1].name: 's-01' clashes with sources[0]" in _errors(raw)


def test_load_params_reports_file_problems(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(bad)
