"""Analyse every source in one decoding pass each: the library behind the detect_cuts stage."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis.cadence import (
    NO_DROP,
    Cadence,
    film_time,
    find_cadence,
    find_drop,
    hold_repeats,
)
from pipeline.analysis.detectors import DEFAULT_RATE
from pipeline.analysis.features import FRAME_COLUMNS
from pipeline.analysis.worker import (
    PRELOAD,
    Analysis,
    SourceJob,
    Worker,
    analyse_source,
)
from pipeline.core import atomic
from pipeline.core.config import CutsParams, TripletParams
from pipeline.core.guard import run_guarded
from pipeline.core.progress import progress
from pipeline.core.tables import FRAMES_TABLE, SCENES_TABLE
from pipeline.engine import Engine
from pipeline.engine import engine_map as _engine_map
from pipeline.engine.parts import PartStore, PartWriter, code_version, fingerprint
from pipeline.media.decode_filter import (
    ScanError,
)
from pipeline.media.video import (
    choose_backend,
)
from pipeline.sources.record import SourceRecord, read_records

log = logging.getLogger("inbetweener.detect_cuts")

DECODED_TABLE = "decoded.parquet"
MIN_FRAMES = 3  # a source needs one triplet's worth of frames to be worth keeping
SCENE_COLUMNS = {
    "source": "str", "scene": np.int32, "first_frame": np.int64, "last_frame": np.int64,
    "frames": np.int64, "start_pts": np.float64, "end_pts": np.float64,
    "duration": np.float64,
}
DECODED_COLUMNS = {
    "source": "str", "reader": "str", "frames": np.int64, "header_frames": np.int64,
    "status": "str", "error": "str",
    # conversion repeats (pipeline.analysis.cadence): frame % period == phase repeats the frame
    # before (period 0: none found); share: of that phase's frames, the motion minima;
    # drop_phase: the step into that phase skips a film frame (-1: none)
    "repeat_period": np.int64, "repeat_phase": np.int64, "repeat_share": np.float64,
    "repeat_drop_phase": np.int64,
}  # no wall-clock column: the stage's outputs must be byte-identical on a re-run


# --- the stage (parent process) -------------------------------------------------------


@dataclass
class SourceOutcome:
    """One source's rows for the three tables."""

    decoded: dict
    frames: pd.DataFrame | None = None
    scenes: pd.DataFrame | None = None


def jobs_from(records: list[SourceRecord], raw_dir: Path, backend: str) -> list[SourceJob]:
    """The usable sources, in table order, each with its decode filter; a recorded filter
    that makes no sense stops the stage naming the source (ValueError), rather than
    analysing other frames than the shard stage would read."""
    jobs = []
    for rec in records:
        if rec.usable:
            try:
                decode = rec.decode
            except ScanError as err:
                raise ValueError(str(err)) from None
            jobs.append(SourceJob(name=rec.name, path=str(rec.video(raw_dir)), codec=rec.codec,
                                  frames=rec.frames, fps=rec.reader_fps, backend=backend,
                                  decode=decode, out_frames=rec.out_frames))
    return jobs


def _run_worker(job: SourceJob, params: CutsParams,
                worker: Worker) -> tuple[Analysis | None, str]:
    """Guarded call; a decord worker that hangs or crashes gets one retry with PyAV.

    decord's known failure modes (hang on an over-reporting header, native crashes) do
    not affect PyAV, so the retry recovers the source at the cost of a second decode,
    only in that case. Returns (analysis or None, note about what went wrong).
    """
    got = run_guarded(worker, (job, params), params.timeout, preload=PRELOAD)
    if got.ok:
        return got.value, ""
    if choose_backend(job.codec, job.backend) != "decord":  # type: ignore[arg-type]
        return None, got.error
    retry = run_guarded(worker, (replace(job, backend="pyav"), params), params.timeout,
                        preload=PRELOAD)
    note = f"decord worker failed ({got.error}); retried with pyav"
    if retry.ok:
        return retry.value, note
    return None, f"{note}: {retry.error}"


def _status(job: SourceJob, analysis: Analysis | None, note: str) -> tuple[str, str]:
    """(status, error) for decoded.parquet; see the module doc for the rules."""
    if analysis is None:
        return "error", note
    n, notes = analysis.frames, [r for r in (analysis.error, analysis.note, note) if r]
    if not analysis.opened:
        return "error", "; ".join(notes) or "could not open"
    if n < MIN_FRAMES:
        short = f"too short: {n} frame(s) decoded, a triplet needs {MIN_FRAMES}"
        return "error", "; ".join([short, *notes])
    if analysis.error:
        return "partial", "; ".join(notes)
    if n < job.expected:
        return "partial", "; ".join([f"decoded {n} of {job.expected} frames", *notes])
    return "ok", "; ".join(notes)


