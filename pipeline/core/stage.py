"""Plumbing every stage's ``main()`` shares: arguments, logging, params, exit codes.

Each stage module keeps only its own work; this module gives them one command-line
shape (``--params`` plus the stage's folders), one way to load params (a config error
exits 2 with the key paths) and one capped summary of failure reasons.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.core.config import ConfigError, Params, load_params
from pipeline.core.logs import setup_cli_logging

EXIT_CONFIG = 2


class StageError(Exception):
    """Input a stage cannot work with at all (not one bad source): exit 2 with the message."""


def run_stage(prog: str, doc: str | None, paths: dict[str, str],
              body: Callable[[Params, argparse.Namespace], int],
              argv: list[str] | None = None, extra: Callable[[argparse.ArgumentParser], None] | None = None,
              load: Callable[[Path], Params] = load_params) -> int:
    """Parse ``--params`` and one ``--<name> PATH`` per entry of ``paths``, then run ``body``.

    ``body`` gets the validated params and the parsed arguments and returns the exit
    code; ``load`` reads the params file (the model's stages pass theirs, which also
    validates the model's sections). A ``ConfigError`` or ``StageError`` from loading or from ``body`` prints its
    message and exits 2, never a traceback.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", type=Path)
    for name, default in paths.items():
        parser.add_argument(f"--{name}", default=default, type=Path)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    setup_cli_logging()
    try:
        return body(load(args.params), args)
    except (ConfigError, StageError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG


def reason_counts(errors: Iterable[str], top: int = 5) -> str:
    """``"http 404: 2, timeout: 1"``: the most common reasons, by their first clause."""
    counts = Counter(e.split(":")[0] for e in errors)
    return ", ".join(f"{why}: {n}" for why, n in counts.most_common(top))
