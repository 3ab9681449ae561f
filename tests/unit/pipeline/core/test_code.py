"""What a part's fingerprint covers (``pipeline.core.code``): the writing module's own
import closure, so a model key or another stage's code leaves the part valid."""

from __future__ import annotations

from pipeline.core.code import ROOT, module_closure
from pipeline.engine.parts import code_version


def _rel(module: str) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in module_closure(module)}


def test_the_analysis_closure_is_its_own_code():
    files = _rel("pipeline.analysis.analyse")
    assert {"pipeline/analysis/analyse.py", "pipeline/analysis/holds.py",
            "pipeline/media/video.py", "pipeline/core/config.py"} <= files
    assert not {f for f in files if f.startswith(("vfi/", "pipeline/dataset/", "pipeline/curation/"))}


def test_the_shard_closure_leaves_out_analysis_and_the_model():
    files = _rel("pipeline.dataset.shards")
    assert "pipeline/dataset/frame_parts.py" in files
    assert not {f for f in files if f.startswith(("vfi/", "pipeline/analysis/holds"))}


def test_code_versions_differ_by_module_and_repeat():
    a, b = code_version("pipeline.analysis.analyse"), code_version("pipeline.dataset.shards")
    assert a != b and a == code_version("pipeline.analysis.analyse") and len(a) == 64
