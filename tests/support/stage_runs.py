"""download -> detect_cuts -> extract_triplets -> filter on one synthetic source, with
the default params, as ``dvc repro`` runs them (the accuracy tests' runner)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from pipeline.analysis import analyse as detect_cuts
from pipeline.core.config import CutsParams, FilterParams, TripletParams, parse_params
from pipeline.curation import curate as filter_stage
from pipeline.curation import extract as extract_triplets
from pipeline.sources import download
from pipeline.synth import SynthSpec
from support.analysis_tables import with_truth


@dataclasses.dataclass
class Run:
    root: Path
    sources: pd.DataFrame
    truth: pd.DataFrame
    frames: pd.DataFrame
    drawings: pd.DataFrame
    triplets: pd.DataFrame  # filtered, with the truth of each frame attached


def run_stages(root: Path, spec: SynthSpec, name: str = "synthetic") -> Run:
    """The four analysis stages on one synthetic source, default params."""
    source = {"kind": "synthetic", "name": name} | spec.model_dump()
    params = parse_params({"sources": [source]})
    result = download.run_download(params, root / "raw", root=root)
    download.write_outputs(result, root / "raw")
    cuts = detect_cuts.run_detect_cuts(CutsParams(), root / "raw", root / "analysis")
    detect_cuts.write_outputs(cuts, root / "analysis")
    extracted = extract_triplets.run_extract(root / "analysis", TripletParams())
    extract_triplets.write_outputs(extracted, root / "triplets")
    filtered = filter_stage.run_filter(root / "analysis", root / "triplets", FilterParams())
    truth = pd.read_parquet(root / "raw" / "truth.parquet")
    return Run(root, pd.read_parquet(root / "raw" / "sources.parquet"), truth,
               pd.read_parquet(root / "analysis" / "frames.parquet"), extracted.drawings,
               with_truth(filtered.filtered, truth))
