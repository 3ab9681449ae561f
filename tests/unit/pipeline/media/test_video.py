"""pipeline.media.video: both backends agree, auto/fallback choose right, sizes and pts hold."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from support.videos import write_corrupt_payload, write_vfr_video, write_video

from pipeline.media.video import (
    AUTO_BACKEND,
    AUTO_MEASURED,
    ReaderError,
    StreamInfo,
    analysis_size,
    auto_backends,
    choose_backend,
    decord_refusal,
    open_reader,
    stream_info,
)
from pipeline.synth import SynthSpec, generate

FRAMES = 30


@pytest.fixture(scope="module")
def synth_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small H.264 clip of the synthetic cartoon source (160x120, 72 frames)."""
    out = generate(SynthSpec(clips=1, seconds=3.0, width=160, height=120, seed=1),
                   tmp_path_factory.mktemp("synth"))
    return out.videos[0]


def _read(path: Path, short_side: int, backend: str = "auto", **kw) -> tuple[str, list, str]:
    with open_reader(path, short_side, backend, **kw) as reader:
        frames = list(reader)
    return reader.name, frames, reader.error


@pytest.mark.parametrize("short_side", [96, 120])
def test_decord_and_pyav_agree(synth_clip: Path, short_side: int):
    name_d, dec, err_d = _read(synth_clip, short_side, "decord", codec="h264", frames=72)
    name_p, pya, err_p = _read(synth_clip, short_side, "pyav")
    assert (name_d, name_p, err_d, err_p) == ("decord", "pyav", "", "")
    assert len(dec) == len(pya) == 72
    assert [f.index for f in dec] == list(range(72))
    assert [f.pts for f in dec] == pytest.approx([f.pts for f in pya], abs=1e-9)
    assert [f.pts for f in pya] == pytest.approx(np.arange(72) / 24.0, abs=1e-9)
    diffs = [np.abs(a.rgb.astype(np.int16) - b.rgb.astype(np.int16)).mean()
             for a, b in zip(dec, pya)]
    # Same decoder and colour conversion; only the scalers differ (none at native size).
    assert max(diffs) < (0.01 if short_side == 120 else 2.0), max(diffs)


CODECS = [
    pytest.param("gif.gif", {"codec": "gif", "pix_fmt": "rgb8"}, "pyav", id="gif"),
    pytest.param("vp9.webm", {"codec": "libvpx-vp9"}, "decord", id="vp9"),
    pytest.param("av1.mkv", {"codec": "libsvtav1"}, "pyav", id="av1",
                 marks=pytest.mark.skipif("libsvtav1" not in av.codecs_available,
                                          reason="no AV1 encoder in this FFmpeg")),
]


@pytest.mark.parametrize(("name", "options", "with_decord"), CODECS)
def test_auto_and_fallback_read_every_codec(tmp_path: Path, name: str, options: dict,
                                            with_decord: str):
    """auto reads with PyAV; asking for decord falls back where decord cannot decode."""
    path = write_video(tmp_path / name, frames=FRAMES, size=(64, 48), **options)
    reader, frames, error = _read(path, 32, "auto", frames=FRAMES)
    assert (reader, len(frames), error) == ("pyav", FRAMES, "")
    reader, frames, error = _read(path, 32, "decord", frames=FRAMES)
    assert (reader, len(frames), error) == (with_decord, FRAMES, "")


def test_decord_that_cannot_open_falls_back(tmp_path: Path):
    """A wrong codec hint sends a GIF to decord, which fails to open it: PyAV takes over."""
    path = write_video(tmp_path / "x.gif", frames=FRAMES, size=(64, 48), codec="gif",
                       pix_fmt="rgb8")
    reader, frames, _ = _read(path, 32, "decord", codec="h264", frames=FRAMES)
    assert (reader, len(frames)) == ("pyav", FRAMES)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_vfr_pts_come_from_the_container(tmp_path: Path, backend: str):
    times = (0, 40, 120, 300, 500, 520)
    path = write_vfr_video(tmp_path / "vfr.mkv", times_ms=times)
    reader, frames, error = _read(path, 32, backend, codec="h264", frames=len(times))
    assert (reader, error) == (backend, "")
    assert [f.pts for f in frames] == pytest.approx([t / 1000 for t in times], abs=1e-9)


@pytest.mark.parametrize(("size", "short_side", "expected"), [
    ((64, 48), 32, (42, 32)),       # landscape: short side exact, aspect kept, even
    ((48, 64), 32, (32, 42)),       # portrait
    ((1440, 1074), 192, (258, 192)),  # Popeye
    ((16, 16), 32, (16, 16)),       # never upscaled
    ((17, 13), 192, (16, 12)),      # odd sides rounded down to even, not upscaled
    ((320, 240), 33, (44, 32)),     # odd short side: an even neighbour
])
def test_analysis_size(size: tuple[int, int], short_side: int, expected: tuple[int, int]):
    assert analysis_size(*size, short_side) == expected


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_reader_honours_analysis_size(tmp_path: Path, backend: str):
    path = write_video(tmp_path / "wide.mp4", frames=6, size=(96, 48))
    reader, frames, _ = _read(path, 32, backend, codec="h264", frames=6)
    assert reader == backend
    assert {f.rgb.shape for f in frames} == {(32, 64, 3)}
    assert {f.rgb.dtype for f in frames} == {np.dtype(np.uint8)}


