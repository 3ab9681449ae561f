"""Exceptions that carry a short ``reason`` meant for a table's ``error`` column."""

from __future__ import annotations


class ReasonError(Exception):
    """An expected failure of one input; ``reason`` is short, stable and table-ready."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
