"""The synthetic source's configuration: one frozen, validated dataclass.

Validation happens at construction so a bad ``params.yaml`` stops before any frame is
rendered, with a message that names the offending field (the project's config rule).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SIDE = 4096
MAX_FPS = 120


def _require(ok: bool, field: str, message: str) -> None:
    """Raise a ValueError that starts with the field name, so users can find the key."""
    if not ok:
        raise ValueError(f"{field}: {message}")


def _is_int(value: object) -> bool:
    """True for real integers only: a bool or a float slipping in is a config error."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class SynthSpec:
    """What to generate: ``clips`` clips of ``seconds`` each, deterministic for ``seed``.

    Shot lengths are drawn between ``min_shot_seconds`` and ``max_shot_seconds``; a new
    shot is static with ``static_prob``; a shot slot reuses an earlier shot with
    ``repeat_prob``; a gradual transition (dissolve or flash) follows a shot with
    ``transition_prob``. ``crf`` is the libx264 constant-rate factor.
    """

    clips: int = 6
    seed: int = 0
    width: int = 320
    height: int = 240
    fps: int = 24
    seconds: float = 10.0
    crf: int = 16
    min_shot_seconds: float = 1.0
    max_shot_seconds: float = 3.0
    static_prob: float = 0.15
    repeat_prob: float = 0.15
    transition_prob: float = 0.0

    def __post_init__(self) -> None:
        self._check_ints()
        self._check_durations()
        for field in ("static_prob", "repeat_prob", "transition_prob"):
            value = getattr(self, field)
            ok = _is_number(value) and 0.0 <= value <= 1.0
            _require(ok, field, f"must be a probability in [0, 1], got {value!r}")

    def _check_ints(self) -> None:
        """Integer fields: types first, then ranges (yuv420p needs even sides)."""
        for field in ("clips", "seed", "width", "height", "fps", "crf"):
            value = getattr(self, field)
            _require(_is_int(value), field, f"must be an integer, got {value!r}")
        _require(self.clips >= 1, "clips", f"must be >= 1, got {self.clips}")
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        for field in ("width", "height"):
            value = getattr(self, field)
            _require(32 <= value <= MAX_SIDE, field, f"must be in [32, {MAX_SIDE}], got {value}")
            _require(value % 2 == 0, field, f"must be even (yuv420p), got {value}")
        _require(1 <= self.fps <= MAX_FPS, "fps", f"must be in [1, {MAX_FPS}], got {self.fps}")
        _require(0 <= self.crf <= 51, "crf", f"must be in [0, 51], got {self.crf}")

    def _check_durations(self) -> None:
        """Durations must be positive and give at least one frame; min <= max."""
        for field in ("seconds", "min_shot_seconds", "max_shot_seconds"):
            value = getattr(self, field)
            _require(_is_number(value) and value > 0, field, f"must be a positive number, got {value!r}")
        _require(self.clip_frames >= 1, "seconds", f"gives no frame at {self.fps} fps")
        _require(
            self.max_shot_seconds >= self.min_shot_seconds,
            "max_shot_seconds",
            f"must be >= min_shot_seconds ({self.min_shot_seconds}), got {self.max_shot_seconds}",
        )

    @property
    def clip_frames(self) -> int:
        """Frames in every clip."""
        return int(round(self.seconds * self.fps))

    @property
    def min_shot_frames(self) -> int:
        return max(1, int(round(self.min_shot_seconds * self.fps)))

    @property
    def max_shot_frames(self) -> int:
        return max(self.min_shot_frames, int(round(self.max_shot_seconds * self.fps)))
