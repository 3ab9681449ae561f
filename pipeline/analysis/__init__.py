"""What runs inside detect_cuts' single decoding pass, frame by frame: ``detectors`` and
``transnet`` (cut scores), ``hashing`` (perceptual hashes), ``measure`` (the per-frame
features), ``holds`` (the hold rule), ``cadence`` (repeat patterns of old frame-rate
conversions), and ``analyse`` (the per-source worker, its parts and tables)."""
