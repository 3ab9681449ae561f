"""One row of ``sources.parquet``: :class:`SourceRecord`, the one shape of a source.

The download stage writes the records (:func:`records_table`); every later reader of the
table (detect_cuts' jobs, the shard stage, the model's naive control) reads them back
with :func:`read_records`, so a column is named once. A record carries its decode filter
(:attr:`SourceRecord.decode`): a reader never looks for it beside the video file.
Rows of a table written before a column existed read as that column's default (a table
from before the scan columns decodes unfiltered, as it did then).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.tables import SOURCES_TABLE
from pipeline.media.decode_filter import DecodeFilter, ScanError

INT_COLUMNS = {"bytes": "int64", "width": "int32", "height": "int32", "frames": "int64",
               "out_frames": "int64"}


class RecordError(ValueError):
    """No ``sources.parquet`` where one is needed, or a row that makes no sense."""


@dataclass
class SourceRecord:
    """One video (or one failed source) as recorded in ``sources.parquet``."""

    name: str
    origin: str
    kind: str
    uri: str
    license: str
    attribution: str
    # Why the licence cannot be relied on ("" when it can): pipeline.sources.licences.
    license_note: str = ""
    split: str = "auto"
    path: str = ""  # relative to data/raw
    bytes: int = 0
    sha256: str = ""
    container: str = ""
    codec: str = ""
    pix_fmt: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frames: int = 0  # the probe's demux count
    duration: float = 0.0
    status: str = "ok"
    error: str = ""
    # The decode filter (pipeline.media.decode_filter.SCAN_COLUMNS); defaults: nothing to do.
    scan: str = "progressive"
    field_order: str = ""
    pattern: str = ""
    out_fps: float = 0.0
    out_frames: int = 0
    crop: str = ""
    scan_error: str = ""

    @property
    def usable(self) -> bool:
        return self.status == "ok"

    @property
    def decode(self) -> DecodeFilter:
        """The filter every reader decodes this source through (:class:`ScanError`, naming
        the source, when the recorded one makes no sense)."""
        try:
            return DecodeFilter(self.scan, self.field_order, self.pattern, self.crop)
        except ScanError as err:
            raise ScanError(f"{SOURCES_TABLE}: source {self.name}: {err}") from None

    @property
    def reader_fps(self) -> float:
        """The rate of the frames a reader delivers (after 3:2 decimation, if any)."""
        return self.out_fps if self.out_fps > 0 and self.decode.active else self.fps

    @property
    def expected_frames(self) -> int:
        """Frames a whole decode gives: fewer than ``frames`` after 3:2 decimation."""
        return self.out_frames or self.frames

    def video(self, raw_dir: Path) -> Path:
        """The video file, absolute (an engine task may run in another directory)."""
        return (Path(raw_dir) / self.path).resolve()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SourceRecord:
        """A record from one table row; missing or null columns take their default."""
        values = {}
        for f in fields(cls):
            default = "" if f.default is MISSING else f.default
            value = row.get(f.name)
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                value = default
            values[f.name] = type(default)(value)
        return cls(**values)


def records_table(records: list[SourceRecord]) -> pd.DataFrame:
    """The ``sources.parquet`` table of ``records``, in their order."""
    df = pd.DataFrame([asdict(r) for r in records], columns=[f.name for f in fields(SourceRecord)])
    return df.astype(INT_COLUMNS)


def read_records(raw_dir: Path) -> list[SourceRecord]:
    """Every record of ``raw_dir/sources.parquet``, failed ones too, in table order."""
    path = Path(raw_dir) / SOURCES_TABLE
    if not path.is_file():
        raise RecordError(f"{path}: no such table (run the download stage first)")
    return [SourceRecord.from_row(row) for row in pd.read_parquet(path).to_dict("records")]


def records_by_name(raw_dir: Path) -> dict[str, SourceRecord]:
    return {r.name: r for r in read_records(raw_dir)}
