"""Evaluation: the evaluate stage's scoring (:mod:`.scoring`) and its CSV and grid
(:mod:`.report`), and ``inbetweener benchmark`` on folders of triplets (:mod:`.benchmark`).
Methods come from :mod:`vfi.inference.methods`; nothing here imports training."""
