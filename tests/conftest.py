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


# ``make test`` runs the suite on two workers (pytest-xdist: -n 2 --dist loadfile
# --no-loadscope-reorder). Each group runs whole on one worker: a file's tests form a
# group (its module-scoped fixtures are built once), except the Ray engine tests, which
# form one group (no two Ray clusters start at once, one beside the other on two cores).
# The two longest groups go first, so that neither worker is left with a long group
# once the other has finished everything else. (xdist 3.8's ``loadgroup`` cannot be
# used: under pytest 9 its groups never reach the scheduler.)
RAY_TESTS = "tests/unit/pipeline/engine/"
FIRST = ("tests/project/test_repro.py", "ray")  # the two longest groups (minutes each)


def _group(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    return "ray" if path.startswith(RAY_TESTS) else path


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: unused without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile``, with the Ray engine files as one group."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Groups(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return Groups(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the order the scheduler sends in
        items.sort(key=lambda item: FIRST.index(g) if (g := _group(item.nodeid)) in FIRST
                   else len(FIRST))
