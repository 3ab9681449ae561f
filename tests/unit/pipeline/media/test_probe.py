"""probe(): real codecs and containers probe right; every kind of bad file says why."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from support.videos import (
    write_audio_only,
    write_corrupt_payload,
    write_html,
    write_truncated,
    write_unknown_codec,
    write_vfr_video,
    write_video,
    write_zero_byte,
    write_zero_width,
)

from pipeline.media.probe import ProbeError, ProbeInfo, probe

QUIET_X265 = {"x265-params": "log-level=none"}


def _needs(codec: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(codec not in av.codecs_available, reason=f"no {codec} encoder")


# (file name, write_video kwargs, codec, pix_fmt, container prefix)
GOOD = [
    pytest.param("h264.mp4", {}, "h264", "yuv420p", "mov", id="h264-mp4"),
    pytest.param("fast.mp4", {"container_options": {"movflags": "+faststart"}}, "h264",
                 "yuv420p", "mov", id="h264-mp4-faststart"),
    pytest.param("mpeg4.mp4", {"codec": "mpeg4"}, "mpeg4", "yuv420p", "mov", id="mpeg4"),
    pytest.param("anim.gif", {"codec": "gif", "pix_fmt": "rgb8"}, "gif", "bgra", "gif",
                 id="gif"),
    pytest.param("vp9.webm", {"codec": "libvpx-vp9"}, "vp9", "yuv420p", "matroska", id="vp9",
                 marks=_needs("libvpx-vp9")),
    pytest.param("vp8.webm", {"codec": "libvpx"}, "vp8", "yuv420p", "matroska", id="vp8",
                 marks=_needs("libvpx")),
    pytest.param("av1.mkv", {"codec": "libsvtav1"}, "av1", "yuv420p", "matroska", id="av1",
                 marks=_needs("libsvtav1")),
    pytest.param("hevc.mkv", {"codec": "libx265", "codec_options": QUIET_X265}, "hevc",
                 "yuv420p", "matroska", id="hevc", marks=_needs("libx265")),
    pytest.param("gray.mkv", {"codec": "ffv1", "pix_fmt": "gray"}, "ffv1", "gray", "matroska",
                 id="ffv1-gray"),
    pytest.param("h444.mp4", {"pix_fmt": "yuv444p"}, "h264", "yuv444p", "mov", id="yuv444p"),
]


@pytest.mark.parametrize(("name", "kwargs", "codec", "pix_fmt", "container"), GOOD)
def test_good_videos(tmp_path: Path, name, kwargs, codec, pix_fmt, container):
    info = probe(write_video(tmp_path / name, frames=24, size=(64, 48), fps=24, **kwargs))
    assert isinstance(info, ProbeInfo)
    assert (info.codec, info.width, info.height, info.frames) == (codec, 64, 48, 24)
    assert info.pix_fmt == pix_fmt and info.container.startswith(container)
    assert info.fps == pytest.approx(24.0)  # GIF: 4 and 5 cs delays average to 24 fps
    assert info.duration == pytest.approx(1.0, abs=0.01)
    assert info.header_frames in (0, 24)


def test_gray_h264_probes(tmp_path: Path):
    """x264 4:0:0; FFmpeg builds differ on whether it decodes to gray or yuv420p."""
    info = probe(write_video(tmp_path / "gray.mp4", pix_fmt="gray"))
    assert (info.codec, info.frames) == ("h264", 24) and info.pix_fmt in ("gray", "yuv420p")


def test_tiny_and_single_frame(tmp_path: Path):
    tiny = probe(write_video(tmp_path / "tiny.mp4", size=(16, 16)))
    assert (tiny.width, tiny.height, tiny.frames) == (16, 16, 24)
    one = probe(write_video(tmp_path / "one.mp4", frames=1))
    assert (one.frames, one.header_frames) == (1, 1)
    assert one.duration == pytest.approx(1 / 24)


def test_variable_frame_rate_duration_comes_from_timestamps(tmp_path: Path):
    info = probe(write_vfr_video(tmp_path / "vfr.mkv", times_ms=(0, 40, 120, 300, 500)))
    assert info.frames == 5
    assert info.duration == pytest.approx(0.54, abs=0.002)  # last pts 0.5 s + 40 ms
    assert info.fps == pytest.approx(5 / 0.54, rel=0.01), "the nominal 25 fps is not the average"


def test_unknown_segment_size_and_zero_padding_are_not_truncation(tmp_path: Path):
    """Live-muxed mkv has no Segment size; some muxers pad mp4 with zero bytes."""
    live = write_video(tmp_path / "live.webm", codec="libvpx-vp9",
                       container_options={"live": "1"})
    assert probe(live).frames == 24
    padded = write_video(tmp_path / "padded.mp4")
    padded.write_bytes(padded.read_bytes() + b"\0\0\0\0")
    assert probe(padded).frames == 24


@pytest.fixture()
def mp4(tmp_path: Path) -> Path:
    return write_video(tmp_path / "src.mp4", frames=24)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d, src: write_zero_byte(d / "zero.mp4"), "empty file"),
        (lambda d, src: d / "missing.mp4", "no such file"),
        (lambda d, src: write_html(d / "page.mp4"), "html page, not a video"),
        (lambda d, src: _text(d / "notes.mp4"), "not a media file: "),
        (lambda d, src: write_audio_only(d / "sound.wav"), "no video stream"),
        (lambda d, src: write_unknown_codec(d / "unknown.avi"), "unsupported codec: "),
        (lambda d, src: write_unknown_codec(d / "unknown.mkv"), "unsupported codec: "),
        (lambda d, src: write_zero_width(d / "zero_width.avi"), "zero size: 0x0"),
        (lambda d, src: write_corrupt_payload(src, d / "garbage.mp4"), "cannot decode h264: "),
        (lambda d, src: write_truncated(src, d / "cut.mp4", 0.6),
         "truncated: container needs "),
        (lambda d, src: write_truncated(
            write_video(d / "fs.mp4", container_options={"movflags": "+faststart"}),
            d / "cut_fs.mp4", 0.6), "truncated: header says 24 frames, found "),
        (lambda d, src: write_truncated(
            write_video(d / "v.webm", codec="libvpx-vp9"), d / "cut.webm", 0.6),
         "truncated: header says 1.000 s, found "),
        (lambda d, src: write_truncated(
            write_video(d / "v.webm", codec="libvpx-vp9"), d / "tail.webm", 0.97),
         "truncated: container needs "),
        (lambda d, src: write_truncated(
            write_video(d / "h.mkv", codec="libx265", codec_options=QUIET_X265),
            d / "cut.mkv", 0.6), "truncated"),
    ],
    ids=["zero-byte", "missing", "html", "text", "audio-only", "unknown-fourcc-avi",
         "unknown-codec-mkv", "zero-width", "corrupt-payload", "truncated-mp4",
         "truncated-mp4-faststart", "truncated-webm", "truncated-webm-tail",
         "truncated-hevc-mkv"],
)
def test_bad_files_say_why(tmp_path: Path, mp4: Path, make, reason):
    with pytest.raises(ProbeError) as exc:
        probe(make(tmp_path, mp4))
    assert exc.value.reason.startswith(reason), exc.value.reason


def _text(path: Path) -> Path:
    path.write_text("just some notes, not a video at all\n" * 4)
    return path
