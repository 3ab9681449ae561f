"""The data pipeline: animation sources in, curated WebDataset shards out.

The stage graph (``dvc.yaml``), one thin entry point each in :mod:`pipeline.stages`::

    download -> detect_cuts -> extract_triplets -> filter -> shard -> export

The layers under it, each importing only the ones listed before it:

- ``core``      params schema, table names, atomic writes, errors, logging, progress, guard
- ``media``     probing, the scan verdict and the decode filter, frame readers, encoders
- ``sources``   the sources.parquet record; expanding, fetching and describing sources
- ``synth``     the synthetic source with exact ground truth
- ``analysis``  what runs inside detect_cuts' one decoding pass, per frame
- ``curation``  table-only kernels: triplets, transitions, near-duplicates, splits
- ``dataset``   shards, manifest, export subsets, verify, unpack, reports
- ``engine``    where per-source work runs (local or Ray) and its resumable parts

No module here imports :mod:`vfi`; the command line (:mod:`inbetweener.cli`) sits above both.
"""
