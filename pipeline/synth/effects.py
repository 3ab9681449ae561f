"""What a transfer does to the rendered picture: film grain, letterbox bars, telecine.

They run after ``pipeline.synth.render`` and before the encoder, in this order: grain
(:func:`grained`, on the picture only), bars (:func:`with_bars`), then optionally 3:2
pulldown (:func:`telecined`). None changes the truth table: a telecined clip's rows stay
the progressive frames, the field mapping in a second table (``pipeline.synth.generate``).

Grain: Gaussian noise per frame, seeded per clip, blurred by [1, 2, 1] / 4 in each
direction, rescaled to the requested sd and added alike to R, G and B (luma only), in
plain numpy float32, so it is the same on every machine. Telecine: FFmpeg's ``telecine``
filter (pattern "23", top field first) through PyAV's filter graph;
:func:`pulldown_fields` states, independently, which progressive frame each field of
each output frame comes from, and :func:`telecined` checks the filter gave that many
frames. Why these choices: docs/NOTES.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

GRAIN_STREAM = 0x6A  # grain generator key: np.random.default_rng([seed, GRAIN_STREAM, clip])
BAR_LEVEL = 0  # letterbox/pillarbox bars: pure black, noise-free
PULLDOWN = "23"  # fields per progressive frame, repeating
# Unit white noise blurred by a kernel has sd = sqrt(sum of its squared taps). The 1-D
# taps [1, 2, 1] / 4 square-sum to 6 / 16; the separable 2-D kernel's to (6 / 16) ** 2.
_BLUR_SD = 6 / 16


def grain_noise(rng: np.random.Generator, height: int, width: int, sd: float) -> np.ndarray:
    """One frame of film-like grain: float32 H x W, mean 0, standard deviation ``sd``."""
    white = rng.standard_normal((height + 2, width + 2), dtype=np.float32)
    rows = 0.25 * white[:-2] + 0.5 * white[1:-1] + 0.25 * white[2:]
    blurred = 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]
    return blurred * np.float32(sd / _BLUR_SD)


def add_grain(rgb: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The picture with the noise, rounded to whole levels first, added to every channel
    alike (so exactly luma-only wherever no channel clips), clipped to 0..255."""
    offset = np.rint(noise).astype(np.int16)[..., None]
    return np.clip(rgb.astype(np.int16) + offset, 0, 255).astype(np.uint8)


Frames = Iterator[tuple[np.ndarray, int]]  # (RGB picture, consecutive frames showing it), as render streams them


def grained(frames: Frames, sd: float, seed: int, clip: int) -> Frames:
    """Every frame with its own grain: a drawing held n frames becomes n different frames."""
    rng = np.random.default_rng([seed, GRAIN_STREAM, clip])
    for image, count in frames:
        for _ in range(count):
            yield add_grain(image, grain_noise(rng, image.shape[0], image.shape[1], sd)), 1


def with_bars(frames: Frames, letterbox: int, pillarbox: int) -> Frames:
    """The picture centred in constant black bars: ``letterbox`` rows above and below,
    ``pillarbox`` columns left and right."""
    for image, count in frames:
        h, w = image.shape[:2]
        canvas = np.full((h + 2 * letterbox, w + 2 * pillarbox, 3), BAR_LEVEL, np.uint8)
        canvas[letterbox : letterbox + h, pillarbox : pillarbox + w] = image
        yield canvas, count


def pulldown_fields(frames: int, pattern: str = PULLDOWN) -> list[tuple[int, int]]:
    """(top source frame, bottom source frame) of every telecined frame, top field first.

    The definition of pulldown, written as a field stream: progressive frame i gives
    ``pattern[i % len]`` fields in alternating parity (top, bottom, top, ...), the
    stream of fields is cut into consecutive pairs, and each pair is one output frame.
    A field left alone at the end has no partner and is dropped, as FFmpeg does.
    """
    sources = [i for i in range(frames) for _ in range(int(pattern[i % len(pattern)]))]
    # fields alternate top, bottom from the first, so each even-indexed field is a top one
    return [(sources[k], sources[k + 1]) for k in range(0, len(sources) - 1, 2)]


def _telecine_graph(width: int, height: int, fps: int) -> tuple[av.filter.Graph, av.filter.context.FilterContext,
                                                                 av.filter.context.FilterContext]:
    """buffer -> telecine (top field first, PULLDOWN) -> buffersink, configured."""
    graph = av.filter.Graph()
    src = graph.add("buffer", f"video_size={width}x{height}:pix_fmt=yuv420p:time_base=1/{fps}"
                              f":pixel_aspect=1/1:frame_rate={fps}/1")
    telecine = graph.add("telecine", f"first_field=top:pattern={PULLDOWN}")
    sink = graph.add("buffersink")
    src.link_to(telecine)
    telecine.link_to(sink)
    graph.configure()
    return graph, src, sink


def _drain(sink: av.filter.context.FilterContext) -> Iterator[av.VideoFrame]:
    while True:
        try:
            yield sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


def telecined(frames: Frames, width: int, height: int, fps: int,
              expected: int) -> Iterator[av.VideoFrame]:
    """The progressive clip through FFmpeg's telecine: yuv420p frames with woven fields.

    ``expected`` is the progressive frame count; the filter must give
    ``len(pulldown_fields(expected))`` frames, else RuntimeError (the truth table would
    no longer describe the video).
    """
    graph, src, sink = _telecine_graph(width, height, fps)  # the graph must outlive its filters
    reformatter = VideoReformatter()
    pushed = given = 0
    for image, count in frames:
        frame = reformatter.reformat(av.VideoFrame.from_ndarray(image, format="rgb24"), format="yuv420p")
        for _ in range(count):
            frame.pts, frame.time_base = pushed, Fraction(1, fps)
            src.push(frame)
            pushed += 1
            for out in _drain(sink):
                given += 1
                yield out
    src.push(None)
    for out in _drain(sink):
        given += 1
        yield out
    del graph
    want = len(pulldown_fields(expected))
    if pushed != expected or given != want:
        raise RuntimeError(f"telecine: {pushed} progressive frames gave {given} telecined, "
                           f"expected {expected} -> {want}")


def telecine_rate(fps: int) -> Fraction:
    """Frame rate after pulldown: 5 fields per 2 frames makes 5 frames of 4 (24 -> 30)."""
    return Fraction(fps * sum(int(c) for c in PULLDOWN), 2 * len(PULLDOWN))