def frames_table(name: str, analysis: Analysis) -> pd.DataFrame:
    """frames.parquet rows of one source, scene ids from the cut list."""
    cols = dict(analysis.columns)
    thumbs = cols.pop("thumb")
    df = pd.DataFrame(cols)
    df.insert(0, "source", name)
    df["scene"] = np.searchsorted(np.asarray(analysis.cuts, np.int64), df["frame"], side="right")
    df["thumb"] = [row.tobytes() for row in thumbs]
    return df[list(FRAME_COLUMNS)].astype(FRAME_COLUMNS)


def scenes_table(frames: pd.DataFrame, fps: float) -> pd.DataFrame:
    """One row per scene; a scene ends at the next frame's pts (or last + 1/fps)."""
    pts = frames["pts"].to_numpy()
    step = 1.0 / (fps if fps > 0 else DEFAULT_RATE)
    grouped = frames.groupby("scene", sort=True)["frame"]
    first, last = grouped.min().to_numpy(), grouped.max().to_numpy()
    end = np.where(last + 1 < len(pts), pts[np.minimum(last + 1, len(pts) - 1)], pts[last] + step)
    df = pd.DataFrame({
        "source": frames["source"].iloc[0], "scene": grouped.min().index.to_numpy(),
        "first_frame": first, "last_frame": last, "frames": last - first + 1,
        "start_pts": pts[first], "end_pts": end, "duration": end - pts[first],
    })
    return df[list(SCENE_COLUMNS)].astype(SCENE_COLUMNS)


def decoded_row(job: SourceJob, reader: str, frames: int, status: str, error: str) -> dict:
    """One source's decoded.parquet row (no conversion repeats until found)."""
    return {"source": job.name, "reader": reader, "frames": frames, "header_frames": job.frames,
            "status": status, "error": error,
            "repeat_period": 0, "repeat_phase": 0, "repeat_share": 0.0, "repeat_drop_phase": NO_DROP}


def analyse_one(job: SourceJob, params: CutsParams, worker: Worker) -> SourceOutcome:
    """Run, time and judge one source; warn about anything short of a clean decode."""
    start = time.perf_counter()
    analysis, note = _run_worker(job, params, worker)
    status, error = _status(job, analysis, note)
    decoded = decoded_row(job, analysis.reader if analysis else "",
                          analysis.frames if analysis else 0, status, error)
    log.debug("source %s analysed in %.1f s", job.name, time.perf_counter() - start)
    if status != "ok":
        log.warning("source %s: %s: %s", job.name, status, error)
    elif error:
        log.info("source %s: %s", job.name, error)
    if status == "error":
        return SourceOutcome(decoded)
    frames = frames_table(job.name, analysis)
    cadence = apply_cadence(frames, job.fps)
    if cadence is not None:
        decoded |= {"repeat_period": cadence.period, "repeat_phase": cadence.phase,
                    "repeat_share": cadence.share, "repeat_drop_phase": cadence.drop}
        log.info("source %s: a conversion repeats every frame %% %d == %d (%.2f of them), drop at %d",
                 job.name, cadence.period, cadence.phase, cadence.share, cadence.drop)
    return SourceOutcome(decoded, frames, scenes_table(frames, job.fps))


def apply_cadence(frames: pd.DataFrame, fps: float) -> Cadence | None:
    """Find one source's conversion repeats (``pipeline.analysis.cadence``) and apply them to its
    frames table in place: repeat frames join the drawing before them, and ``time``
    steps over the repeats and the dropped film frames. Done here, after the decoding
    pass, because the pattern is only seen over the whole source."""
    motion = frames["motion"].to_numpy()
    scene_start = frames["scene"].diff().fillna(1).ne(0).to_numpy()
    cadence = find_cadence(motion, scene_start)
    if cadence is None:
        return None
    cadence = find_drop(motion, scene_start, cadence, fps)
    frames["drawing"] = hold_repeats(frames["drawing"].to_numpy(), frames["change"].to_numpy(), cadence)
    frames["time"] = film_time(len(frames), cadence)
    return cadence


def _concat(parts: list[pd.DataFrame], columns: dict) -> pd.DataFrame:
    """Concatenate per-source tables; an empty result still has the full schema."""
    if not parts:
        return pd.DataFrame({k: pd.Series(dtype=v) for k, v in columns.items()})
    return pd.concat(parts, ignore_index=True)[list(columns)].astype(columns)


@dataclass
class CutsResult:
    """The three tables of the stage."""

    frames: pd.DataFrame
    scenes: pd.DataFrame
    decoded: pd.DataFrame


@dataclass(frozen=True)
class CutsPart:
    """One source's work as an engine item: analyse it, write its part (picklable)."""

    job: SourceJob
    params: CutsParams
    worker: Worker
    dest: str  # the part folder (pipeline.engine.parts)


