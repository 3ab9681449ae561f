"""``inbetweener interpolate``: the schedule's rules, then the command on synthetic clips.

The clip has hard cuts and drawings on ones, twos and threes; its truth table says
which output frames must be copies of which source frames. Most runs use ``--method
blend`` (fast); one runs a tiny untrained checkpoint through the model path, and two run
pretrained RIFE 4.25 on a few small frames (the default without a checkpoint, and
``--scale``).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from support import REPO
from support.checkpoints import tiny_flow_checkpoint
from support.videos import write_html

from inbetweener.cli import main
from pipeline.core.config import CutsParams
from pipeline.synth import SynthSpec, generate
from pipeline.synth.generate import progressive_frames
from pipeline.synth.plan import plan_set
from vfi.app.analysis import CutWindow
from vfi.app.interpolate import InterpolateError, Options, Result, run_interpolate
from vfi.app.retime import OutFrame, Schedule, SourceFrame
from vfi.config import ModelParams
from vfi.inference.interpolator import init_flows
from vfi.inference.methods import Blend, MethodError, MethodOptions, make_method
from vfi.nets import build_model

SPEC = SynthSpec(clips=1, seed=1, width=160, height=120, seconds=3, min_shot_seconds=0.5,
                 max_shot_seconds=1.0, static_prob=0.0, repeat_prob=0.0)
SAME = 4.0  # mean abs difference (0-255) of a frame re-encoded once more: "the same frame"
HELD = 1.5  # consecutive output frames showing one held drawing differ by less
EDGE = 20  # a pixel changed "really" when a channel moved by more than this
MOVED = 50  # an in-between moves at least this many pixels' worth of outline


# --- the schedule, on plain lists ------------------------------------------------------


def frames(drawings: list[int], scenes: list[int] | None = None) -> list[SourceFrame]:
    """Source frames at 1 frame/s with the given drawing (and scene) ids."""
    scenes = scenes or [0] * len(drawings)
    return [SourceFrame(i, Fraction(i), s, d) for i, (d, s) in enumerate(zip(drawings, scenes))]


def schedule(source: list[SourceFrame], rate: int, **kwargs) -> list[tuple[int, int, float]]:
    plan = Schedule(Fraction(rate), **kwargs)
    out: list[OutFrame] = []
    for frame in source:
        out += plan.push(frame)
    out += plan.finish(source[-1].pts + 1)
    assert [f.index for f in out] == list(range(len(out)))
    return [(f.a, f.b, f.t) for f in out]


def test_schedule_repeats_across_cuts_and_holds() -> None:
    # drawings A B B C | D: frame 2 holds B, frame 4 starts a new scene
    got = schedule(frames([0, 1, 1, 2, 3], [0, 0, 0, 0, 1]), rate=2)
    assert got == [(0, 0, 0.0), (0, 1, 0.5), (1, 1, 0.0), (1, 1, 0.0), (2, 2, 0.0),
                   (2, 3, 0.5), (3, 3, 0.0), (3, 3, 0.0), (4, 4, 0.0), (4, 4, 0.0)]


def test_schedule_retime_spreads_twos_over_the_hold() -> None:
    got = schedule(frames([0, 0, 1, 1, 2, 2]), rate=2, retime=True)
    assert got[:8] == [(0, 0, 0.0), (0, 2, 0.25), (0, 2, 0.5), (0, 2, 0.75),
                       (2, 2, 0.0), (2, 4, 0.25), (2, 4, 0.5), (2, 4, 0.75)]
    assert got[8:] == [(4, 4, 0.0)] * 4  # the last drawing has no next one: held


def test_schedule_retime_keeps_pauses_still() -> None:
    got = schedule(frames([0] * 6 + [1]), rate=1, retime=True, max_hold=4)
    assert got == [(0, 0, 0.0)] * 6 + [(6, 6, 0.0)]
    got = schedule(frames([0] * 6 + [1]), rate=2, retime=True, max_hold=4)
    assert got[:11] == [(0, 0, 0.0)] * 11 and got[11] == (0, 6, 0.5)


def test_schedule_other_rates_and_memory() -> None:
    got = schedule(frames(list(range(72))), rate=Fraction(5, 2))  # 1 -> 2.5 frames/s
    assert len(got) == 180
    plan = Schedule(Fraction(2))
    for frame in frames([0, 0, 1]):
        plan.push(frame)
        assert plan.needed == frame.index  # only the latest key is kept
    with pytest.raises(ValueError, match="does not increase"):
        plan.push(SourceFrame(3, Fraction(1), 0, 2))


def test_schedule_rounded_timestamps() -> None:
    """Matroska keeps milliseconds: frame times are off by up to 0.5 ms, yet every
    output frame at a source frame's time is that frame, and the count is exact."""
    source = [SourceFrame(i, Fraction(round(1000 * i / 24), 1000), 0, i) for i in range(146)]
    plan = Schedule(Fraction(48))
    out = [f for frame in source for f in plan.push(frame)]
    out += plan.finish(source[-1].pts + Fraction(1, 24))
    assert len(out) == 292
    assert all(f.is_copy and f.a == f.index // 2 for f in out[:-2:2])
    assert all(f.t == pytest.approx(0.5, abs=0.02) for f in out[1:-2:2])


def test_one_pair_at_many_t_computes_its_flows_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from vfi.flow.dis import DisFlow

    calls = []
    pair = DisFlow.pair
    monkeypatch.setattr(DisFlow, "pair", lambda self, a, b: calls.append(1) or pair(self, a, b))
    model = build_model(ModelParams(arch="flow", width=8, depth=1, scales=2))
    torch.manual_seed(0)
    a, b = torch.rand(3, 40, 48), torch.rand(3, 40, 48)
    ts = torch.tensor([0.25, 0.5, 0.75])
    flows = init_flows(model, a.expand(3, -1, -1, -1), b.expand(3, -1, -1, -1), ts)
    assert len(calls) == 1
    for i, t in enumerate(ts):
        assert torch.allclose(flows[i], init_flows(model, a[None], b[None], t[None])[0])


def test_methods_by_name() -> None:
    a = np.zeros((24, 32, 3), np.uint8)
    b = a.copy()
    b[8:16, 12:20] = 255  # a square appears
    dis = make_method("dis", MethodOptions(dis_preset="ultrafast")).frames(a, b, [0.25, 0.75])
    assert [x.shape for x in dis] == [a.shape] * 2 and dis[0].mean() < dis[1].mean()
    with pytest.raises(MethodError, match="unknown method"):
        make_method("film")


def test_dis_frames_run_dis_once_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    from vfi.flow.dis import DisFlow
    from vfi.inference.methods import Dis, to_rgb, to_tensor

    calls: list[int] = []
    pair = DisFlow.pair
    monkeypatch.setattr(DisFlow, "pair", lambda self, a, b: calls.append(1) or pair(self, a, b))
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    b = np.roll(a, 3, axis=1)
    method = Dis("ultrafast")
    ts = [0.25, 0.5, 0.75]
    frames = method.frames(a, b, ts)
    assert len(calls) == 1
    for t, frame in zip(ts, frames):  # the same pixels as scoring each time on its own
        assert np.array_equal(frame, to_rgb(method(to_tensor(a), to_tensor(b), torch.tensor(t))))


def test_blend_is_the_linear_blend() -> None:
    a = np.zeros((4, 6, 3), np.uint8)
    b = np.full((4, 6, 3), 200, np.uint8)
    assert [int(x[0, 0, 0]) for x in Blend().frames(a, b, [0.25, 0.5])] == [50, 100]


# --- the command on a synthetic clip ------------------------------------------------------


@dataclass
class Clip:
    path: Path
    truth: pd.DataFrame
    frames: np.ndarray  # decoded source frames, int16


def decode(path: Path) -> tuple[np.ndarray, Fraction]:
    """All frames (int16, so differences do not wrap) and the stream's average rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rgb = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return np.stack(rgb).astype(np.int16), Fraction(stream.average_rate)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    root = tmp_path_factory.mktemp("clip")
    out = generate(SPEC, root)
    return Clip(out.videos[0], out.truth, decode(out.videos[0])[0])


def interpolate(clip: Clip, out: Path, **kwargs) -> tuple[Result, np.ndarray, Fraction]:
    kwargs.setdefault("method", "blend")
    result = run_interpolate(Options(src=clip.path, out=out, **kwargs))
    return (result, *decode(out))


@pytest.fixture(scope="module")
def plain(clip: Clip, tmp_path_factory: pytest.TempPathFactory):
    return interpolate(clip, tmp_path_factory.mktemp("plain") / "out.mp4")


@pytest.fixture(scope="module")
def retimed(clip: Clip, tmp_path_factory: pytest.TempPathFactory):
    return interpolate(clip, tmp_path_factory.mktemp("retimed") / "out.mp4", retime=True)


@pytest.mark.parametrize(("kwargs", "count", "rate"), [
    ({"factor": 3}, 216, 72), ({"fps": Fraction(60)}, 180, 60)])
def test_frame_count_and_rate(clip: Clip, tmp_path: Path, kwargs, count, rate) -> None:
    result, out, got_rate = interpolate(clip, tmp_path / "out.mkv", **kwargs)
    assert len(out) == result.frames_out == count and got_rate == rate
    assert result.frames_in == 72 and result.rate == rate


def test_factor_two_counts_and_summary(clip: Clip, plain) -> None:
    result, out, rate = plain
    assert (len(out), rate, result.frames_in) == (144, 48, 72)
    assert result.cuts == int(clip.truth["is_cut_start"].sum()) == 3
    assert result.late_cuts == 0
    lag = CutWindow(CutsParams(), 24.0).lag
    assert result.peak_frames <= lag + 8  # a window of frames, not the video


def test_cuts_are_the_pipelines(clip: Clip, plain) -> None:
    """One code path: the app cuts where detect_cuts' worker cuts the same file."""
    from pipeline.analysis.worker import SourceJob, analyse_source

    result, _, _ = plain
    job = SourceJob(name="clip", path=str(clip.path), codec="h264", frames=len(clip.truth),
                    fps=24.0, backend="pyav")
    assert result.cut_frames == analyse_source(job, CutsParams()).cuts
    assert result.cut_frames == np.flatnonzero(clip.truth["is_cut_start"].to_numpy()).tolist()


def pipeline_drawings(path: Path, codec: str = "h264", frames: int = 0, fps: float = 24.0) -> np.ndarray:
    """Drawing per frame as the dataset stages decide it on the same file: detect_cuts'
    worker (hold rule and cuts), then extract_triplets' split at scene changes."""
    from pipeline.analysis.worker import SourceJob, analyse_source
    from pipeline.curation.triplets import split_at_scenes

    job = SourceJob(name="clip", path=str(path), codec=codec, frames=frames, fps=fps, backend="pyav")
    analysis = analyse_source(job, CutsParams())
    scene = np.zeros(len(analysis.columns["drawing"]), np.int64)
    scene[analysis.cuts] = 1
    return split_at_scenes(analysis.columns["drawing"], np.cumsum(scene))


def test_holds_are_the_pipelines(clip: Clip, plain) -> None:
    """One rule: the app finds the drawings the pipeline finds in the same file (a clip
    on ones, twos and threes), and both find the truth's holds."""
    result, _, _ = plain
    ours = pipeline_drawings(clip.path, frames=len(clip.truth))
    assert timings(clip) >= {"ones", "twos", "threes"}
    assert (result.drawings, result.held) == (int(ours[-1]) + 1, int((ours[1:] == ours[:-1]).sum()))
    assert result.held >= len(held_frames(clip.truth))


REAL = REPO / "data" / "real"


@pytest.mark.parametrize(("name", "codec", "fps"), [
    ("big_buck_bunny_432_433.webm", "vp8", 24.0),  # CG at 720p: moves every frame
    ("synfig_man_vagabon.gif", "gif", 50 / 3),  # cut-out animation on ones
])
def test_holds_agree_on_real_footage_on_ones(name: str, codec: str, fps: float, tmp_path: Path) -> None:
    """Footage that moves every frame: the app and the pipeline find the same drawings
    in the same shipped file, and both find every frame a drawing of its own but at most
    one: the GIF's sway steps by 14 grey levels once (frame 99), under the local floor
    of 15 that HEVC film scans' held noise needs (``pipeline.analysis.holds``)."""
    result = run_interpolate(Options(src=REAL / name, out=tmp_path / "out.mp4", method="blend"))
    ours = pipeline_drawings(REAL / name, codec, fps=fps)
    assert result.drawings == int(ours[-1]) + 1
    assert result.held == int((ours[1:] == ours[:-1]).sum()) <= 1
    assert result.drawings >= result.frames_in - 1


def timings(clip: Clip) -> set[str]:
    return set(clip.truth["timing"].dropna())


def test_holds_off_makes_every_frame_a_drawing(clip: Clip, plain, tmp_path: Path, capsys) -> None:
    """``--holds off``, as typed: no frame is taken for a hold, so every output frame
    between two source frames is an in-between (factor 2: one per source frame but the
    last of each scene), where ``auto`` repeats held drawings."""
    out = tmp_path / "off.mp4"
    assert main(["interpolate", str(clip.path), str(out), "--method", "blend", "--holds", "off",
                 "--quiet"]) == 0
    line = capsys.readouterr().out
    assert "0 held frames in 72 drawings" in line and "holds off" in line
    auto, _, _ = plain
    scenes = auto.cuts + 1
    assert f"{72 - scenes} in-betweens" in line
    assert auto.inbetweens < 72 - scenes


def test_bad_holds_value_is_refused(clip: Clip, tmp_path: Path) -> None:
    with pytest.raises(InterpolateError, match="--holds must be one of auto, off"):
        run_interpolate(Options(src=clip.path, out=tmp_path / "o.mp4", holds="never"))


@pytest.mark.parametrize("which", ["plain", "retimed"])
def test_nothing_blended_across_a_cut(clip: Clip, which: str, request) -> None:
    """Output frames up to a cut are the frame before it; at the cut, the frame after."""
    _, out, _ = request.getfixturevalue(which)
    src = clip.frames
    for cut in np.flatnonzero(clip.truth["is_cut_start"].to_numpy()):
        assert diff(src[cut - 1], src[cut]) > 20  # a real cut: a mix would be far from both
        for j in (2 * cut - 2, 2 * cut - 1):
            assert diff(out[j], src[cut - 1]) < SAME, (which, cut, j)
        assert diff(out[2 * cut], src[cut]) < SAME, (which, cut)


def held_frames(truth: pd.DataFrame) -> np.ndarray:
    """Frames repeating the previous frame's drawing, not in the last drawing of a shot
    (which stays held up to the cut, retimed or not)."""
    drawing, shot = truth["drawing"].to_numpy(), truth["shot"].to_numpy()
    last = truth.groupby("shot")["drawing"].transform("max").to_numpy()
    held = np.r_[False, drawing[1:] == drawing[:-1]]
    return np.flatnonzero(held & (drawing != last) & (shot >= 0))


def changed(a: np.ndarray, b: np.ndarray) -> int:
    """Pixels where some channel changed by more than ``EDGE``: outlines that moved."""
    return int((np.abs(a - b).max(axis=2) > EDGE).sum())


def test_without_retime_held_frames_stay_held(clip: Clip, plain) -> None:
    _, out, _ = plain
    held = held_frames(clip.truth)
    assert len(held) > 15
    for i in held:  # the output between and at the two source times repeats the drawing
        assert diff(out[2 * i - 1], out[2 * i - 2]) < HELD, i
        assert changed(out[2 * i], out[2 * i - 2]) < MOVED, i
        assert diff(out[2 * i], clip.frames[i]) < SAME, i


def test_retime_moves_where_the_input_held(clip: Clip, plain, retimed) -> None:
    """Most held frames become in-betweens. Not all: the hold rule (the pipeline's, by
    design) merges drawings that barely move into one long hold, which stays still."""
    _, out, _ = retimed
    held = held_frames(clip.truth)
    moved = np.array([min(changed(out[2 * i], out[2 * i - 2]), changed(out[2 * i - 1], out[2 * i - 2]))
                      >= MOVED for i in held])
    assert moved.mean() >= 0.7, held[~moved]
    assert retimed[0].inbetweens > 2 * plain[0].inbetweens


def test_model_path_with_a_tiny_checkpoint(clip: Clip, plain, tmp_path: Path) -> None:
    """An untrained zero-flow network is the linear blend: same frames as --method blend."""
    checkpoint = tiny_flow_checkpoint(tmp_path / "tiny.pt", flow_init="zero")
    out_path = tmp_path / "out.mp4"
    assert main(["interpolate", str(clip.path), str(out_path), "--checkpoint", str(checkpoint),
                 "--quiet"]) == 0
    out, rate = decode(out_path)
    assert (len(out), rate) == (144, 48)
    assert max(diff(a, b) for a, b in zip(out, plain[1])) < SAME  # x264 drift, no more


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """Half a second at 96x64: 12 frames, a few in-betweens for RIFE to make."""
    root = tmp_path_factory.mktemp("short")
    spec = SPEC.model_copy(update={"width": 96, "height": 64, "seconds": 0.5,
                                   "min_shot_seconds": 0.5, "max_shot_seconds": 0.5})
    out = generate(spec, root)
    return Clip(out.videos[0], out.truth, decode(out.videos[0])[0])


def test_no_checkpoint_falls_back_to_pretrained_rife(
        short_clip: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    """A fresh install (no models/model.pt) interpolates with RIFE 4.25 and says so."""
    monkeypatch.chdir(tmp_path)  # no models/ here, whatever the repo holds
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="inbetweener"):
        assert main(["interpolate", str(short_clip.path), str(out), "--quiet"]) == 0
    fallback = [r.getMessage() for r in caplog.records if "using rife" in r.getMessage()]
    assert len(fallback) == 1 and "models/model.pt" in fallback[0]
    summary = capsys.readouterr().out
    assert "(rife)" in summary  # the summary names the method that ran
    assert int(re.search(r"(\d+) in-betweens", summary).group(1)) > 0
    frames, rate = decode(out)
    assert (len(frames), rate) == (24, 48)


def test_scale_reaches_rife(short_clip: Clip, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    import vfi.app.interpolate as app

    built = []
    real = app.make_method
    monkeypatch.setattr(app, "make_method", lambda *a: built.append(real(*a)) or built[-1])
    out = tmp_path / "out.mkv"
    assert main(["interpolate", str(short_clip.path), str(out), "--method", "rife",
                 "--scale", "0.5", "--quiet"]) == 0
    assert [(m.name, m.model.scale, m.model.multiple) for m in built] == [("rife", 0.5, 128)]
    assert len(decode(out)[0]) == 24


def test_model_with_hdv3_as_typed(short_clip: Clip, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    """`--method model+hdv3`: every in-between of a 2x run is a middle frame, so each is
    the mean of the model's (here a zero-flow net: the blend) and HDv3's."""
    checkpoint = tiny_flow_checkpoint(tmp_path / "tiny.pt", flow_init="zero")
    outs = {}
    for method in ("blend", "model+hdv3"):
        outs[method] = tmp_path / f"{method}.mkv"
        assert main(["interpolate", str(short_clip.path), str(outs[method]), "--method", method,
                     "--checkpoint", str(checkpoint), "--quiet"]) == 0
    assert "(model+hdv3)" in capsys.readouterr().out
    blend, both = decode(outs["blend"])[0], decode(outs["model+hdv3"])[0]
    assert len(both) == len(blend) == 24
    assert max(diff(a, b) for a, b in zip(blend[::2], both[::2])) < SAME  # the originals
    assert max(diff(a, b) for a, b in zip(blend[1::2], both[1::2])) > SAME  # HDv3's half


# --- audio -------------------------------------------------------------------------------


def with_audio(src: Path, dest: Path, codec: str, seconds: float = 3.0) -> Path:
    """``src``'s video packets plus a 440 Hz tone encoded with ``codec``."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        audio = out.add_stream(codec, rate=44100, layout="mono")
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        tone = np.sin(2 * np.pi * 440 * np.arange(int(seconds * 44100)) / 44100) * 0.3
        fmt = audio.codec_context.format.name
        samples = (tone * 32767).astype(np.int16) if fmt.startswith("s16") else tone.astype(np.float32)
        step = audio.codec_context.frame_size or 1024
        for start in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + step], format=fmt,
                                               layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return dest


def audio_of(path: Path) -> tuple[str, list[bytes], float]:
    """Codec, packet payloads and decoded seconds of the first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        payloads = [bytes(p) for p in container.demux(stream) if p.size]
    with av.open(str(path)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    return stream.codec_context.name, payloads, samples / stream.rate


def test_audio_is_copied(clip: Clip, tmp_path: Path) -> None:
    src = with_audio(clip.path, tmp_path / "talk.mp4", "aac")
    result = run_interpolate(Options(src=src, out=tmp_path / "out.mp4", method="blend"))
    assert result.audio and result.frames_out == 144
    codec, packets, seconds = audio_of(tmp_path / "out.mp4")
    assert (codec, packets) == audio_of(src)[:2]  # the same packets: not re-encoded
    assert seconds == pytest.approx(3.0, abs=0.05)


def test_audio_mp4_players_cannot_play_is_re_encoded(clip: Clip, tmp_path: Path) -> None:
    src = with_audio(clip.path, tmp_path / "talk.mkv", "pcm_s16le")
    run_interpolate(Options(src=src, out=tmp_path / "out.mp4", method="blend"))
    codec, _, seconds = audio_of(tmp_path / "out.mp4")
    assert codec == "aac" and seconds == pytest.approx(3.0, abs=0.1)


# --- bad input -----------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture, src: Path, out: Path, *args: str) -> tuple[int, str]:
    code = main(["interpolate", str(src), str(out), "--method", "blend", "--quiet", *args])
    return code, capsys.readouterr().err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def zero_frames(path: Path) -> Path:
    """A Matroska file with a video stream and no frame in it."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.mp4", "no such file"),
    (lambda d: write_html(d / "page.mp4"), "not a usable video"),
    (lambda d: zero_frames(d / "empty.mkv"), "not a usable video"),
], ids=["missing", "not-video", "zero-frames"])
def test_bad_input_is_refused(capsys, tmp_path: Path, make, message: str) -> None:
    src = make(tmp_path)
    code, err = run_cli(capsys, src, tmp_path / "out.mp4")
    assert code == 2 and message in err and str(src) in err
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--factor", "1"], "--factor must be"), (["--factor", "0"], "--factor must be"),
    (["--fps", "-5"], "--fps must be positive"),
    (["--method", "model", "--checkpoint", "nowhere/model.pt"], "dvc repro"),
    (["--scale", "0"], "--scale must be in (0, 1]"), (["--scale", "1.5"], "got 1.5"),
    (["--scale", "nan"], "--scale must be in (0, 1]"),
    (["--method", "hdv3", "--fps", "60"], "middle frames only"),
    (["--method", "hdv3", "--retime"], "--method model+hdv3"),
], ids=["factor-1", "factor-0", "negative-fps", "no-checkpoint", "scale-0", "scale-1.5",
        "scale-nan", "hdv3-at-60-fps", "hdv3-retimed"])
def test_bad_options_are_refused(clip: Clip, capsys, tmp_path: Path, args, message) -> None:
    code, err = run_cli(capsys, clip.path, tmp_path / "out.mp4", *args)
    assert code == 2 and message in err
    assert list(tmp_path.iterdir()) == []


def test_missing_checkpoint_suggests_what_to_do(clip: Clip, capsys, tmp_path: Path) -> None:
    _, err = run_cli(capsys, clip.path, tmp_path / "o.mp4", "--method", "model",
                     "--checkpoint", str(tmp_path / "none.pt"))
    assert "dvc repro" in err and "--method blend" in err


def test_existing_output_needs_overwrite(clip: Clip, capsys, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    code, err = run_cli(capsys, clip.path, out)
    assert code == 2 and "--overwrite" in err and out.read_bytes() == b"keep me"
    code, _ = run_cli(capsys, clip.path, out, "--overwrite")
    assert code == 0 and len(decode(out)[0]) == 144 and leftovers(tmp_path) == []


def test_unwritable_output_is_refused(clip: Clip, capsys, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_bytes(b"")
    for out, message in ((tmp_path / "no" / "out.mp4", "does not exist"),
                         (a_file / "out.mp4", "is not a folder"),
                         (tmp_path / "out.avi", "unsupported output suffix")):
        code, err = run_cli(capsys, clip.path, out)
        assert code == 2 and message in err, (out, err)
    if os.geteuid() != 0:  # root writes anywhere: a read-only folder stops only others
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        code, err = run_cli(capsys, clip.path, locked / "out.mp4")
        assert code == 2 and "not writable" in err
    if Path("/proc/self").is_dir():  # where nobody, not even root, can create a file
        code, err = run_cli(capsys, clip.path, Path("/proc/out.mp4"))
        assert code == 2 and "/proc/out.mp4" in err and not Path("/proc/out.mp4").exists()


def test_failure_midway_leaves_nothing(clip: Clip, tmp_path: Path) -> None:
    def broken(f0: np.ndarray, f2: np.ndarray, ts: list[float]) -> list[np.ndarray]:
        raise RuntimeError("method failed")

    with pytest.raises(RuntimeError, match="method failed"):
        run_interpolate(Options(src=clip.path, out=tmp_path / "out.mp4"), method=broken)
    assert list(tmp_path.iterdir()) == []


def test_bad_params_file_names_the_key(clip: Clip, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("sources: [{name: s, kind: synthetic}]\ncuts: {treshold: 3}\n")
    with pytest.raises(InterpolateError, match="cuts.treshold"):
        run_interpolate(Options(src=clip.path, out=tmp_path / "out.mp4", method="blend",
                                params=params))


# --- which settings: the defaults wherever it runs, or --params FILE --------------------


@pytest.fixture
def other_params(tmp_path: Path) -> Path:
    """A params.yaml whose cut detector finds no cut of the clip (the defaults find 3)."""
    path = tmp_path / "params.yaml"
    path.write_text("sources: [{name: s, kind: synthetic}]\n"
                    "cuts: {detector: content, threshold: 255.0}\n")
    return path


def summary_of(capsys: pytest.CaptureFixture, clip: Clip, out: Path, *args: str) -> str:
    assert main(["interpolate", str(clip.path), str(out), "--method", "blend", "--quiet",
                 *args]) == 0
    return capsys.readouterr().out


def test_a_params_yaml_in_the_working_folder_is_not_read(
        clip: Clip, other_params: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The same command cuts a film the same way from any folder (issue 20)."""
    monkeypatch.chdir(other_params.parent)
    line = summary_of(capsys, clip, Path("out.mp4"))
    assert "settings: defaults (= params.yaml)" in line and "; 3 cuts," in line


def test_params_option_uses_that_file(clip: Clip, other_params: Path, tmp_path: Path,
                                      capsys) -> None:
    line = summary_of(capsys, clip, tmp_path / "out.mp4", "--params", str(other_params))
    assert f"settings: {other_params};" in line and "; 0 cuts," in line


def test_cli_parser_does_not_import_torch() -> None:
    code = "import sys; from inbetweener.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_telecined_input_is_inverse_telecined(tmp_path: Path) -> None:
    """A 3:2 telecined 30 fps input is interpolated from its 24 progressive frames:
    --factor 2 gives 48 fps, and no output frame at a source time is a field blend."""
    spec = SynthSpec(clips=1, seed=4, width=160, height=120, seconds=2, min_shot_seconds=0.5,
                     max_shot_seconds=1.0, static_prob=0.0, repeat_prob=0.0, telecine=True)
    gen = generate(spec, tmp_path)
    result = run_interpolate(Options(src=gen.videos[0], out=tmp_path / "out.mp4", method="blend"))
    out, rate = decode(tmp_path / "out.mp4")
    assert result.scan == "telecine" and rate == 48
    assert result.frames_in == len(gen.truth) == 48 and len(out) == 96
    clip = plan_set(spec).clips[0]
    film = np.stack([rgb for rgb, n in progressive_frames(spec, clip, 0) for _ in range(n)]).astype(np.int16)
    # each output frame at a source time is a film frame (decimate may keep a held
    # frame's twin, one off), never a blend of two fields
    worst = max(min(diff(out[2 * k], film[j]) for j in range(max(k - 1, 0), min(k + 2, len(film))))
                for k in range(len(film)))
    assert worst < SAME
