"""Evaluation: the evaluate stage's scoring (:mod:`.scoring`), its breakdowns' statistics
(:mod:`.stats`), its CSV and grid (:mod:`.report`), the docs' tables
(:mod:`.doc_tables`), and ``inbetweener benchmark`` on folders of triplets
(:mod:`.benchmark`). Methods come from :mod:`vfi.inference.methods`; nothing here
imports training."""
