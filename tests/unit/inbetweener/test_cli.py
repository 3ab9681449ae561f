"""The `inbetweener` console script."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from inbetweener.cli import main

SMALL = ["--clips", "2", "--width", "64", "--height", "48", "--seconds", "1.5",
         "--min-shot-seconds", "0.5", "--max-shot-seconds", "0.75", "--quiet"]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_synth_writes_clips_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["synth", str(tmp_path / "a"), "--seed", "5", "--name", "toon", *SMALL]) == 0
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["toon-00.mp4", "toon-01.mp4", "truth.parquet"]
    truth = pd.read_parquet(tmp_path / "a" / "truth.parquet")
    assert sorted(truth["clip"].unique()) == ["toon-00", "toon-01"]
    assert len(truth) == 2 * 36
    assert "2 clip(s), 72 frames" in capsys.readouterr().out
    # same seed, same bytes; another seed, other bytes
    main(["synth", str(tmp_path / "b"), "--seed", "5", "--name", "toon", *SMALL])
    main(["synth", str(tmp_path / "c"), "--seed", "6", "--name", "toon", *SMALL])
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["toon-00.mp4"] != _digest(tmp_path / "c")["toon-00.mp4"]


@pytest.mark.parametrize(("args", "message"), [
    (["--width", "33"], "width"),
    (["--static-prob", "2"], "static_prob"),
    (["--name", "../up"], "unsafe name"),
])
def test_synth_rejects_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture, args, message):
    assert main(["synth", str(tmp_path / "x"), *args, "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
