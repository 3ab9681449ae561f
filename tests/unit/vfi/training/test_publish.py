"""A run publishes ``model.pt`` only when it completes: an interrupted run (an exception
at step k, a SIGKILL, a kill while publishing) leaves the published model byte for byte,
and resumes; a completed one replaces it atomically and keeps the old one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from support import REPO
from support.training import tiny_params, write_tiny_shards

from vfi.config import VfiParams
from vfi.inference.checkpoint import (
    CHECKPOINT_NAME,
    PREVIOUS_NAME,
    RESUME_NAME,
    RUN_DIR,
    read_checkpoint,
    save_checkpoint,
)
from vfi.training import publish as publishing
from vfi.training.loop import train

ROOT = REPO
KILL_TIMEOUT = 120  # seconds for the CLI run to write its first state


class Killed(RuntimeError):
    """Stands in for a kill (SIGINT from Ctrl-C, SIGKILL) at a chosen point."""


def kill_at(k: int) -> Callable[[int, float], None]:
    """An ``on_step`` hook that stops the run right after optimizer step ``k``."""
    def hook(step: int, loss: float) -> None:
        if step == k:
            raise Killed(f"killed at step {k}")
    return hook


def other(params: VfiParams, **train: Any) -> VfiParams:
    """``params`` with some ``train`` keys changed (another experiment)."""
    return params.model_copy(update={"train": params.train.model_copy(update=train)})


def snapshot(out: Path) -> dict[str, bytes]:
    """Every published file's bytes (the run folder left out)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def unvalidated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards without a val split: the kept weights are the latest, so ``model.pt`` is
    the trained end of the run (and shows whether a resumed run ends the same)."""
    return write_tiny_shards(tmp_path_factory.mktemp("noval"), {"train": 6, "test": 1})


@pytest.fixture(scope="module")
def published(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed 4-step run's folder: the "300-step model" of the report."""
    out = tmp_path_factory.mktemp("published") / "models"
    train(tiny_params(steps=4), shards, out)
    return out


