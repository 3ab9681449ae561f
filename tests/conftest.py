"""Shared fixtures. Ground truth for every stage comes from the synthetic source."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

# Processes the tests start (Ray workers, stage commands) import ``support`` too.
_TESTS = str(Path(__file__).resolve().parent)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_TESTS, os.environ.get("PYTHONPATH")) if p)


@pytest.fixture(autouse=True)
def no_unexpected_errors(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture):
    """Fail a test that logs at ERROR, unless it is marked ``expect_errors``.

    Stages record bad input as warnings with a reason; an ERROR means something the code
    did not plan for, which a test must not let pass silently.
    """
    caplog.set_level(logging.INFO, logger="inbetweener")
    yield
    if request.node.get_closest_marker("expect_errors"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail("unexpected ERROR log: " + "; ".join(r.getMessage() for r in errors))
