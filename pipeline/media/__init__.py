"""Media I/O: ``probe`` (what a file holds), ``scan`` (telecine, interlace and bars,
decided once per source by download), ``decode_filter`` (the recorded verdict every
reader decodes through), ``video`` (PyAV and decord frame readers) and ``images``
(frame encoders for shards)."""
