"""Which output frame shows what: the cut- and hold-aware schedule of ``interpolate``.

:class:`Schedule` is pure bookkeeping on times and frame indices, no pixels. Source
frames arrive in order (:class:`SourceFrame`, with their scene and drawing); output
frames leave in order (:class:`OutFrame`: show source frame ``a``, or the in-between of
``a`` and ``b`` at ``t``); output frame ``j`` is at time ``start + j / rate``. Between two
consecutive *keys* (source frames the output is anchored to) the earlier frame is
repeated up to a cut (nothing is ever blended across one) and within one drawing (held
stays held); otherwise the output at time T is the in-between at
``t = (T - p0) / (p1 - p0)``. Without retiming every source frame is a key. With
``retime`` only each drawing's first frame is, so drawings on twos or threes become
in-betweens at their true times, except that a hold longer than ``max_hold`` frames is
a pause and stays still (its last frame becomes a key too). Why: docs/NOTES.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class SourceFrame:
    """One analysed input frame: position, exact time (s), scene and drawing ids."""

    index: int
    pts: Fraction
    scene: int
    drawing: int


@dataclass(frozen=True)
class OutFrame:
    """Output frame ``index`` shows source frame ``a``, or the in-between of ``a`` and ``b``
    at ``t`` in (0, 1) when ``b != a``."""

    index: int
    a: int
    b: int
    t: float

    @property
    def is_copy(self) -> bool:
        return self.b == self.a


@dataclass
class _Key:
    """The key the next segment starts from: its time, pixels and identity."""

    pts: Fraction
    image: int
    scene: int
    drawing: int


class Schedule:
    """Turns analysed source frames into output frames (see the module doc).

    ``push`` every source frame in order, then ``finish`` with the end time of the last
    one; each returns the output frames that became decidable. ``needed`` is the oldest
    source frame whose pixels a later output may still use: callers free older ones.
    """

    def __init__(self, rate: Fraction, retime: bool = False, max_hold: int = 4) -> None:
        if rate <= 0:
            raise ValueError(f"output rate must be positive, got {rate}")
        if max_hold < 1:
            raise ValueError(f"max_hold must be >= 1, got {max_hold}")
        self.rate, self.retime, self.max_hold = Fraction(rate), retime, max_hold
        self.slack = 1 / (4 * self.rate)  # see _until
        self.start: Fraction | None = None
        self.next_out = 0
        self.key: _Key | None = None
        self.held = 0  # frames of the key's drawing seen so far (retime)
        self.last_pts = Fraction(0)  # time of the latest frame of the key's drawing

    @property
    def needed(self) -> int | None:
        return None if self.key is None else self.key.image

    def _time(self, j: int) -> Fraction:
        assert self.start is not None
        return self.start + j / self.rate

    def _until(self, end: Fraction) -> Iterator[int]:
        """Output indices whose time is before ``end``, consumed as they are yielded.

        Times within ``slack`` (a quarter output frame) before ``end`` count as ``end``
        itself: containers round timestamps (Matroska to 1 ms), and an output frame
        meant to coincide with a source frame must be that frame, not an in-between at
        t = 0.99 that costs a model call and is a hair off.
        """
        while self._time(self.next_out) < end - self.slack:
            self.next_out += 1
            yield self.next_out - 1

    def _repeat(self, end: Fraction) -> list[OutFrame]:
        assert self.key is not None
        return [OutFrame(j, self.key.image, self.key.image, 0.0) for j in self._until(end)]

    def _inbetween(self, begin: Fraction, frame: SourceFrame) -> list[OutFrame]:
        assert self.key is not None
        span = frame.pts - begin
        out = []
        for j in self._until(frame.pts):
            offset = self._time(j) - begin
            if offset <= self.slack:  # the key's own time, give or take rounding
                out.append(OutFrame(j, self.key.image, self.key.image, 0.0))
            else:
                out.append(OutFrame(j, self.key.image, frame.index, float(offset / span)))
        return out

    def push(self, frame: SourceFrame) -> list[OutFrame]:
        """Output frames before ``frame``'s time that are now fully decided."""
        if self.key is None:
            self.start = frame.pts
            self._new_key(frame)
            return []
        if frame.pts <= self.last_pts:
            raise ValueError(f"frame {frame.index}: time {frame.pts} does not increase")
        key, out = self.key, []
        same_drawing = frame.scene == key.scene and frame.drawing == key.drawing
        if self.retime and same_drawing:
            self.held += 1
            self.last_pts = frame.pts
            # A pause is certain now: everything up to this frame stays still.
            return self._repeat(frame.pts) if self.held > self.max_hold else []
        begin = key.pts
        if self.retime and self.held > self.max_hold:
            out += self._repeat(self.last_pts)
            begin = self.last_pts
        if same_drawing or frame.scene != key.scene:
            out += self._repeat(frame.pts)
        else:
            out += self._inbetween(begin, frame)
        self._new_key(frame)
        return out

    def _new_key(self, frame: SourceFrame) -> None:
        self.key = _Key(frame.pts, frame.index, frame.scene, frame.drawing)
        self.held, self.last_pts = 1, frame.pts

    def finish(self, end: Fraction) -> list[OutFrame]:
        """The remaining output frames up to ``end`` (the last frame held to the end).

        Their number is ``round((end - start) * rate)`` in all: ``factor`` x the input's
        frames for a constant-rate input, whatever rounding its timestamps carry.
        """
        if self.key is None or self.start is None:
            return []
        total = round((end - self.start) * self.rate)
        out = []
        while self.next_out < total:
            out.append(OutFrame(self.next_out, self.key.image, self.key.image, 0.0))
            self.next_out += 1
        return out


def output_rate(input_rate: Fraction, factor: int | None = None,
                fps: Fraction | None = None) -> Fraction:
    """The output frame rate: ``factor`` x the input's, or ``fps`` when given."""
    if fps is not None:
        return Fraction(fps)
    if factor is None:
        raise ValueError("give a factor or an output fps")
    return Fraction(input_rate) * factor
