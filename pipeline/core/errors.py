"""Expected failures: per-input reasons for tables, and a command's refusal of its input."""

from __future__ import annotations


class ReasonError(Exception):
    """An expected failure of one input; ``reason`` is short, stable and table-ready."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CommandError(Exception):
    """A user command refuses its input or options (missing file, existing output, bad
    value): ``inbetweener`` prints the message after the command's name and exits 2,
    with no traceback. The modules behind the commands raise subclasses of it."""
