"""``inbetweener benchmark`` on tiny triplet folders whose answers are known.

Without ``models/model.pt`` (every test runs in an empty folder) the default methods are
pretrained RIFE 4.25 and the baselines.

Every triplet is a pure pan: three crops of one wider texture at x offsets 0, s and 2s,
so the middle frame is exactly the midpoint and a flow method must beat the blend.
Pixel values are even, so the blend's midpoint ((a + b) / 2) is an integer and its
8-bit prediction, hence its PSNR, can be computed here independently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from support.checkpoints import tiny_flow_checkpoint

from inbetweener.cli import main
from vfi.evaluation.benchmark import discover

FAST = ["--quiet", "--threads", "1", "--dis-preset", "fast"]


def pan(shift: int, height: int, width: int, seed: int) -> list[np.ndarray]:
    """Three H x W x 3 uint8 frames of a smooth texture panned by ``shift`` px each."""
    rng = np.random.default_rng(seed)
    wide = width + 2 * shift
    coarse = rng.uniform(0, 1, ((height + 7) // 8, (wide + 7) // 8, 3)).astype(np.float32)
    tex = cv2.resize(coarse, (wide, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    tex = (np.round(tex * 127) * 2).astype(np.uint8)  # even values: exact midpoints
    return [tex[:, k * shift:k * shift + width].copy() for k in range(3)]


def save(frames: list[np.ndarray], folder: Path, names: tuple[str, str, str],
         suffix: str = ".png") -> None:
    """Write one triplet; WebP lossless and JPEG at high quality, so PNG and WebP
    decode back to the exact pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    options = {".webp": {"lossless": True}, ".jpg": {"quality": 95}}.get(suffix.lower(), {})
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(folder / f"{name}{suffix}",
                                    format=Image.registered_extensions()[suffix.lower()],
                                    **options)


ATD = ("frame1", "frame2", "frame3")
VIMEO = ("im1", "im2", "im3")


@dataclass(frozen=True)
class Case:
    """A triplet written into the test folder, and whether it must be scored."""

    key: str
    names: tuple[str, str, str]
    suffix: str = ".png"
    size: tuple[int, int] = (45, 67)  # H, W: odd on purpose
    shift: int = 4


CASES = [
    Case("atd/a_png", ATD),
    Case("atd/b_upper", ATD, ".PNG", shift=6),
    Case("atd/c_webp", ATD, ".webp", size=(33, 51)),
    Case("vimeo/00001/0001", VIMEO, size=(48, 64), shift=5),
    Case("vimeo/00002/0007", VIMEO, shift=3),
]


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.float64)


def psnr_np(pred: np.ndarray, target: np.ndarray) -> float:
    """Independent PSNR on 0-255 arrays."""
    return float(10 * np.log10(255.0 ** 2 / np.mean((pred - target) ** 2)))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five good triplets in both layouts, plus a folder of unrelated images."""
    root = tmp_path_factory.mktemp("good")
    for i, case in enumerate(CASES):
        save(pan(case.shift, *case.size, seed=i), root / case.key, case.names, case.suffix)
    save(pan(2, 20, 20, seed=9), root / "other", ("a", "b", "c"))
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained flow model: with DIS-initialised flows it reproduces DIS."""
    return tiny_flow_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(autouse=True)
