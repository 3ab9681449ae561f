"""pipeline.media.scan and the decode filter: telecine, interlace and bars found per source, and
every reader decoding through what was found.

Inputs are built here from the synthetic source, whose progressive frames are the truth:
a 3:2 telecined copy (FFmpeg's ``telecine`` filter through PyAV, re-encoded at 29.97),
an interlaced one (fields of a 48 fps render woven two by two), and padded ones (the
``pad`` filter) with bars of known size.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from support.real_like import TELECINE_SPEC

from pipeline.analysis.analyse import _status, jobs_from
from pipeline.analysis.worker import analyse_source
from pipeline.core.config import CutsParams, DownloadParams
from pipeline.media import scan
from pipeline.media.decode_filter import (
    NO_FILTER,
    SCAN_COLUMNS,
    DecodeFilter,
    FilterGraph,
    ScanError,
    filtered,
)
from pipeline.media.probe import probe
from pipeline.media.scan import scan_source
from pipeline.media.video import StreamInfo, decord_refusal, open_reader, read_frames
from pipeline.sources.download import finish_file
from pipeline.sources.record import SourceRecord, records_by_name, records_table
from pipeline.synth import SynthSpec, generate, plan_set, telecine_table

W, H = 320, 240
NTSC = Fraction(30000, 1001)


def _encode(frames: list[av.VideoFrame] | list[np.ndarray], path: Path, rate: Fraction) -> Path:
    """Frames (PyAV frames or RGB arrays) as near-lossless H.264 at ``rate``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"crf": "8", "threads": "1"})
        first = frames[0]
        stream.height, stream.width = (first.height, first.width) if isinstance(
            first, av.VideoFrame) else first.shape[:2]
        stream.pix_fmt = "yuv420p"
        for i, frame in enumerate(frames):
            if isinstance(frame, np.ndarray):
                frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _through(src: Path, chain: list[tuple[str, str]]) -> list[av.VideoFrame]:
    """Every frame of ``src`` through an FFmpeg filter chain (the code under test's own
    graph wrapper, so the inputs are made the way FFmpeg makes them)."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        graph = FilterGraph(stream, chain)
        return list(filtered(container.decode(stream), graph))


def _rgb(path: Path, decode: DecodeFilter = NO_FILTER) -> list[np.ndarray]:
    with open_reader(path, 10_000, "pyav", decode=decode) as reader:
        return [f.rgb for f in reader]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """progressive (the truth), telecined, interlaced, letterboxed and pillarboxed clips."""
    root = tmp_path_factory.mktemp("scan")
    cartoon = generate(SynthSpec(clips=1, seconds=4.0, width=W, height=H, seed=3, crf=8),
                       root / "p").videos[0]
    prog = _encode([_with_bar(rgb, k) for k, rgb in enumerate(_rgb(cartoon))],
                   root / "progressive.mp4", Fraction(24))
    out = {"progressive": prog}
    out["telecine"] = _encode(_through(prog, [("telecine", "first_field=top:pattern=23")]),
                              root / "telecine.mp4", NTSC)
    fast = generate(SynthSpec(clips=1, seconds=4.0, width=W, height=H, seed=4, fps=48, crf=8),
                    root / "f").videos[0]
    rgb = [_with_bar(f, k) for k, f in enumerate(_rgb(fast))]
    out["fast"] = _encode(rgb, root / "fast.mp4", Fraction(48))
    woven = [np.where((np.arange(H) % 2 == 0)[:, None, None], rgb[k], rgb[k + 1])
             for k in range(0, len(rgb) - 1, 2)]  # top field first, from the earlier frame
    out["interlaced"] = _encode(woven, root / "interlaced.mp4", Fraction(24))
    out["letterbox"] = _encode(_through(prog, [("pad", f"{W}:{H + 48}:0:24:black")]),
                               root / "letterbox.mp4", Fraction(24))
    out["pillarbox"] = _encode(_through(prog, [("pad", f"{W + 64}:{H}:32:0:black")]),
                               root / "pillarbox.mp4", Fraction(24))
    return out


def _with_bar(rgb: np.ndarray, k: int) -> np.ndarray:
    """The cartoon frame with a white bar crossing it on ones (8 px a frame): motion in
    every frame, so every field-woven frame of a telecine is visibly no film frame."""
    out = rgb.copy()
    x = (8 * k) % (W - 16)
    out[40:200, x:x + 16] = 255
    return out


def _scan(path: Path, **kw) -> scan.ScanResult:
    info = probe(path)
    return scan_source(path, info.fps, info.frames, info.duration, **kw)


def test_progressive_source_is_untouched(clips):
    got = _scan(clips["progressive"])
    assert got.error == ""
    assert got.filter == NO_FILTER and not got.filter.active
    assert got.columns()["crop"] == "" and got.columns()["scan"] == "progressive"
    assert got.out_frames == probe(clips["progressive"]).frames
    assert got.sampled == got.out_frames  # a short clip is scanned whole


def test_telecine_detected_and_inverted_to_the_progressive_frames(clips):
    got = _scan(clips["telecine"])
    assert (got.filter.scan, got.filter.field_order, got.filter.pattern) == ("telecine", "tff", "3:2")
    assert got.out_fps == pytest.approx(24000 / 1001)
    truth = _rgb(clips["progressive"])
    raw = _rgb(clips["telecine"])
    assert len(raw) == len(truth) * 5 // 4
    # The test can fail: decoded plainly, the telecined clip has field-woven frames that
    # match no progressive frame.
    woven = [max(psnr(f, t) for t in truth[max(0, k * 4 // 5 - 2):k * 4 // 5 + 3]) < 30
             for k, f in enumerate(raw)]
    assert sum(woven) >= len(raw) // 5, sum(woven)
    out = _rgb(clips["telecine"], got.filter)
    assert len(out) == len(truth) == got.out_frames
    # No field blend: every output frame is a progressive frame, at its own place or,
    # within a held drawing that decimate cannot tell from the pulldown duplicate
    # (x264 codes an exact hold as skipped blocks), the next or previous one.
    near = [max(psnr(f, truth[j]) for j in range(max(0, k - 1), min(len(truth), k + 2)))
            for k, f in enumerate(out)]
    assert min(near) > 30, min(near)
    exact = [psnr(f, t) > 30 for f, t in zip(out, truth)]
    assert np.mean(exact) >= 0.95, np.mean(exact)
    assert max(combing(f) for f in out) < 0.75 < 0.9 < max(combing(f) for f in raw)


def test_telecine_output_pts_are_film_rate(clips):
    d = _scan(clips["telecine"]).filter
    with open_reader(clips["telecine"], 96, decode=d) as reader:
        every = list(reader)
    pts = np.array([f.pts for f in every])
    assert reader.name == "pyav" and reader.error == ""
    assert np.all(np.diff(pts) > 0)
    assert np.diff(pts) == pytest.approx(1001 / 24000, abs=1e-6)
    # The shard stage's sparse read (frames=the demux count) gives the same output frames.
    wanted = [1, 2, 40, 41, 42, len(every) - 1]
    some = list(read_frames(clips["telecine"], wanted, 96, frames=120, decode=d))
    assert [f.index for f in some] == wanted
    assert all(np.array_equal(f.rgb, every[f.index].rgb) and f.pts == every[f.index].pts
               for f in some)


def test_interlaced_detected_and_deinterlaced(clips):
    got = _scan(clips["interlaced"])
    assert (got.filter.scan, got.filter.field_order, got.filter.pattern) == ("interlaced", "tff", "")
    assert got.out_fps == pytest.approx(24.0) and got.out_frames == probe(clips["interlaced"]).frames
    fast = _rgb(clips["fast"])
    raw, out = _rgb(clips["interlaced"]), _rgb(clips["interlaced"], got.filter)
    assert len(out) == len(raw)
    # bwdif (send_frame) keeps the top field's instant: each frame is nearer to the
    # 48 fps frame that field came from than the woven frame is (combing removed).
    better = [psnr(o, fast[2 * k]) > psnr(r, fast[2 * k]) for k, (o, r) in enumerate(zip(out, raw))]
    assert np.mean(better) > 0.8, np.mean(better)


@pytest.mark.parametrize("kind, crop", [("letterbox", f"{W}:{H}:0:24"),
                                        ("pillarbox", f"{W}:{H}:32:0")])
def test_bars_cropped_exactly_for_analysis_and_shard(clips, kind, crop, tmp_path):
    got = _scan(clips[kind])
    assert got.filter == DecodeFilter(crop=crop)
    truth = _rgb(clips["progressive"])
    # Analysis (open_reader, as detect_cuts calls it) and the shard/naive reads (through
    # what sources.parquet records next to the video) see the same bar-free frames.
    row = finish_file(SourceRecord(kind, kind, "path", kind, "", ""), clips[kind], clips[kind].parent)
    records_table([row]).to_parquet(clips[kind].parent / "sources.parquet")
    recorded = records_by_name(clips[kind].parent)[kind].decode
    assert recorded == got.filter
    with open_reader(clips[kind], H, "auto", decode=recorded) as reader:
        analysis = [f.rgb for f in reader]
    assert reader.size == (W, H)
    assert len(analysis) == len(truth)
    assert min(psnr(a, t) for a, t in zip(analysis, truth)) > 30
    wanted = [0, 7, len(truth) - 1]
    shard = list(read_frames(clips[kind], wanted, H, frames=len(truth), decode=recorded))
    assert [f.index for f in shard] == wanted
    for f in shard:
        assert np.array_equal(f.rgb, analysis[f.index])


def test_bars_below_two_percent_and_picture_are_kept(clips, tmp_path):
    thin = _encode(_through(clips["progressive"], [("pad", f"{W}:{H + 4}:0:2:black")]),
                   tmp_path / "thin.mp4", Fraction(24))
    assert _scan(thin).filter.crop == ""  # 2 px of 244 is under 2%
    black = _encode([np.zeros((H, W, 3), np.uint8)] * 12, tmp_path / "black.mp4", Fraction(24))
    got = _scan(black)
    assert got.filter.crop == "" and "dark everywhere" in got.error


def test_scan_off_and_crop_off(clips):
    assert _scan(clips["telecine"], scan="off").filter == NO_FILTER
    assert _scan(clips["letterbox"], crop_bars="off").filter == NO_FILTER
    params = DownloadParams(scan="off", crop_bars="off")
    assert "scan" not in params.fetch_policy() and "crop_bars" not in params.fetch_policy()


def test_a_failed_scan_is_recorded_and_the_source_decodes_unfiltered(clips, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise ValueError("no idet here")

    monkeypatch.setattr(scan, "FilterGraph", broken)
    src = clips["telecine"]
    row = finish_file(SourceRecord("t", "t", "path", "t", "", ""), src, src.parent)
    assert row.status == "ok" and row.scan == "progressive"
    assert row.scan_error == "scan failed, decoded unfiltered: no idet here"
    assert row.out_frames == row.frames == 120


def test_a_filter_ffmpeg_cannot_build_decodes_unfiltered(clips):
    too_big = DecodeFilter(crop=f"{W * 2}:{H}:0:0")
    with open_reader(clips["progressive"], H, decode=too_big) as reader:
        frames = list(reader)
    assert "read unfiltered" in reader.note and len(frames) == 96 and reader.size == (W, H)


def test_decord_refused_for_filters():
    info = StreamInfo("h264", W, H, 24.0, Fraction(1, 12288))
    assert decord_refusal(info, "h264", 96) == ""
    assert "telecine" in decord_refusal(info, "h264", 96, DecodeFilter("telecine", "tff", "3:2"))
    assert "crop" in decord_refusal(info, "h264", 96, DecodeFilter(crop="320:200:0:20"))


def test_bad_recorded_filters_fail_clearly():
    record = SourceRecord("odd", "odd", "path", "odd", "", "", crop="320x200")
    with pytest.raises(ScanError, match="sources.parquet: source odd: .*crop"):
        record.decode
    with pytest.raises(ScanError, match="crop"):
        DecodeFilter(crop="320x200")
    with pytest.raises(ScanError, match="field order"):
        DecodeFilter("interlaced")
    with pytest.raises(ScanError, match="pattern"):
        DecodeFilter("interlaced", "tff", "3:2")


def test_detect_cuts_analyses_an_ivtc_source_as_whole(clips, tmp_path):
    """decoded.parquet must not call a 3:2 source "partial" for giving 4/5 of its packets;
    and a table from before the scan columns decodes unfiltered."""
    src = clips["telecine"]
    row = finish_file(SourceRecord("tel", "tel", "path", "tel", "", ""), src, src.parent)
    table = records_table([row])
    (job,) = jobs_from([row], src.parent, "auto")
    assert job.decode.scan == "telecine" and job.fps == pytest.approx(24000 / 1001)
    analysis = analyse_source(job, CutsParams(detector="content"))
    assert analysis.frames == 96 == job.expected and analysis.reader == "pyav"
    assert _status(job, analysis, "") == ("ok", "")
    old = table.drop(columns=list(SCAN_COLUMNS)).to_dict("records")
    (plain,) = jobs_from([SourceRecord.from_row(r) for r in old], src.parent, "auto")
    assert plain.decode == NO_FILTER and plain.expected == 120


def test_the_synthetic_telecine_source_gives_back_its_progressive_frames(tmp_path):
    """The synthetic source's own 3:2 clip (``telecine: true``) against the same clip
    rendered progressive, with its field truth: which encoded frames are woven."""
    spec = dict(clips=1, seconds=4.0, width=W, height=H, seed=3, crf=8, pan_ones_prob=1.0,
                static_prob=0.0, repeat_prob=0.0)
    tel = generate(SynthSpec(**spec, telecine=True), tmp_path / "t")
    truth = _rgb(generate(SynthSpec(**spec), tmp_path / "p").videos[0])
    fields = telecine_table(plan_set(SynthSpec(**spec, telecine=True)), "synthetic")
    got = _scan(tel.videos[0])
    assert (got.filter.scan, got.filter.pattern, got.out_fps) == ("telecine", "3:2", 24.0)
    out = _rgb(tel.videos[0], got.filter)
    assert len(fields) == len(truth) * 5 // 4 and len(out) == len(truth) == got.out_frames
    assert fields["blended"].sum() == 2 * len(fields) // 5  # two woven frames per five
    raw = _rgb(tel.videos[0])
    woven = [psnr(raw[r.frame], truth[r.top]) < 30 for r in fields[fields["blended"]].itertuples()]
    assert np.mean(woven) > 0.25, np.mean(woven)  # plain decoding keeps field blends (holds hide the rest)
    near = [max(psnr(f, truth[j]) for j in range(max(0, k - 1), min(len(truth), k + 2)))
            for k, f in enumerate(out)]
    assert min(near) > 30, min(near)
    assert np.mean([psnr(f, t) > 30 for f, t in zip(out, truth)]) >= 0.95


@pytest.mark.parametrize("bars, crop", [
    (dict(letterbox=24), f"{W}:{H - 48}:0:24"),
    (dict(pillarbox=32, grain=4.0), f"{W - 64}:{H}:32:0"),  # grain on the picture, clean bars
    (dict(letterbox=12, pillarbox=20), f"{W - 40}:{H - 24}:20:12"),
])
def test_the_synthetic_sources_bars_are_found_exactly(tmp_path, bars, crop):
    video = generate(SynthSpec(clips=1, seconds=2.0, width=W, height=H, seed=3, **bars),
                     tmp_path).videos[0]
    got = _scan(video)
    assert got.filter == DecodeFilter(crop=crop) and got.error == ""


def test_a_cadence_broken_by_edits_still_gives_no_field_blend(clips, tmp_path):
    """Video-edited transfers cut the 3:2 sequence anywhere: fieldmatch re-locks after
    each break (decimate keeps 4 of 5), and no output frame is a field blend. A field
    left without its partner by an edit is deinterlaced (yadif), so at most one frame
    per break is a line-interpolated film frame rather than the frame itself."""
    raw = _rgb(clips["telecine"])
    edited = [f for i, f in enumerate(raw) if i not in (33, 67, 68)]
    path = _encode(edited, tmp_path / "edited.mp4", NTSC)
    got = _scan(path)
    assert (got.filter.scan, got.filter.pattern) == ("telecine", "3:2")
    truth = _rgb(clips["progressive"])
    out = _rgb(path, got.filter)
    assert len(out) == got.out_frames == len(edited) - len(edited) // 5
    near = np.array([max(psnr(f, t) for t in truth[max(0, k - 3):k + 4])
                     for k, f in enumerate(out)])
    assert (near < 30).sum() <= 2 and near.min() > 25, near.round(1)
    assert max(combing(f) for f in out) < 0.75  # woven frames measure ~1, film frames ~0.5
    assert max(combing(f) for f in raw) > 0.9  # ...and the input had them


def combing(rgb: np.ndarray) -> float:
    """Line-to-line difference over the difference between lines of one field: about 0.5
    on a film frame, about 1 or more where two instants are woven (a field blend)."""
    y = rgb.astype(np.float64).mean(2)
    across = np.abs(y[0:-1:2] - y[1::2]).mean()
    within = np.abs(y[0:-2:2] - y[2::2]).mean()
    return float(across / max(within, 1e-6))


def test_the_real_like_telecine_set_is_found_by_its_cadence_and_inverted(tmp_path):
    """Both clips of ``TELECINE_SPEC`` are 3:2 telecine, and IVTC gives back their 96
    progressive frames. Clip 1's content makes idet call half its field-matched frames
    combed, so the old "combed share after fieldmatch" test called it interlaced; the
    repeated-field cadence is what identifies it."""
    tel = generate(TELECINE_SPEC, tmp_path / "t", name="tc")
    plain = generate(SynthSpec(**{**TELECINE_SPEC.model_dump(), "telecine": False}),
                     tmp_path / "p", name="tc")
    assert len(tel.videos) == len(plain.videos) == 2
    for k, (video, prog) in enumerate(zip(tel.videos, plain.videos)):
        got = _scan(video)
        assert got.error == ""
        assert (got.filter.scan, got.filter.field_order, got.filter.pattern) == (
            "telecine", "tff", "3:2"), (k, got.idet, got.matched, got.cadence)
        assert got.out_fps == 24.0 and got.out_frames == 96
        truth = _rgb(prog)
        fields = tel.telecine[tel.telecine["clip"] == f"tc-{k:02d}"]
        assert len(truth) == 96 and len(fields) == 120
        # Can fail: decoded plainly, woven frames are no progressive frame (clip 0 is
        # mostly held drawings, whose woven frames are whole: only some of its 48 show).
        raw = _rgb(video)
        woven = [psnr(raw[r.frame], truth[r.top]) < 30
                 for r in fields[fields["blended"]].itertuples()]
        assert sum(woven) >= 4, (k, sum(woven))
        out = _rgb(video, got.filter)
        assert len(out) == 96
        near = [max(psnr(f, truth[j]) for j in range(max(0, i - 1), min(96, i + 2)))
                for i, f in enumerate(out)]
        assert min(near) > 30, (k, min(near))
        assert np.mean([psnr(f, t) > 30 for f, t in zip(out, truth)]) >= 0.95


def test_interlaced_video_at_a_pulldown_rate_has_no_cadence(clips, tmp_path):
    """Fields of different instants at 29.97 fps (the woven 48 fps render relabelled):
    repeated fields, if any, are not on the 3:2 phases, so it stays interlaced."""
    path = _encode(_rgb(clips["interlaced"]), tmp_path / "interlaced30.mp4", NTSC)
    got = _scan(path)
    assert (got.filter.scan, got.filter.field_order) == ("interlaced", "tff"), got.matched
    assert got.cadence < scan.CADENCE_SHARE


@pytest.mark.parametrize("order", ["tff", "bff"])
def test_cadence_share_of_a_pulldown_with_holds_and_of_noise(order):
    """The cadence statistic on label sequences: pulldown (including held drawings,
    which move a repeat one frame inwards) scores 1 for its own field order; labels at
    random phases score well under CADENCE_SHARE."""
    first, second = ("top", "bottom") if order == "tff" else ("bottom", "top")
    cycle = ["neither", "neither", first, "neither", second]
    held = ["neither", "neither", "neither", first, second]  # B = C: the top moves in
    run = (cycle * 10 + held * 4 + cycle * 10)[3:]  # any starting phase
    assert scan._cadence([run], order) == (1.0, sum(r != "neither" for r in run))
    other = "bff" if order == "tff" else "tff"
    assert scan._cadence([run], other)[0] < scan.CADENCE_SHARE
    rng = np.random.default_rng(0)
    noise = list(rng.choice(["top", "bottom", "neither", "neither"], 360))
    share, total = scan._cadence([noise[:120], noise[120:240], noise[240:]], order)
    assert total > 100 and share < 0.65, share
