"""``inbetweener inspect VIDEO``, as typed, on a shipped real clip against its hand-checked
truth (``data/real/truth``): the cuts and dissolves it reports are the truth's, and its
pictures and per-frame table agree with what it prints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image
from support import REPO

from inbetweener.cli import main
from pipeline.stages.inspect_video import STAGES

ROOT = REPO
CLIP = ROOT / "data" / "real" / "copying_is_not_theft_excerpt.mp4"  # a cut and two dissolves
CUTS = pd.read_csv(ROOT / "data" / "real" / "truth" / "cuts.csv")


@pytest.fixture(scope="module")
def look(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("look") / "copying"
    capture = pytest.MonkeyPatch()
    lines: list[str] = []
    capture.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
    try:
        assert main(["inspect", str(CLIP), "--out", str(out)]) == 0
    finally:
        capture.undo()
    return out, "\n".join(lines)


def truth(kind: str) -> list[int]:
    rows = CUTS[(CUTS["clip"] == CLIP.name) & (CUTS["kind"] == kind)]
    return sorted(rows["frame"].astype(int))


def test_cuts_are_the_truths(look: tuple[Path, str]) -> None:
    out, printed = look
    frames = pd.read_csv(out / "frames.csv")
    starts = frames.loc[frames["scene"].diff().fillna(0).ne(0), "frame"].tolist()
    assert starts == truth("cut") == [647]
    assert "cuts: 1: 647 (0:26.981)" in printed


def test_dissolves_are_marked(look: tuple[Path, str]) -> None:
    """Every frame of each hand-checked dissolve is inside a reported transition."""
    out, printed = look
    frames = pd.read_csv(out / "frames.csv").set_index("frame")
    for first, last in zip(truth("dissolve_start"), truth("dissolve_end"), strict=True):
        assert frames.loc[first:last, "transition"].all(), (first, last)
        assert f"{first}-" in printed.split("transitions")[1].splitlines()[0]


def test_outputs_agree_with_the_summary(look: tuple[Path, str]) -> None:
    out, printed = look
    frames = pd.read_csv(out / "frames.csv")
    drawings = int((frames["drawing"].diff().fillna(1) != 0).sum())
    assert f"drawings: {drawings} in {len(frames)} frames" in printed
    assert "conversion repeats: none" in printed
    assert (out / "summary.txt").read_text().splitlines() == printed.splitlines()[:-1]
    shots = Image.open(out / "shots.png")
    assert shots.width > 2 * 96 and shots.height >= 96  # two shot starts side by side
    assert Image.open(out / "change.png").size == (1200, 300)


def test_missing_video_and_existing_out_are_refused(look: tuple[Path, str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    out, _ = look
    assert main(["inspect", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.mp4: no such file" in capsys.readouterr().err
    assert main(["inspect", str(CLIP), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_no_video_says_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["inspect", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "the download stage failed: source bad skipped: probe: not a media file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]  # no output, no temp left


def test_runs_the_stage_commands_dvc_runs() -> None:
    """What inspect runs is what dvc.yaml runs: the same command lines, stage by stage."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert STAGES == {name: " ".join(stages[name]["cmd"].split()) for name in STAGES}
