"""Benchmark results and their output.

:class:`Row` is one result (one implementation of one task at one size, its
:class:`~_harness.timing.Timing`, work per call for the throughput column, notes, status);
:class:`Table` prints rows as aligned plain text or markdown; :func:`write_json` writes the
machine description and all rows as JSON. :data:`MB` is the decimal megabyte of the MB/s
throughput columns.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness.timing import Timing

__all__ = [
    "MB",
    "Row",
    "Table",
    "write_json",
]

MB = 1e6  # decimal megabyte: throughput columns are in MB/s (10**6 bytes per second)


@dataclass
class Row:
    """One benchmark result: one implementation of one task at one size.

    Attributes
    ----------
    benchmark : str
        What is measured, e.g. ``"simulate_recording eager"`` or ``"median filter 3x3x3"``. Rows
        of different implementations of the same task share it (and `size`).
    implementation : str
        Who does it: ``"napari-calcium"``, ``"scipy"``, ``"CalSciPy"``, ``"suite2p"``, ...
    size : str
        Problem size in words, e.g. ``"1000x256x256, 50 cells"``.
    timing : Timing or None
        None for a row that did not run (see `status`).
    work : dict of str to float
        Amount of work per call, unit -> amount, e.g. ``{"frames": 1000, "MB": 131.1}``; the
        throughput column shows ``amount / best seconds`` as ``unit/s`` for each entry. Empty when
        a rate means nothing (e.g. building a lazy graph).
    notes : str
        Free text (parameters, peak memory, relative speed, ...).
    status : str
        ``"ok"``, ``"skipped"`` (e.g. a peer library is not installed) or ``"error"``.
    params : dict
        Machine-readable parameters for the JSON output.
    """

    benchmark: str
    implementation: str
    size: str
    timing: Timing | None = None
    work: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    status: str = "ok"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """Best time in seconds, None if the row did not run."""
        return None if self.timing is None else self.timing.best

    def throughput(self) -> dict[str, float]:
        """``{"<unit>/s": rate}`` for each entry of `work` (empty if the row did not run)."""
        best = self.seconds
        if not best:
            return {}
        return {f"{unit}/s": amount / best for unit, amount in self.work.items()}

    def add_note(self, text: str) -> None:
        """Append `text` to `notes`, separated by ``"; "``."""
        self.notes = f"{self.notes}; {text}" if self.notes else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (times in seconds, throughput per unit)."""
        out: dict[str, Any] = {
            "benchmark": self.benchmark,
            "implementation": self.implementation,
            "size": self.size,
            "status": self.status,
            "notes": self.notes,
            "work": dict(self.work),
            "params": _jsonable(self.params),
        }
        if self.timing is not None:
            out.update(
                best_s=self.timing.best,
                median_s=self.timing.median,
                times_s=list(self.timing.times),
                repeat=self.timing.repeat,
                peak_rss_delta_bytes=self.timing.peak_rss_delta_bytes,
                throughput=self.throughput(),
            )
        return out


def _jsonable(value: Any) -> Any:
    """Best-effort conversion of numpy scalars, tuples, paths ... into JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        with contextlib.suppress(Exception):
            return item()
    return str(value)


def _format_seconds(timing: Timing | None) -> str:
    if timing is None:
        return "-"
    best = timing.best
    text = f"{best:.3g}" if best >= 1e-3 else f"{best:.2e}"
    return f"{text} (best of {timing.repeat})"


def _format_rate(value: float, unit: str) -> str:
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


class Table:
    """Benchmark rows printed as an aligned plain-text or a markdown table.

    Columns: benchmark, implementation, size, seconds (best of N), throughput, notes.

    Parameters
    ----------
    rows : iterable of Row, optional
        Initial rows; more with :meth:`add` / :meth:`extend`.

    Examples
    --------
    >>> t = Table([Row("sum", "python", "1000 ints", Timing((0.5, 0.6)), {"items": 1000})])
    >>> print(t.render(markdown=True).splitlines()[2])
    | sum | python | 1000 ints | 0.5 (best of 2) | 2,000 items/s |  |
    """

    columns = (
        "benchmark",
        "implementation",
        "size",
        "seconds (best of N)",
        "throughput",
        "notes",
    )

    def __init__(self, rows: Iterable[Row] = ()) -> None:
        self.rows: list[Row] = list(rows)

    def add(self, row: Row) -> None:
        """Append one row."""
        self.rows.append(row)

    def extend(self, rows: Iterable[Row]) -> None:
        """Append several rows."""
        self.rows.extend(rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def cells(self) -> list[tuple[str, ...]]:
        """Each row's six cells as strings, in :attr:`columns` order."""
        out = []
        for row in self.rows:
            rates = row.throughput()
            throughput = ", ".join(_format_rate(v, u) for u, v in rates.items()) or "-"
            if row.timing is None:
                throughput = "-"
            out.append(
                (
                    row.benchmark,
                    row.implementation,
                    row.size,
                    _format_seconds(row.timing),
                    throughput,
                    row.notes,
                )
            )
        return out

    def render(self, *, markdown: bool = False) -> str:
        """The table as text.

        Parameters
        ----------
        markdown : bool, optional
            A GitHub-flavoured markdown table (``|`` separated, pipes in cells escaped) instead
            of space-aligned plain text.

        Returns
        -------
        str
            Header, separator and one line per row, without a trailing newline.
        """
        body = self.cells()
        if markdown:
            lines = ["| " + " | ".join(self.columns) + " |"]
            lines.append("|" + "|".join("---" for _ in self.columns) + "|")
            for cells in body:
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            return "\n".join(lines)
        widths = [len(c) for c in self.columns]
        for cells in body:
            widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
        numeric = {3, 4}  # right-align numbers

        def line(cells: Sequence[str]) -> str:
            parts = [
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        lines = [line(self.columns), "  ".join("-" * w for w in widths)]
        lines.extend(line(cells) for cells in body)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def write_json(path: str | os.PathLike[str], info: dict[str, Any], rows: Iterable[Row]) -> None:
    """Write the machine description and all rows to `path` as JSON.

    Parameters
    ----------
    path : path-like
        Output file (parent folders are created).
    info : dict
        :func:`machine_info`.
    rows : iterable of Row
        The results.
    """
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "machine": _jsonable(info),
        "rows": [r.to_dict() for r in rows],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