def copy_of(published: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A fresh copy of the published folder and its files' bytes."""
    out = tmp_path / "models"
    shutil.copytree(published, out)
    return out, snapshot(out)


def test_interrupted_experiment_leaves_the_model_then_resumes(
        shards: Path, published: Path, tmp_path: Path) -> None:
    """The reported failure: another experiment, interrupted, must leave model.pt and
    last.pt byte-identical; running it again resumes it and then publishes."""
    out, before = copy_of(published, tmp_path)
    assert set(before) == {CHECKPOINT_NAME, RESUME_NAME}
    experiment = other(tiny_params(steps=6), seed=1)
    with pytest.raises(Killed):
        train(experiment, shards, out, on_step=kill_at(3))
    assert snapshot(out) == before
    assert read_checkpoint(out / RUN_DIR / RESUME_NAME)["step"] == 2

    rest = train(experiment, shards, out)
    assert rest.start_step == 2 and rest.step == 6
    after = snapshot(out)
    assert after[PREVIOUS_NAME] == before[CHECKPOINT_NAME]  # the old model, kept
    assert after[CHECKPOINT_NAME] != before[CHECKPOINT_NAME]
    assert read_checkpoint(out / CHECKPOINT_NAME)["train_config"]["seed"] == 1
    assert read_checkpoint(out / RESUME_NAME)["step"] == 6
    assert not (out / RUN_DIR).exists()


def test_resumed_run_publishes_the_bytes_of_an_uninterrupted_one(
        unvalidated: Path, tmp_path: Path) -> None:
    """Killed at step 5 (state at 4), resumed: model.pt is byte-identical to the one an
    uninterrupted run publishes, and here model.pt is the trained end of the run."""
    params = tiny_params(steps=8)
    full = train(params, unvalidated, tmp_path / "full")
    with pytest.raises(Killed):
        train(params, unvalidated, tmp_path / "resumed", on_step=kill_at(5))
    assert not (tmp_path / "resumed" / CHECKPOINT_NAME).exists()
    rest = train(params, unvalidated, tmp_path / "resumed")
    assert rest.start_step == 4 and [l for _, l in rest.losses] == [
        l for _, l in full.losses[4:]]
    assert read_checkpoint(tmp_path / "full" / CHECKPOINT_NAME)["step"] == 8
    for name in (CHECKPOINT_NAME, RESUME_NAME):
        assert (tmp_path / "full" / name).read_bytes() == (
            tmp_path / "resumed" / name).read_bytes(), name


def test_kill_at_every_point_of_publishing(shards: Path, published: Path,
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Publishing is four atomic steps (previous.pt, model.pt, last.pt, the run folder
    removed); a kill before each leaves model.pt whole (old or new, never a mix) and
    the next run finishes the publication without training again."""
    experiment = other(tiny_params(steps=4), seed=2)
    reference = tmp_path / "reference"
    shutil.copytree(published, reference)
    train(experiment, shards, reference)
    new = snapshot(reference)
    for k in range(4):
        out, before = copy_of(published, tmp_path / str(k))
        with monkeypatch.context() as patch:
            calls = fail_at_call(patch, k)
            with pytest.raises(Killed):
                train(experiment, shards, out)
        assert calls == list(range(k + 1))
        assert (out / CHECKPOINT_NAME).read_bytes() in (before[CHECKPOINT_NAME],
                                                        new[CHECKPOINT_NAME])
        again = train(experiment, shards, out)
        assert again.losses == [], f"trained again after a kill at publishing step {k}"
        assert snapshot(out) == new, f"kill at publishing step {k}"
        assert not (out / RUN_DIR).exists()


def fail_at_call(patch: pytest.MonkeyPatch, k: int) -> list[int]:
    """Make the ``k``-th file operation of publishing raise :class:`Killed` (the
    operations: ``write_bytes`` twice, ``os.replace``, ``shutil.rmtree``); the list of
    calls made so far is returned and grows."""
    calls: list[int] = []

    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(len(calls))
            if len(calls) - 1 == k:
                raise Killed(f"killed at publishing step {k}")
            return fn(*args, **kwargs)
        return wrapper

    patch.setattr(publishing, "write_bytes", counted(publishing.write_bytes))
    patch.setattr(publishing, "os", SimpleNamespace(replace=counted(os.replace)))
    patch.setattr(publishing, "shutil", SimpleNamespace(rmtree=counted(shutil.rmtree)))
    return calls


def test_fewer_steps_train_anew_and_publish(shards: Path, published: Path,
                                            tmp_path: Path) -> None:
    """``-S train.steps=2`` after a 4-step run: a 2-step model (not the 4-step one
    reported as done), published at the end, the 4-step model kept as previous.pt."""
    out, before = copy_of(published, tmp_path)
    result = train(tiny_params(steps=2), shards, out)
    assert result.start_step == 0 and result.step == 2
    assert read_checkpoint(out / RESUME_NAME)["step"] == 2
    assert (out / PREVIOUS_NAME).read_bytes() == before[CHECKPOINT_NAME]


def test_more_steps_extend_the_published_run(shards: Path, published: Path,
                                             tmp_path: Path) -> None:
    """``-S train.steps=6`` after a 4-step run of the same params continues it; the best
    weights are carried on, so model.pt changes only if steps 5-6 validate better."""
    out, before = copy_of(published, tmp_path)
    result = train(tiny_params(steps=6), shards, out)
    assert result.start_step == 4 and result.step == 6
    assert read_checkpoint(out / RESUME_NAME)["step"] == 6
    after = snapshot(out)
    assert after.get(PREVIOUS_NAME, after[CHECKPOINT_NAME]) == before[CHECKPOINT_NAME]
    assert (after[CHECKPOINT_NAME] == before[CHECKPOINT_NAME]) == (result.best_step is None)


def test_a_completed_run_is_not_trained_or_published_again(shards: Path, published: Path,
                                                           tmp_path: Path) -> None:
    """``dvc repro --force`` on a finished run: same bytes, no previous.pt made."""
    out, before = copy_of(published, tmp_path)
    assert train(tiny_params(steps=4), shards, out).losses == []
    assert snapshot(out) == before


def test_a_stale_run_state_is_not_resumed_and_goes_at_publication(
        shards: Path, published: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """An abandoned experiment's state (other params) next to a finished run: the run
    of the published params has nothing to train and clears the stale state; another
    run starts over, saying so."""
    out, before = copy_of(published, tmp_path)
    with pytest.raises(Killed):
        train(other(tiny_params(steps=6), seed=3), shards, out, on_step=kill_at(3))
    with caplog.at_level(logging.INFO, logger="inbetweener"):
        assert train(tiny_params(steps=4), shards, out).losses == []
    assert "trained with other params" in caplog.text and "not resumed" in caplog.text
    assert snapshot(out) == before and not (out / RUN_DIR).exists()

    with pytest.raises(Killed):
        train(other(tiny_params(steps=6), seed=3), shards, out, on_step=kill_at(3))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="inbetweener"):
        result = train(other(tiny_params(steps=2), seed=4), shards, out)
    assert result.start_step == 0 and "starting over" in caplog.text
    assert (out / PREVIOUS_NAME).read_bytes() == before[CHECKPOINT_NAME]


def test_a_state_from_before_runs_carried_their_best_keeps_the_model(
        shards: Path, published: Path, tmp_path: Path) -> None:
    """A models/ folder written before this layout (last.pt without the best weights):
    the finished run is recognised and its model.pt is left as it is."""
    out, _ = copy_of(published, tmp_path)
    state = read_checkpoint(out / RESUME_NAME, required=())
    for key in ("best_checkpoint", "best_step", "best_val"):
        del state[key]
    save_checkpoint(out / RESUME_NAME, state)
    before = snapshot(out)
    assert train(tiny_params(steps=4), shards, out).losses == []
    assert snapshot(out) == before


def test_dvc_does_not_see_the_run_state() -> None:
    """``.dvcignore`` hides ``models/.run/``: ``dvc status`` is clean after an
    interrupted run, and ``dvc exp run``'s forced checkout of ``models`` (it runs one
    before reproducing) does not delete the state the experiment resumes from."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        assert repo.dvcignore.is_ignored_dir(str(ROOT / "models" / RUN_DIR))
        assert repo.dvcignore.is_ignored_file(str(ROOT / "models" / RUN_DIR / RESUME_NAME))
        for name in (CHECKPOINT_NAME, RESUME_NAME, PREVIOUS_NAME):
            assert not repo.dvcignore.is_ignored_file(str(ROOT / "models" / name))


def cli(tmp_path: Path, shards: Path, out: Path, steps: int = 12) -> subprocess.Popen[str]:
    """``python -m vfi.train`` as the train stage runs it, with tiny params (seed 5)."""
    params = tiny_params(steps=steps, val_every=2)
    raw = {"sources": [{"name": "synthetic", "kind": "synthetic"}],
           "model": params.model.model_dump(),
           "train": {**params.train.model_dump(), "seed": 5}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "vfi.train", "--params", str(tmp_path / "params.yaml"),
           "--shards", str(shards), "--out", str(out), "--live", str(tmp_path / "live")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            preexec_fn=_ctrl_c_as_in_a_terminal)  # noqa: PLW1509 - one signal call


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT at its default in the run, as a terminal gives it: a suite started in the
    background of a non-interactive shell (a CI script's ``cmd &``) inherits SIGINT
    ignored, and Python then never turns Ctrl-C into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def said(output: str, limit: int = 3000) -> str:
    """The run's output for a failure message, less the blocks git's Python library
    (dulwich, under dvclive) prints when its objects outlive the interpreter at exit
    ("Exception ignored in ..." down to "... Python is likely shutting down"): dozens
    of them would push the run's own error out of the message."""
    kept, skipping = [], False
    for line in output.splitlines():
        skipping = skipping or line.startswith("Exception ignored in: ")
        if not skipping:
            kept.append(line)
        elif "Python is likely shutting down" in line:
            skipping = False
    return "\n".join(kept)[-limit:]


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Until ``path`` exists (the run wrote its first state), failing if the run ends."""
    deadline = time.monotonic() + KILL_TIMEOUT
    while not path.exists():
        assert proc.poll() is None, f"the run ended before writing {path}"
        assert time.monotonic() < deadline, f"no {path} after {KILL_TIMEOUT} s"
        time.sleep(0.01)


@pytest.mark.timeout(3 * KILL_TIMEOUT)
def test_sigkilled_stage_leaves_the_model_byte_identical(shards: Path, published: Path,
                                                         tmp_path: Path) -> None:
    """The train stage's command, SIGKILLed mid-run (no Python cleanup at all): the
    published files are byte-identical; the same command again resumes and publishes,
    also when the kill cut dvclive's in-place ``metrics.json`` short (it once failed CI
    that way: the resume could not parse its own log)."""
    out, before = copy_of(published, tmp_path)
    proc = cli(tmp_path, shards, out)
    wait_for(out / RUN_DIR / RESUME_NAME, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=KILL_TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(out) == before
    killed_at = read_checkpoint(out / RUN_DIR / RESUME_NAME)["step"]
    assert 2 <= killed_at < 12
    metrics = tmp_path / "live" / "metrics.json"  # a kill inside dvclive's write
    metrics.write_text(metrics.read_text()[:5])

    proc = cli(tmp_path, shards, out)
    output, _ = proc.communicate(timeout=KILL_TIMEOUT)
    assert proc.returncode == 0, said(output)
    assert "dvclive's log was cut short" in output, said(output)
    assert json.loads(metrics.read_text())["step"] == 12  # the log is whole again
    assert f"at step {killed_at}" in output and "resuming" in output, said(output)
    after = snapshot(out)
    assert after[PREVIOUS_NAME] == before[CHECKPOINT_NAME]
    assert read_checkpoint(out / CHECKPOINT_NAME)["train_config"]["seed"] == 5
    assert read_checkpoint(out / RESUME_NAME)["step"] == 12


@pytest.mark.timeout(2 * KILL_TIMEOUT)
def test_ctrl_c_says_the_model_is_unchanged_and_how_to_resume(
        shards: Path, published: Path, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT, what ``dvc exp run`` passes on): exit 130 and a message naming the
    unchanged model and the state the same command resumes from."""
    out, before = copy_of(published, tmp_path)
    # a run far too long to end before the signal lands, however idle the machine (12
    # steps once finished between the first state and the SIGINT, and exited 0)
    proc = cli(tmp_path, shards, out, steps=100_000)
    wait_for(out / RUN_DIR / RESUME_NAME, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=KILL_TIMEOUT)
    assert proc.returncode == 130, said(output)
    assert f"interrupted: {out / CHECKPOINT_NAME} is unchanged" in output, said(output)
    assert f"resumes from {out / RUN_DIR / RESUME_NAME}" in output
    assert snapshot(out) == before
