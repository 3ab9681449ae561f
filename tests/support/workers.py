"""detect_cuts workers that misbehave on purpose. They run in worker processes (and
Ray tasks), which import them by module name: so they live here, never in a test."""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

from pipeline.analysis.worker import Analysis, SourceJob, analyse_source
from pipeline.core.config import CutsParams


def misbehaving_worker(job: SourceJob, params: CutsParams) -> Analysis:
    """analyse_source, except for sources whose name asks for trouble (runs in the worker)."""
    if job.name == "hangs" or (job.name == "hangs-in-decord" and job.backend == "decord"):
        time.sleep(3600)
    if job.name == "segfaults":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    if job.name == "exits":
        os._exit(3)
    if job.name == "raises":
        raise RuntimeError("boom")
    return analyse_source(job, params)


def marking_worker(job: SourceJob, params: CutsParams) -> Analysis:
    """analyse_source that leaves a mark per source it analyses, then dawdles (``SLOW``
    seconds) so the test can kill the run between two sources."""
    (Path(os.environ["MARKS"]) / job.name).write_text("")
    analysis = analyse_source(job, params)
    time.sleep(float(os.environ.get("SLOW", "0")))
    return analysis
