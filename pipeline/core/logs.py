"""Logging for the command line: one ``inbetweener`` logger tree, printed through tqdm.

Library code only logs; the CLI entry points call :func:`setup_cli_logging` so that log
lines do not tear progress bars apart.
"""

from __future__ import annotations

import logging

from tqdm import tqdm


class TqdmHandler(logging.Handler):
    """Writes records with ``tqdm.write`` so active progress bars stay intact."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def setup_cli_logging(level: int = logging.INFO) -> None:
    """Attach one tqdm-aware handler to the project logger (idempotent)."""
    logger = logging.getLogger("inbetweener")
    if not any(isinstance(h, TqdmHandler) for h in logger.handlers):
        handler = TqdmHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
