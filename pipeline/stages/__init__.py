"""Entry points, one thin module each (params -> library -> tables, a summary line):
the six DVC stages ``download``, ``detect_cuts``, ``extract_triplets``, ``filter``,
``shard``, ``export`` (``python -m pipeline.stages.<name>``) and ``inspect_video``, the
one-video look behind ``inbetweener inspect``."""
