"""What counts as a known licence, and what the pipeline says about a source without one.

A ``sources`` entry without ``license`` gets ``unknown`` (``pipeline.core.config``); that
value then travels into every sample's json, the manifest and an export's card. The
decision (issue 21, item 6) is to **flag, not refuse**: the download stage logs a
warning per such source naming the ``params.yaml`` entry to fix and records the same
note in ``sources.parquet`` (``license_note``), and an export card says in bold which
works have no known licence and that they must not be redistributed until one is set.
Refusing would stop the first run on a user's own folder of clips, which is a
legitimate private use (training a model locally); redistribution is where a licence
matters, and that is where the card speaks.

Shared by the download stage and the export (``pipeline.dataset.subset``), so both apply one
rule: empty or ``unknown`` (any case) is no licence.
"""

from __future__ import annotations

UNKNOWN_LICENSE = "unknown"


def licence_known(text: object) -> bool:
    """False for a missing licence: empty, blank or ``unknown`` (any case)."""
    value = "" if text is None else str(text).strip()
    return bool(value) and value.lower() != UNKNOWN_LICENSE


def normalised_licence(text: object) -> str:
    """The licence as tables record it: a missing one is always ``unknown`` (an empty
    string would slip past a query like ``license == 'unknown'``)."""
    return str(text).strip() if licence_known(text) else UNKNOWN_LICENSE


def missing_licence_note(entry: str) -> str:
    """The ``license_note`` of a source without a licence: what it means, how to fix it."""
    return (f"no licence: set license: on the params.yaml sources entry {entry!r} "
            "(a list CSV may give a license column); until then its samples say "
            "'unknown' and must not be redistributed")
