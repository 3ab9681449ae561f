"""The data pipeline: animation sources in, curated WebDataset shards out.

The stage graph (``dvc.yaml``), one thin entry point each in :mod:`pipeline.stages`:
download -> detect_cuts -> extract_triplets -> filter -> shard -> export. The layers
under it, each importing only the ones before it: ``core`` (params, tables, atomic
writes, errors, logging, progress, guard); ``engine`` (where per-source work runs,
its resumable parts), ``media`` (probe, scan verdict, decode filter, readers,
encoders) and ``synth`` (the synthetic source); ``sources`` (the sources.parquet
record, fetching); ``analysis`` (what runs inside detect_cuts' decoding pass);
``curation`` (table-only kernels); ``dataset`` (shards, manifest, export, verify).

No module here imports :mod:`vfi`; the command line (:mod:`inbetweener.cli`) sits above both.
"""