# sources.parquet columns that say where a video came from and may be used, not what
# its frames are: a corrected attribution must not re-analyse the source.
PROVENANCE = ("origin", "kind", "uri", "license", "license_note", "attribution", "split")


def part_fingerprint(row: dict, params: CutsParams, holds: TripletParams | None,
                     worker: Worker) -> str:
    """What a source's analysis depends on: its sources.parquet row but its provenance
    (file sha256, probe, decode filter; paths relative to data/raw, so not the
    checkout's location), the params, the hold rule and the worker function."""
    video = {k: v for k, v in row.items() if k not in PROVENANCE}
    return fingerprint("detect_cuts", video, params, holds or TripletParams(),
                       f"{worker.__module__}.{worker.__qualname__}", code_version(worker.__module__),
                       code=__name__)


def analyse_part(part: CutsPart) -> dict:
    """Engine task: the guarded analysis of one source, written as its part folder.

    Every recorded outcome (a timeout and a crash included) is written: the same inputs
    give the same outcome, and a re-run skips the source. Returns the decoded row.
    """
    outcome = analyse_one(part.job, part.params, part.worker)
    with PartWriter(Path(part.dest)) as tmp:
        pd.DataFrame([outcome.decoded]).to_parquet(tmp / DECODED_TABLE, index=False)
        if outcome.frames is not None:
            outcome.frames.to_parquet(tmp / FRAMES_TABLE, index=False)
            outcome.scenes.to_parquet(tmp / SCENES_TABLE, index=False)
    return outcome.decoded


def read_part(dest: Path) -> SourceOutcome:
    """A written part, as the outcome it recorded."""
    decoded = pd.read_parquet(dest / DECODED_TABLE).iloc[0].to_dict()
    if not (dest / FRAMES_TABLE).is_file():
        return SourceOutcome(decoded)
    return SourceOutcome(decoded, pd.read_parquet(dest / FRAMES_TABLE),
                         pd.read_parquet(dest / SCENES_TABLE))


def _lost(job: SourceJob, reason: str) -> SourceOutcome:
    """A source whose task the engine lost (its worker died): recorded, not written as
    a part, so the next run tries it again."""
    log.warning("source %s: error: %s", job.name, reason)
    return SourceOutcome(decoded_row(job, "", 0, "error", reason))


def run_detect_cuts(params: CutsParams, raw_dir: Path, out_dir: Path, show_progress: bool = False,
                    worker: Worker = analyse_source, holds: TripletParams | None = None,
                    engine: Engine | None = None, parts_dir: Path | None = None) -> CutsResult:
    """Analyse every usable source of ``raw_dir/sources.parquet``; write the three tables.

    ``holds``: the hold rule's params (``params.triplets``; None: their defaults).
    ``worker`` (a picklable module-level function) replaces :func:`analyse_source`;
    tests use it to inject hanging or crashing workers. ``engine`` runs one task per
    source (None: local); a source whose part is already written (in ``parts_dir``,
    default ``pipeline.engine.parts.default_parts_dir``) is not run again.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    records = read_records(raw_dir)
    rows = {r.name: asdict(r) for r in records}
    jobs = [replace(job, holds=holds) for job in jobs_from(records, raw_dir, params.reader)]
    store = PartStore.beside(out_dir, parts_dir)
    parts = [CutsPart(j, params, worker, str(store.path(
        j.name, part_fingerprint(rows[j.name], params, holds, worker)))) for j in jobs]
    todo = [p for p in parts if not Path(p.dest).is_dir()]
    lost: dict[str, str] = {}
    with progress(total=sum(p.job.frames for p in todo), unit="frame", desc="detect_cuts",
                  enabled=show_progress) as bar:
        for done in _engine_map(engine, analyse_part, todo):
            if not done.ok:
                lost[todo[done.index].job.name] = done.error
            bar.update(todo[done.index].job.frames)
    outcomes = [_lost(p.job, lost[p.job.name]) if p.job.name in lost else read_part(Path(p.dest))
                for p in parts]
    result = CutsResult(
        frames=_concat([o.frames for o in outcomes if o.frames is not None], FRAME_COLUMNS),
        scenes=_concat([o.scenes for o in outcomes if o.scenes is not None], SCENE_COLUMNS),
        decoded=_concat([pd.DataFrame([o.decoded]) for o in outcomes], DECODED_COLUMNS),
    )
    write_outputs(result, out_dir)
    store.prune(Path(p.dest) for p in parts)
    return result


def write_outputs(result: CutsResult, out_dir: Path) -> None:
    """Each table appears whole or not at all (pipeline.core.atomic)."""
    atomic.write_parquet(result.frames, out_dir / FRAMES_TABLE)
    atomic.write_parquet(result.scenes, out_dir / SCENES_TABLE)
    atomic.write_parquet(result.decoded, out_dir / DECODED_TABLE)
