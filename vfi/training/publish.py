"""Where a training run keeps its state, and how its result becomes the published model.

A run in progress writes only its own state, ``models/.run/last.pt`` (weights,
optimizer, step, and the best weights so far as the exact bytes ``model.pt`` will get;
:class:`Layout` names the paths). ``.dvcignore`` hides ``models/.run/`` from DVC, so
after an interruption ``dvc status`` stays clean and running the same experiment again
resumes it. When the run completes, :func:`publish` replaces ``model.pt`` atomically
(the old one kept as ``previous.pt``), then moves the state to ``models/last.pt`` (what a
longer run extends) and removes ``models/.run/``. Each step is one atomic rename and the
whole is idempotent: a kill midway is finished by the next run, which finds the state
complete and publishes it again. Why (``persist: true``): docs/NOTES.md.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.atomic import write_bytes
from vfi.inference.checkpoint import (
    CHECKPOINT_NAME,
    PREVIOUS_NAME,
    RESUME_NAME,
    RUN_DIR,
)

log = logging.getLogger("inbetweener.vfi.train")


@dataclass(frozen=True)
class Layout:
    """The files of one training output folder (the stage's ``--out``)."""

    out: Path

    @property
    def model(self) -> Path:
        """The published best weights: what evaluation and ``interpolate`` load."""
        return self.out / CHECKPOINT_NAME

    @property
    def published_state(self) -> Path:
        """The final state of the run that published ``model.pt`` (extended by a run
        with a larger ``train.steps``)."""
        return self.out / RESUME_NAME

    @property
    def previous(self) -> Path:
        """The ``model.pt`` the last publication replaced: one step back, no git needed."""
        return self.out / PREVIOUS_NAME

    @property
    def run_dir(self) -> Path:
        """Private to the run in progress; gone once it has published."""
        return self.out / RUN_DIR

    @property
    def run_state(self) -> Path:
        """The run in progress's resume state (what a killed run continues from)."""
        return self.run_dir / RESUME_NAME


def replace_model(layout: Layout, best: bytes) -> None:
    """Make ``model.pt`` hold ``best`` (one atomic rename), first keeping the model it
    replaces as ``previous.pt``; nothing when it already does (a repeated publication
    must not overwrite ``previous.pt`` with the new model)."""
    current = layout.model.read_bytes() if layout.model.is_file() else None
    if current == best:
        return
    kept = ""
    if current is not None:
        write_bytes(layout.previous, current)
        kept = f", the model it replaced kept as {layout.previous}"
    write_bytes(layout.model, best)
    log.info("published %s%s", layout.model, kept)


def discard_run(layout: Layout) -> None:
    """Forget the run-private folder (a published or abandoned run's state)."""
    if layout.run_dir.exists():
        shutil.rmtree(layout.run_dir)


def publish(layout: Layout, best: bytes | None, from_run: bool) -> None:
    """Publish a completed run: ``best`` (the bytes of its best checkpoint) becomes
    ``model.pt``, then, when the run trained here (``from_run``), its state becomes
    ``last.pt``; the run folder goes last. In this order a kill between two steps
    leaves a complete state in place (the run's, or once moved the published one), and
    the next run, finding it complete, finishes the publication without training.
    ``best`` is None only for a state written before runs carried their best weights:
    ``model.pt`` is then left as it is."""
    if best is not None:
        replace_model(layout, best)
    if from_run and layout.run_state.is_file():
        os.replace(layout.run_state, layout.published_state)
    discard_run(layout)