def away_from_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where there is no ``models/model.pt``: the repo's own checkpoint must not
    decide what a test scores."""
    monkeypatch.chdir(tmp_path)


def run_json(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "bench.json"
    code = main(["benchmark", *args, "--json", str(out), *FAST])
    return code, json.loads(out.read_text())


def test_discovery_finds_both_layouts_in_sorted_order(good: Path) -> None:
    triplets, failures = discover(good)
    assert [t.key for t in triplets] == sorted(c.key for c in CASES)
    assert [t.layout for t in triplets] == ["atd12k"] * 3 + ["vimeo90k"] * 2
    assert triplets[1].frames[1].name == "frame2.PNG" and failures == []


def test_scores_match_independent_psnr(good: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    code, report = run_json(tmp_path, "--triplets", str(good), "--methods", "repeat,blend,dis")
    assert code == 0
    assert report["layout"] == "mixed" and report["layouts"] == {"atd12k": 3, "vimeo90k": 2}
    assert report["triplets"] == report["scored"] == 5 and report["failures"] == []
    assert set(report["methods"]) == {"repeat", "blend", "dis"}
    blend, repeat = [], []
    for case in CASES:
        f0, gt, f2 = (read(good / case.key / f"{n}{case.suffix}") for n in case.names)
        blend.append(psnr_np((f0 + f2) / 2, gt))  # integers: even pixel values
        repeat.append(psnr_np(f0, gt))
    m = report["methods"]
    assert m["blend"]["psnr"] == pytest.approx(np.mean(blend), abs=1e-3)
    assert m["repeat"]["psnr"] == pytest.approx(np.mean(repeat), abs=1e-3)
    assert m["dis"]["psnr"] > m["blend"]["psnr"] + 3  # a pure pan: flow wins clearly
    assert all(v["count"] == 5 and v["ms_per_frame"] >= 0 for v in m.values())
    table = capsys.readouterr().out
    assert "method" in table and "PSNR" in table and "ms/frame" in table
    assert "no checkpoint" not in table  # model not asked for: nothing to say


def test_checkpoint_is_used(good: Path, checkpoint: Path, tmp_path: Path) -> None:
    code, report = run_json(tmp_path, "--triplets", str(good), "--checkpoint", str(checkpoint),
                            "--methods", "model,dis", "--limit", "2")
    assert code == 0 and report["checkpoint"] == str(checkpoint)
    model, dis = report["methods"]["model"], report["methods"]["dis"]
    assert model["count"] == dis["count"] == 2
    # the untrained flow network starts at its DIS flows: the same frames, give or take
    # an 8-bit rounding step, proves the checkpoint was loaded and run
    assert model["psnr"] == pytest.approx(dis["psnr"], abs=0.3)


def test_no_default_checkpoint_skips_the_model_and_says_so(
        good: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, report = run_json(tmp_path, "--triplets", str(good), "--limit", "1")
    assert code == 0 and "model" not in report["methods"]
    assert report["checkpoint"] is None and "no checkpoint" in report["model_skipped"]
    assert set(report["methods"]) == {"rife", "repeat", "blend", "dis", "hdv3"}
    out = capsys.readouterr().out
    assert "model column skipped" in out and "\nrife " in out
    # asking for a model by name with no checkpoint anywhere is an error
    for name in ("model", "model+hdv3"):
        assert main(["benchmark", "--triplets", str(good), "--methods", name, *FAST]) == 2


def test_pretrained_rife_and_its_scale(good: Path, tmp_path: Path) -> None:
    """RIFE 4.25 is scored without any checkpoint; ``--scale`` reaches it (half-resolution
    flows give other frames) and the JSON records it."""
    scores = {}
    for scale in ("1", "0.5"):
        code, report = run_json(tmp_path, "--triplets", str(good), "--methods", "rife,blend",
                                "--limit", "2", "--scale", scale)
        assert code == 0 and report["scale"] == float(scale) and report["checkpoint"] is None
        scores[scale] = report["methods"]
    assert scores["1"]["rife"]["count"] == 2
    assert scores["1"]["rife"]["psnr"] > scores["1"]["blend"]["psnr"] + 3  # a pan: flow wins
    assert scores["0.5"]["blend"]["psnr"] == scores["1"]["blend"]["psnr"]  # not a RIFE model
    assert abs(scores["0.5"]["rife"]["psnr"] - scores["1"]["rife"]["psnr"]) > 0.1


def test_bad_triplets_are_skipped_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    save(pan(4, 45, 67, seed=0), root / "ok", ATD)
    small = pan(4, 45, 67, seed=1)
    small[1] = small[1][:40]  # the ground truth 5 rows short
    save(small, root / "mismatch", ATD)
    save(pan(4, 45, 67, seed=2), root / "corrupt", VIMEO)
    (root / "corrupt" / "im3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    save(pan(4, 8, 8, seed=3), root / "tiny", ATD)  # under DIS's 12-pixel minimum
    (root / "incomplete").mkdir()
    (root / "incomplete" / "frame1.png").write_bytes((root / "ok" / "frame1.png").read_bytes())
    code, report = run_json(tmp_path, "--triplets", str(root))
    assert code == 0 and report["scored"] == 1
    errors = {f["key"]: f["error"] for f in report["failures"]}
    assert errors["mismatch"].startswith("size_mismatch: frame1.png 67x45, frame2.png 67x40")
    assert errors["corrupt"].startswith("undecodable: im3.png")
    assert errors["tiny"] == ("method_failed: dis: "
                              "The input image must have either width or height >= 12")
    assert errors["incomplete"].startswith("incomplete: no frame2, frame3")
    assert report["triplets"] == 4 and report["skipped"] == 3 and report["incomplete"] == 1
    assert sum(report["failure_reasons"].values()) == 4
    assert list(errors) == sorted(errors)


@pytest.mark.parametrize("args", [
    pytest.param(["--triplets", "{tmp}/nowhere"], id="missing-dir"),
    pytest.param(["--triplets", "{tmp}"], id="no-triplets"),
    pytest.param(["--triplets", "{good}", "--checkpoint", "{tmp}/none.pt"], id="missing-ckpt"),
    pytest.param(["--triplets", "{good}", "--checkpoint", "{tmp}/junk.pt"], id="junk-ckpt"),
    pytest.param(["--triplets", "{good}", "--checkpoint", "{tmp}/foreign.pt"],
                 id="foreign-ckpt"),
    pytest.param(["--triplets", "{good}", "--methods", "blend,film"], id="unknown-method"),
    pytest.param(["--triplets", "{good}", "--scale", "0"], id="scale-0"),
    pytest.param(["--triplets", "{good}", "--scale", "2"], id="scale-2"),
    pytest.param(["--triplets", "{good}", "--dis-preset", "slow"], id="bad-preset"),
    pytest.param(["--triplets", "{good}", "--limit", "0"], id="bad-limit"),
])
def test_unusable_input_exits_2(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                args: list[str]) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path / "empty" if a == "{tmp}" else tmp_path, good=good)
            for a in args]
    assert main(["benchmark", *FAST, *argv, "--json", str(tmp_path / "out.json")]) == 2
    assert "inbetweener benchmark:" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_tta_and_per_triplet_rows(good: Path, tmp_path: Path) -> None:
    """``--tta`` reaches the RIFE models and is recorded; every scored triplet has its row,
    whose means are the table's, and the model's paired gains are computed from them."""
    code, plain = run_json(tmp_path, "--triplets", str(good), "--methods", "rife,blend",
                           "--limit", "2")
    code_tta, tta = run_json(tmp_path, "--triplets", str(good), "--methods", "rife,blend",
                             "--limit", "2", "--tta", "reverse")
    assert code == code_tta == 0 and plain["tta"] == "none" and tta["tta"] == "reverse"
    assert tta["methods"]["blend"] == {**plain["methods"]["blend"],
                                       "ms_per_frame": tta["methods"]["blend"]["ms_per_frame"]}
    assert tta["methods"]["rife"]["psnr"] != plain["methods"]["rife"]["psnr"]
    rows = tta["per_triplet"]
    assert len(rows) == 2 and len({r["key"] for r in rows}) == 2
    for name in ("rife", "blend"):
        mean = np.mean([r["psnr"][name] for r in rows])
        assert tta["methods"][name]["psnr"] == pytest.approx(mean, abs=1e-3)
    assert tta["model_gain"] == {}  # no model scored: nothing to pair with
    assert main(["benchmark", "--triplets", str(good), "--tta", "sideways", *FAST]) == 2


def test_model_gain_is_paired(good: Path, checkpoint: Path, tmp_path: Path) -> None:
    code, report = run_json(tmp_path, "--triplets", str(good), "--checkpoint", str(checkpoint),
                            "--methods", "model,blend", "--limit", "3")
    diffs = [r["psnr"]["model"] - r["psnr"]["blend"] for r in report["per_triplet"]]
    gain = report["model_gain"]["blend"]
    assert code == 0 and gain["mean"] == pytest.approx(np.mean(diffs), abs=1e-3)
    assert gain["ci95"] == pytest.approx(1.96 * np.std(diffs, ddof=1) / np.sqrt(3), abs=1e-3)
