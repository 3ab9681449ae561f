"""Table-only kernels over the analysis tables, no decoding: ``triplets`` (candidate
triplets from drawings), ``transitions`` (fades and dissolves), ``near_dup`` and
``repeats`` (duplicate and repeated footage), ``explained`` (motion a flow explains),
``splits`` (scene groups to train/val/test), ``curate`` (the filter stage's library)
and ``data_metrics``."""
