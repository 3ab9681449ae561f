"""What every layer shares: the params schema (``config``), table and column names
(``tables``), atomic writes (``atomic``), error types, logging, progress bars, the
guarded worker process (``guard``) and the stage command-line plumbing (``stage``).
Imports nothing else from the project."""