def test_decord_stops_at_the_demux_count(tmp_path: Path):
    """The probe's count bounds decord even when its own index claims more frames."""
    path = write_video(tmp_path / "clip.mp4", frames=FRAMES, size=(64, 48))
    reader, frames, error = _read(path, 32, "decord", codec="h264", frames=20)
    assert (reader, len(frames), error) == ("decord", 20, "")


def test_decord_with_fewer_frames_than_the_demux_falls_back(tmp_path: Path):
    """decord's index missing frames the demux found: PyAV reads what is really there."""
    path = write_video(tmp_path / "clip.mp4", frames=FRAMES, size=(64, 48))
    reader, frames, _ = _read(path, 32, "decord", codec="h264", frames=FRAMES + 10)
    assert (reader, len(frames)) == ("pyav", FRAMES)


def test_decode_error_is_recorded_not_raised(tmp_path: Path):
    clip = write_video(tmp_path / "clip.mp4", frames=12, size=(64, 48))
    broken = write_corrupt_payload(clip, tmp_path / "broken.mp4")
    reader, frames, error = _read(broken, 32, "pyav")
    assert reader == "pyav" and not frames
    assert error.startswith("decode failed after 0 frames")


@pytest.mark.parametrize(("content", "reason"), [(b"", "empty file"),
                                                 (b"<html>nope</html>", "cannot open")])
def test_unreadable_files_raise_reader_error(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(ReaderError, match=reason):
        open_reader(path, 32)


def test_frames_stream_without_accumulating(synth_clip: Path):
    """Iteration hands out one frame at a time (a generator), so memory stays flat."""
    with open_reader(synth_clip, 96) as reader:
        it = iter(reader)
        first = next(it)
        assert first.index == 0 and reader.frames_read == 0
        assert sum(1 for _ in it) == 71 and reader.frames_read == 72


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_reading_wanted_frames_gives_those_of_a_full_pass(synth_clip: Path, backend: str):
    """Only the wanted indices come out, sorted once each, exactly as a full pass has them."""
    with open_reader(synth_clip, 96, backend, codec="h264", frames=72) as reader:
        full = list(reader)
    with open_reader(synth_clip, 96, backend, codec="h264", frames=72) as reader:
        some = list(reader.read([70, 3, 3, 40, 17, 2]))
    assert reader.name == backend and not reader.error and reader.frames_read == 5
    assert [f.index for f in some] == [2, 3, 17, 40, 70]
    for frame in some:
        np.testing.assert_array_equal(frame.rgb, full[frame.index].rgb)
        assert frame.pts == full[frame.index].pts


def _info(video_streams: int = 1, pictures: int = 0) -> StreamInfo:
    return StreamInfo("h264", 64, 48, 24.0, None, 0, video_streams, pictures)


@pytest.mark.parametrize(("info", "codec", "frames", "refused"), [
    pytest.param(_info(), "h264", 30, "", id="one-stream"),
    pytest.param(_info(), "h264", None, "", id="one-stream-no-count"),
    pytest.param(_info(), "av1", 30, "decord does not decode av1", id="codec"),
    pytest.param(_info(2), "h264", 30, "2 video streams", id="two-streams"),
    pytest.param(_info(2, pictures=1), "h264", 30, "", id="cover-art-counted"),
    pytest.param(_info(2, pictures=1), "h264", None, "attached picture", id="cover-art-uncounted"),
])
def test_decord_refusal(info: StreamInfo, codec: str, frames: int | None, refused: str):
    """decord only where it cannot read another stream than probe.main_stream."""
    got = decord_refusal(info, codec, frames)
    assert (got == "") if not refused else (refused in got)


def test_stream_info_counts_the_video_streams(synth_clip: Path):
    info = stream_info(synth_clip)
    assert (info.index, info.video_streams, info.pictures) == (0, 1, 0)


def test_auto_follows_the_measured_table():
    """decord only where it beats PyAV by the margin on both wall and CPU frames/s (a
    switch changes the analysis pixels); explicit choices pass through."""
    table = {"a": {"pyav": (100.0, 100.0), "decord": (120.0, 111.0)},
             "b": {"pyav": (100.0, 100.0), "decord": (150.0, 105.0)},
             "c": {"pyav": (100.0, 100.0), "decord": (90.0, 130.0)}}
    assert auto_backends(table, margin=1.1) == {"a": "decord"}
    assert AUTO_BACKEND == auto_backends(AUTO_MEASURED)
    for codec in AUTO_MEASURED:
        assert choose_backend(codec) == AUTO_BACKEND.get(codec, "pyav")
        assert choose_backend(codec, "decord") == "decord"
    assert choose_backend("vp8") == "pyav"
