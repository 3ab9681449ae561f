"""The model package's expected failure: inputs it cannot use.

A leaf module (imports nothing of the project), so every layer may raise it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Shards, tables or params that training or evaluation cannot use (no train shard,
    a sample without its frames, a crop larger than the frames). The stages print the
    message as one line; any other exception is a bug and keeps its traceback."""
