"""Typed, validated ``model``, ``train`` and ``eval`` sections of ``params.yaml``.

Same rules as :mod:`pipeline.core.config` (strict, unknown keys are errors, frozen) so a typo
in a sweep (``dvc exp run -S model.lr=...``) stops the run before any training. The
section classes are defined in :mod:`pipeline.core.config` with the rest of the file's
schema; :func:`load_vfi_params` validates only these keys, so model code and its tests
need no ``sources``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import model_validator

from pipeline.core.config import (  # the sections live with the rest of params.yaml's schema
    ConfigError,
    EvalParams,
    ModelParams,
    TrainParams,
    _Section,
    check_schedule,
    read_params_yaml,
    validate_mapping,
)

DEFAULT_PARAMS = Path("params.yaml")
# Keys that change how fast a stage runs, never what it writes: dvc.yaml lists every
# other key of their sections by name, so editing these re-runs nothing
# (tests/test_dvc_graph.py checks the lists, tests/test_repro.py the re-runs). The
# thread count splits the same sums; the flow cache holds a pure function's values;
# multi-index hashing finds every pair within the distance for any block count.
RESULT_NEUTRAL: dict[str, tuple[str, ...]] = {"train": ("threads", "flow_cache_mb"),
                                              "filter": ("mih_blocks",)}


class VfiParams(_Section):
    """The model's sections of params.yaml (other sections belong to the pipeline)."""

    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    eval: EvalParams = EvalParams()

    @model_validator(mode="after")
    def _schedule(self) -> VfiParams:
        check_schedule(self.model, self.train)
        return self


def parse_vfi_params(raw: Any, origin: str = "params") -> VfiParams:
    """Validate the ``model``/``train``/``eval`` keys of a mapping, ignoring the rest."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    mine = {k: raw[k] for k in ("model", "train", "eval") if k in raw and raw[k] is not None}
    return validate_mapping(VfiParams, mine, origin)


def load_vfi_params(path: str | Path = DEFAULT_PARAMS) -> VfiParams:
    """Load and validate; a missing file means all defaults."""
    path = Path(path)
    if not path.is_file():
        return VfiParams()
    return parse_vfi_params(read_params_yaml(path), str(path))


def params_hash(params: VfiParams) -> str:
    """What a checkpoint must match to be resumed: the model and the optimisation.

    Keys that only change how long or how often (steps, val_every, val_samples) are left
    out so a run can be extended by raising ``train.steps``, and so are the keys
    ``RESULT_NEUTRAL`` lists (one list: what DVC does not track cannot block a resume).
    """
    neutral = set(RESULT_NEUTRAL["train"])
    train = params.train.model_dump(exclude={"steps", "val_every", "val_samples"} | neutral)
    blob = json.dumps({"model": params.model.model_dump(), "train": train}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
