"""Running peer libraries (scipy, CalSciPy, suite2p, OASIS, ...) side by side with napari-calcium.

:func:`optional_import` imports a peer or returns None when it is not installed (peers live in a
separate bench venv, ``benchmarks/make_bench_venv.sh``); :func:`skipped_row` records a peer that
could not run; :func:`add_relative_notes` notes each row's speed relative to a reference
implementation of the same task.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Sequence

from _harness.results import Row

__all__ = [
    "add_relative_notes",
    "optional_import",
    "skipped_row",
]


def skipped_row(benchmark: str, implementation: str, size: str, reason: str) -> Row:
    """A row for an implementation that could not run (e.g. a peer library is not installed).

    Parameters
    ----------
    benchmark, implementation, size : str
        As in :class:`Row`.
    reason : str
        Why it did not run; shown in the notes column.

    Returns
    -------
    Row
        With ``status="skipped"`` and no timing.
    """
    return Row(benchmark, implementation, size, notes=f"skipped: {reason}", status="skipped")


def optional_import(name: str) -> types.ModuleType | None:
    """Import module `name`, or return None when it (or one of its dependencies) is missing.

    Parameters
    ----------
    name : str
        Importable module name, e.g. ``"suite2p"`` or ``"CalSciPy"``.

    Returns
    -------
    module or None
    """
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a peer whose import fails for its own reasons
        return None


def add_relative_notes(rows: Sequence[Row], reference: str) -> None:
    """Note each row's speed relative to the `reference` implementation of the same task.

    Rows are grouped by ``(benchmark, size)``; in each group with a timed `reference` row, every
    other timed row gets a note like ``"2.3x faster than scipy"`` or ``"1.5x slower than scipy"``.

    Parameters
    ----------
    rows : sequence of Row
        Modified in place.
    reference : str
        The ``implementation`` to compare with.
    """
    refs = {
        (r.benchmark, r.size): r.seconds
        for r in rows
        if r.implementation == reference and r.seconds
    }
    for row in rows:
        ref = refs.get((row.benchmark, row.size))
        if row.implementation == reference or not ref or not row.seconds:
            continue
        ratio = ref / row.seconds
        if ratio >= 1:
            row.add_note(f"{ratio:.2g}x faster than {reference}")
        else:
            row.add_note(f"{1 / ratio:.2g}x slower than {reference}")
