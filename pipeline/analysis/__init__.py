"""What runs inside detect_cuts' single decoding pass, frame by frame: ``detectors`` and
``transnet`` (cut scores), ``hashing`` (perceptual hashes), ``measure`` and ``features``
(the per-frame columns), ``holds`` (the hold rule), ``cadence`` (repeat patterns of old
frame-rate conversions), ``worker`` (one source decoded in a guarded child, the work on
threads beside the decoder: ``helper_thread``) and ``analyse`` (status rules, tables and
parts: the detect_cuts stage's library)."""
