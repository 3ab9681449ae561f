"""The published dataset: ``shards`` (kept triplets' frames into WebDataset tars, per
source parts), ``frame_parts`` (each source's encoded frames), ``manifest`` (the shard
index and tar reading), ``subset`` (curated exports), ``verify``, ``unpack`` and
``report`` (the removed-frames and contact-sheet pictures)."""
