"""Checkpoints: where they live, how they are written, read and checked, in one place.

A checkpoint is plain data (tensors, dicts, numbers, strings): ``model`` (state dict),
``model_config`` (the resolved ``model`` section) and, from training, ``step``,
``val_psnr``, ``train_config``, ``params_hash`` and ``data_hash``; the resume state
(``last.pt``) adds ``optimizer`` and the run's best weights so far (the exact bytes
``model.pt`` gets). Read with ``torch.load(..., weights_only=True)``: a tampered file
cannot run code. ``models/`` holds what a completed run published: ``model.pt`` (what
evaluation and ``interpolate`` load), ``last.pt`` (its final state, which a run with a
raised ``train.steps`` extends) and ``previous.pt`` (the ``model.pt`` it replaced); a run
in progress writes only ``models/.run/`` (:mod:`vfi.training.publish`). Every way a
file can fail to be a usable checkpoint (missing, not a torch file, not ours, weights
that do not fit their config) raises one :class:`CheckpointError` naming the file; the
commands print it, the stages exit 2 with it.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.core.atomic import write_bytes
from pipeline.core.errors import CommandError
from vfi.nets import build_model

CHECKPOINT_NAME = "model.pt"  # the best weights on validation: what everything loads
RESUME_NAME = "last.pt"        # the latest training state: what a killed run resumes from
PREVIOUS_NAME = "previous.pt"  # the model.pt the last publication replaced
RUN_DIR = ".run"               # a run in progress: its own last.pt, published at the end
DEFAULT_DIR = Path("models")  # the train stage's --out
DEFAULT_CHECKPOINT = DEFAULT_DIR / CHECKPOINT_NAME
REQUIRED = ("model", "model_config")
# What torch.load raises on files that are not weights-only torch checkpoints (junk,
# truncated archives, pickled objects): torch's own messages mislead, so they are
# reported as one sentence instead.
UNREADABLE = (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError,
              AttributeError, IndexError, TypeError, zipfile.BadZipFile)


class CheckpointError(CommandError):
    """A file that cannot be used as a checkpoint; the message names it and says why."""


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """The file a state is saved as. In memory, not ``torch.save`` to a path: the archive
    inside takes its folder name from the file name, so equal states saved under other
    (temporary, pid-holding) names would differ in bytes, and DVC would see a new output
    every time; in memory, a run's best weights can be kept as the exact ``model.pt``
    bytes they will be published as."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Serialise, then write atomically (:func:`pipeline.core.atomic.write_bytes`): a kill
    mid-write never leaves a truncated checkpoint where the resume would look."""
    write_bytes(Path(path), checkpoint_bytes(state))


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    required: tuple[str, ...] = REQUIRED) -> dict[str, Any]:
    """The checkpoint's contents, checked to be a dict with the ``required`` entries
    (resuming checks its own: a foreign state restarts training, see
    :func:`vfi.training.loop.try_resume`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train one with `dvc repro` (it "
                              f"writes {DEFAULT_CHECKPOINT}), pass --checkpoint PATH, or "
                              "use a method without one (--method blend)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except UNREADABLE as exc:
        raise CheckpointError(f"cannot load checkpoint {path}: not a torch file of plain "
                              f"tensors ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"cannot load checkpoint {path}: a {type(state).__name__}, "
                              "not a dict (not a vfi.train checkpoint)")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"cannot load checkpoint {path}: no {', '.join(missing)} "
                              "entry (not a vfi.train checkpoint)")
    return state


def load_model(path: str | Path, device: torch.device | None = None) -> nn.Module:
    """The network rebuilt from a checkpoint's own config, in eval mode on ``device``."""
    state = read_checkpoint(path)
    try:
        model = build_model(state["model_config"])
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:  # pydantic errors are ValueErrors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load checkpoint {path}: {first}") from None
    return model.to(device or torch.device("cpu")).eval()
