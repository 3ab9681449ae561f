"""``kind: folder`` and ``kind: list``: expansion, derived names, clashes, bad input.

Expansion is checked on its own (what each entry becomes, in which order, under which
name) and through the download stage (the rows ``sources.parquet`` records for them).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import REPO
from support.videos import write_video

from pipeline.core.config import (
    SAFE_NAME,
    ConfigError,
    PathSource,
    UrlSource,
    parse_params,
)
from pipeline.core.stage import StageError
from pipeline.core.tables import SOURCES_TABLE
from pipeline.sources import download
from pipeline.sources.entries import (
    FailedEntry,
    Member,
    derive_names,
    expand_sources,
    list_path,
    short_hash,
    slug,
)
from pipeline.sources.fetch import sha256_file
from pipeline.sources.record import SourceRecord
from pipeline.stages import download as download_stage

ROOT = REPO


def _expand(tmp_path: Path, sources: list[dict]) -> list:
    return expand_sources(parse_params({"sources": sources}).sources, tmp_path)


def _video(path: Path, frames: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames=frames, size=(64, 48))


def _touch(base: Path, *rels: str) -> None:
    for rel in rels:
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(b"x")


FOLDER = {"kind": "folder", "name": "show", "path": "clips", "license": "CC BY 4.0",
          "attribution": "Someone", "split": "train"}


# -- folder ---------------------------------------------------------------------------


def test_folder_nested_files_sorted_with_entry_metadata(tmp_path: Path):
    _touch(tmp_path / "clips", "b.mkv", "a.MP4", "sub/deeper/c.webm", "notes.txt",
           ".hidden/d.mp4", ".e.mp4", "sub/f.srt")
    entries = _expand(tmp_path, [FOLDER])
    assert [e.uri for e in entries] == ["clips/a.MP4", "clips/b.mkv", "clips/sub/deeper/c.webm"]
    assert [e.name for e in entries] == ["show-a", "show-b", "show-sub-deeper-c"]
    for entry in entries:
        assert isinstance(entry, Member) and isinstance(entry.source, PathSource)
        assert (entry.origin, entry.kind) == ("show", "folder")
        assert entry.source.path == entry.uri  # relative to params.yaml, as run_path opens it
        assert (entry.source.license, entry.source.attribution, entry.source.split) == (
            "CC BY 4.0", "Someone", "train")


@pytest.mark.parametrize(
    ("glob", "expected"),
    [("*.mkv", ["clips/top.mkv"]),
     ("**/*.mkv", ["clips/deep/x.mkv", "clips/top.mkv"]),
     ("deep/*", ["clips/deep/notes.txt", "clips/deep/x.mkv"])],
    ids=["flat", "recursive", "any-suffix"],
)
def test_folder_glob(tmp_path: Path, glob: str, expected: list[str]):
    _touch(tmp_path / "clips", "top.mkv", "deep/x.mkv", "deep/notes.txt", "top.mp4")
    entries = _expand(tmp_path, [FOLDER | {"glob": glob}])
    assert [e.uri for e in entries] == expected


@pytest.mark.parametrize(
    ("stem", "expected"),
    [("My Clip (1)", "show-My-Clip-1"),
     ("ep.01.final", "show-ep-01-final"),
     ("--under_score--", "show-under_score"),
     ("café au lait", "show-caf-au-lait")],
)
def test_folder_odd_names_are_made_safe(tmp_path: Path, stem: str, expected: str):
    _touch(tmp_path / "clips", f"{stem}.mp4")
    (entry,) = _expand(tmp_path, [FOLDER])
    assert entry.name == expected and SAFE_NAME.match(entry.name)


def test_folder_unicode_only_and_very_long_names_get_a_hash(tmp_path: Path):
    long_stem = "A very long title " * 8
    _touch(tmp_path / "clips", "日本語.mp4", f"{long_stem}.mp4")
    entries = {e.uri: e.name for e in _expand(tmp_path, [FOLDER])}
    assert entries["clips/日本語.mp4"] == f"show-{short_hash('日本語.mp4')}"
    long_name = entries[f"clips/{long_stem}.mp4"]
    assert len(long_name) <= 64 and SAFE_NAME.match(long_name)
    assert long_name.startswith("show-A-very-long-title-A-very")
    assert long_name.endswith("-" + short_hash(f"{long_stem}.mp4"))


def test_folder_clashing_names_are_all_hashed_deterministically(tmp_path: Path):
    _touch(tmp_path / "clips", "a b.mp4", "a.b.mkv", "a_c.mp4")
    first = {e.uri: e.name for e in _expand(tmp_path, [FOLDER])}
    assert first["clips/a b.mp4"] == f"show-a-b-{short_hash('a b.mp4')}"
    assert first["clips/a.b.mkv"] == f"show-a-b-{short_hash('a.b.mkv')}"
    assert first["clips/a_c.mp4"] == "show-a_c"  # not in the clash: untouched
    assert len(set(first.values())) == 3
    # Same contents, made in another order: the same names.
    other = tmp_path / "again"
    _touch(other / "clips", "a_c.mp4", "a.b.mkv", "a b.mp4")
    assert {e.uri: e.name for e in _expand(other, [FOLDER])} == first


def test_derive_names_independent_of_input_order():
    from pathlib import PurePosixPath as P

    files = [P("x/a.mp4"), P("y/a.mp4"), P("x-a.mkv")]
    assert derive_names("p", files) == derive_names("p", files[::-1])
    assert len(set(derive_names("p", files).values())) == 3


@pytest.mark.parametrize(
    ("setup", "glob", "reason"),
    [(lambda d: d.mkdir(), None, "folder: no video file in clips"),
     (lambda d: _touch(d, "readme.txt"), None, "folder: no video file in clips"),
     (lambda d: _touch(d, "a.mp4"), "*.mkv", "folder: no file matches '*.mkv' in clips"),
     (lambda d: None, None, "folder: no such directory: clips"),
     (lambda d: d.write_bytes(b"a file"), None, "folder: no such directory: clips")],
    ids=["empty", "no-video", "no-match", "missing", "a-file"],
)
def test_folder_giving_nothing_is_one_failed_entry(tmp_path: Path, setup, glob, reason):
    setup(tmp_path / "clips")
    entries = _expand(tmp_path, [FOLDER | ({"glob": glob} if glob else {})])
    assert entries == [FailedEntry(name="show", origin="show", kind="folder", uri="clips",
                                   license="CC BY 4.0", attribution="Someone", split="train",
                                   reason=reason)]


def test_slug():
    assert slug("a  b//c") == "a-b-c"
    assert slug("...") == ""
    assert slug("-_x_-") == "x"


# -- clashes --------------------------------------------------------------------------


def test_derived_name_clashing_with_another_entry_stops_before_work(tmp_path: Path):
    _touch(tmp_path / "clips", "a.mp4")
    with pytest.raises(StageError) as info:
        _expand(tmp_path, [{"kind": "path", "name": "show-a", "path": "x.mp4"}, FOLDER])
    msg = str(info.value)
    assert "'show-a'" in msg and "sources[1] (folder 'show': clips/a.mp4)" in msg
    assert "sources[0] (path 'show-a')" in msg


def test_derived_name_clashing_with_a_synthetic_clip(tmp_path: Path):
    _touch(tmp_path / "clips", "b-00.mp4")
    with pytest.raises(StageError, match=r"'a-b-00' of sources\[1\] \(folder 'a': clips/b-00.mp4\) "
                                         r"clashes with sources\[0\] \(synthetic 'a-b'\)"):
        _expand(tmp_path, [{"kind": "synthetic", "name": "a-b", "clips": 1},
                           FOLDER | {"name": "a"}])


def test_two_list_rows_with_one_name_stop_the_stage(tmp_path: Path):
    (tmp_path / "l.csv").write_text("url,name\nhttp://h/a.mp4,x\nhttp://h/b.mp4,y\nhttp://h/c.mp4,x\n")
    with pytest.raises(StageError) as info:
        _expand(tmp_path, [{"kind": "list", "name": "lst", "path": "l.csv"}])
    assert "'lst-x'" in str(info.value)
    assert "http://h/c.mp4" in str(info.value) and "http://h/a.mp4" in str(info.value)


def test_clash_exits_2_from_the_stage(tmp_path: Path):
    _touch(tmp_path / "clips", "a.mp4")
    (tmp_path / "params.yaml").write_text(
        "sources:\n  - {kind: path, name: show-a, path: x.mp4}\n"
        "  - {kind: folder, name: show, path: clips}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.download", "--params", "params.yaml", "--out", "raw"],
        cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "'show-a'" in proc.stderr and "clashes with" in proc.stderr
    assert not (tmp_path / "raw").exists(), "work started before the clash was found"


# -- list -----------------------------------------------------------------------------


LIST = {"kind": "list", "name": "lst", "path": "lists/videos.csv", "license": "CC0-1.0",
        "attribution": "the list's author", "split": "auto"}
GOOD_SHA = "a" * 64


def _list(tmp_path: Path, text: str, entry: dict = LIST) -> list:
    csv = tmp_path / entry["path"]
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text(text)
    return _expand(tmp_path, [entry])


def test_list_good_rows(tmp_path: Path):
    entries = _list(tmp_path, (
        "url,name,license,attribution,sha256,split\n"
        f"https://example.org/a.webm,alpha,CC BY 3.0,Blender,{GOOD_SHA},test\n"
        "clips/b.mp4,beta,,,,\n"
        "../shared/c.mkv,gamma,PD,,,train\n"
        '"http://h/q?x=1,2",delta,,"Smith, J.",,\n'
    ))
    assert [e.name for e in entries] == ["lst-alpha", "lst-beta", "lst-gamma", "lst-delta"]
    a, b, c, d = entries
    assert isinstance(a.source, UrlSource) and a.uri == "https://example.org/a.webm"
    assert (a.source.license, a.source.attribution, a.source.sha256, a.source.split) == (
        "CC BY 3.0", "Blender", GOOD_SHA, "test")
    assert isinstance(b.source, PathSource) and b.source.path == b.uri == "lists/clips/b.mp4"
    assert (b.source.license, b.source.attribution, b.source.split) == (
        "CC0-1.0", "the list's author", "auto")  # empty values: the entry's
    assert c.source.path == "shared/c.mkv" and c.source.split == "train"
    assert d.source.url == "http://h/q?x=1,2" and d.source.attribution == "Smith, J."
    assert {(e.origin, e.kind) for e in entries} == {("lst", "list")}


def test_list_minimal_columns_and_bom(tmp_path: Path):
    entries = _list(tmp_path, "\ufeffurl,name\nhttp://h/a.mp4,a\n")
    assert [e.name for e in entries] == ["lst-a"]
    assert entries[0].source.license == "CC0-1.0"


@pytest.mark.parametrize(
    ("row", "reason", "name"),
    [("http://h/a.mp4,a,,,abc,", "line 3: sha256: expected 64 hex chars", "lst-a"),
     (f"http://h/a.mp4,a,,,{GOOD_SHA.upper()},", "line 3: sha256: expected 64 hex chars", "lst-a"),
     ("ftp://h/a.mp4,a,,,,", "line 3: url: expected an http:// or https:// URL", "lst-a"),
     ("file:///etc/passwd,a,,,,", "line 3: url: expected an http", "lst-a"),
     ("http://h/a.mp4,a b,,,,", "line 3: name: unsafe name 'lst-a b'", "lst-line3"),
     ("http://h/a.mp4,a.b,,,,", "line 3: name: unsafe name", "lst-line3"),
     ("http://h/a.mp4,,,,,", "line 3: name: empty", "lst-line3"),
     (",a,,,,", "line 3: url: empty", "lst-a"),
     ("http://h/a.mp4,a,,,,nope", "line 3: split: Input should be 'auto', 'train' or 'test'", "lst-a"),
     ("http://h/a.mp4,a,,,,,extra", "line 3: more fields than the header", "lst-a"),
     (f"http://h/a.mp4,{'n' * 61},,,,", "line 3: name: unsafe name", "lst-line3")],
    ids=["short-sha", "upper-sha", "ftp", "file", "space", "dot", "no-name", "no-url",
         "bad-split", "extra-field", "too-long"],
)
def test_list_bad_row_is_a_failed_entry_naming_the_line(tmp_path: Path, row, reason, name):
    entries = _list(tmp_path, "url,name,license,attribution,sha256,split\n"
                              "http://h/ok.mp4,ok,,,,\n" + row + "\nhttp://h/z.mp4,z,,,,\n")
    assert [e.name for e in entries] == ["lst-ok", name, "lst-z"]
    bad = entries[1]
    assert isinstance(bad, FailedEntry) and (bad.origin, bad.kind) == ("lst", "list")
    assert bad.reason.startswith("list: lists/videos.csv ") and reason in bad.reason, bad.reason
    assert bad.license == "CC0-1.0"


@pytest.mark.parametrize(
    ("text", "reason"),
    [("name,license\nx,CC0\n", "list: lists/videos.csv: missing column(s) url"),
     ("url\nhttp://h/a\n", "list: lists/videos.csv: missing column(s) name"),
     ("url,name,licence\nhttp://h/a,a,CC0\n", "unknown column(s) 'licence'"),
     ("url,name,name\nhttp://h/a,a,b\n", "repeated column"),
     ("", "list: lists/videos.csv: empty file"),
     ("url,name\n", "list: lists/videos.csv: no rows"),
     (None, "list: cannot read lists/videos.csv: FileNotFoundError"),
     (b"url,name\n\xff\xfe,a\n", "list: cannot read lists/videos.csv: UnicodeDecodeError")],
    ids=["no-url", "no-name", "typo", "repeated", "empty", "header-only", "missing-file",
         "not-utf8"],
)
def test_unusable_list_is_one_failed_entry(tmp_path: Path, text, reason):
    csv = tmp_path / "lists" / "videos.csv"
    csv.parent.mkdir()
    if isinstance(text, bytes):
        csv.write_bytes(text)
    elif text is not None:
        csv.write_text(text)
    entries = expand_sources(parse_params({"sources": [LIST]}).sources, tmp_path)
    assert len(entries) == 1 and isinstance(entries[0], FailedEntry)
    assert entries[0].name == "lst" and reason in entries[0].reason, entries[0].reason


def test_list_path_is_joined_lexically():
    assert list_path("lists/v.csv", "a/b.mp4") == "lists/a/b.mp4"
    assert list_path("v.csv", "../up.mp4") == "../up.mp4"
    assert list_path("lists/v.csv", "/abs/x.mp4") == "/abs/x.mp4"


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [(FOLDER | {"name": "f" * 49}, "sources[0].name: at most 48 chars"),
     (FOLDER | {"name": "a.b"}, "sources[0].name: unsafe name"),
     (FOLDER | {"glob": "../*.mp4"}, "sources[0].glob: expected a non-empty relative pattern"),
     (FOLDER | {"glob": "/etc/*"}, "sources[0].glob: expected a non-empty relative pattern"),
     (FOLDER | {"glob": "a**/*.mp4"}, "sources[0].glob: '**' must be a whole path component"),
     (FOLDER | {"sha256": GOOD_SHA}, "sources[0].sha256: unknown key"),
     ({"kind": "list", "name": "l"}, "sources[0].path: required key is missing"),
     ({"kind": "page", "name": "p", "url": "ftp://h/x"}, "sources[0].url: expected an http"),
     ({"kind": "page", "name": "p", "url": "http://h/x", "sha256": "x"},
      "sources[0].sha256: expected 64 hex chars")],
)
def test_new_kinds_are_validated(source: dict, expected: str):
    with pytest.raises(ConfigError) as info:
        parse_params({"sources": [source]})
    assert expected in str(info.value)


def test_entries_pickle(tmp_path: Path):
    _touch(tmp_path / "clips", "a.mp4")
    (tmp_path / "l.csv").write_text("url,name\nhttp://h/a.mp4,a\nftp://x,b\n")
    entries = _expand(tmp_path, [
        {"kind": "synthetic", "name": "syn", "clips": 1}, FOLDER,
        {"kind": "list", "name": "lst", "path": "l.csv"},
        {"kind": "page", "name": "pg", "url": "http://h/page"},
        {"kind": "folder", "name": "gone", "path": "nope"},
    ])
    assert [type(e).__name__ for e in entries] == [
        "SyntheticSource", "Member", "Member", "FailedEntry", "PageSource", "FailedEntry"]
    assert pickle.loads(pickle.dumps(entries)) == entries


# -- through the download stage -------------------------------------------------------


def test_folder_and_list_through_the_stage(tmp_path: Path):
    from support.http_server import serve

    clip = _video(tmp_path / "clips" / "Ep 1.mp4", 12)
    _video(tmp_path / "clips" / "sub" / "ep2.mkv", 10)
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"not a video")
    data = clip.read_bytes()
    lists = tmp_path / "lists"
    _video(lists / "local.mp4", 8)
    with serve({"v.mp4": data}) as srv:
        (lists / "l.csv").write_text(
            "url,name,license,attribution,sha256\n"
            f"{srv.url('/ok/v.mp4')},remote,CC BY 4.0,Ann,{sha256_file(clip)}\n"
            "local.mp4,here,,,\n"
            f"{srv.url('/ok/v.mp4')},wrong,,,{'0' * 64}\n"
            "ftp://h/x.mp4,ftp,,,\n")
        params = parse_params({"sources": [
            FOLDER,
            {"kind": "list", "name": "lst", "path": "lists/l.csv", "license": "CC0-1.0",
             "attribution": "list"},
            {"kind": "folder", "name": "empty", "path": "nothing"},
        ], "download": {"timeout": 2.0, "retries": 0}})
        raw = tmp_path / "raw"
        result = download.run_download(params, raw, root=tmp_path, partial_dir=tmp_path / "part")
        download.write_outputs(result, raw)
    table = pd.read_parquet(raw / SOURCES_TABLE)
    assert list(table.columns) == list(SourceRecord.__dataclass_fields__)
    rows = table.set_index("name")
    # Sorted by codepoint within the folder (upper case first), on every machine.
    assert list(rows.index) == ["show-Ep-1", "show-broken", "show-sub-ep2", "lst-remote",
                                "lst-here", "lst-wrong", "lst-ftp", "empty"]
    ok = list(rows.index[rows["status"] == "ok"])
    assert ok == ["show-Ep-1", "show-sub-ep2", "lst-remote", "lst-here"]
    assert rows.loc["show-Ep-1", ["origin", "kind", "uri", "license", "split", "frames"]].tolist() == [
        "show", "folder", "clips/Ep 1.mp4", "CC BY 4.0", "train", 12]
    assert rows.loc["show-sub-ep2", "uri"] == "clips/sub/ep2.mkv"
    assert (raw / rows.loc["show-sub-ep2", "path"]).name == "show-sub-ep2.mkv"
    assert rows.loc["lst-remote", ["origin", "kind", "uri", "license", "attribution"]].tolist() == [
        "lst", "list", srv.url("/ok/v.mp4"), "CC BY 4.0", "Ann"]
    assert (raw / rows.loc["lst-remote", "path"]).read_bytes() == data
    assert rows.loc["lst-here", ["uri", "license", "attribution", "frames"]].tolist() == [
        "lists/local.mp4", "CC0-1.0", "list", 8]
    assert rows.loc["show-broken", "error"].startswith("probe: ")
    assert rows.loc["lst-wrong", "error"].startswith("sha256 mismatch")
    assert rows.loc["lst-ftp", "error"].startswith("list: lists/l.csv line 5: url: expected an http")
    assert rows.loc["lst-ftp", "kind"] == "list" and rows.loc["lst-ftp", "uri"] == "ftp://h/x.mp4"
    assert rows.loc["empty", ["kind", "uri", "error"]].tolist() == [
        "folder", "nothing", "folder: no such directory: nothing"]
    assert "4 failed" in download_stage.summary(result)


def test_download_entry_runs_from_a_pickle(tmp_path: Path):
    """What an engine does: ship the function and one entry to a worker, get rows back."""
    _video(tmp_path / "clips" / "a.mp4", 6)
    params = parse_params({"sources": [FOLDER]})
    (entry,) = expand_sources(params.sources, tmp_path)
    fn, args = pickle.loads(pickle.dumps((download.download_entry, (
        entry, tmp_path / "raw", tmp_path, tmp_path / "part", params.download))))
    got = pickle.loads(pickle.dumps(fn(*args)))
    assert isinstance(got, download.EntryResult) and got.truth is None and got.telecine is None
    assert [(r.name, r.origin, r.kind, r.status, r.frames) for r in got.rows] == [
        ("show-a", "show", "folder", "ok", 6)]
