"""The ``inbetweener`` command line, above the two libraries it drives.

``pipeline`` (the data: sources to shards) and ``vfi`` (the model: training,
evaluation, the interpolation app) never import this package; it imports both,
lazily per subcommand (:mod:`inbetweener.cli`).
"""
