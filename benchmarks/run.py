"""Run napari-calcium's benchmarks and print the machine and a table of results.

Usage, from the repository root::

    python benchmarks/run.py                 # everything, full sizes (minutes)
    python benchmarks/run.py --quick         # small sizes: a smoke run in seconds
    python benchmarks/run.py --only synthetic --json results.json --markdown
    python benchmarks/run.py --list

Each ``benchmarks/bench_<name>.py`` exposes ``run(quick: bool) -> list[Row]`` (``Row`` from
``_harness.results``) and may set ``EXTRA_PACKAGES`` (a tuple of distribution names, e.g. the peer
libraries it compares with) whose versions then go into the machine header. A module that raises
is reported as an ``error`` row (traceback on stderr) and the exit status is 1; the other modules
still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/ is not a package: make its siblings importable
    sys.path.insert(0, str(HERE))

from _harness.machine import format_machine_info, machine_info  # noqa: E402
from _harness.results import Row, Table, write_json  # noqa: E402

PREFIX = "bench_"


def discover() -> list[str]:
    """Names of the benchmark modules next to this file, without the ``bench_`` prefix, sorted.

    Returns
    -------
    list of str
        E.g. ``["synthetic"]`` for ``benchmarks/bench_synthetic.py``.
    """
    return sorted(p.stem[len(PREFIX) :] for p in HERE.glob(f"{PREFIX}*.py"))


def select(available: Sequence[str], only: Sequence[str] | None) -> list[str]:
    """Pick the benchmarks named in `only` (with or without the ``bench_`` prefix).

    Parameters
    ----------
    available : sequence of str
        From :func:`discover`.
    only : sequence of str or None
        Requested names; None or empty selects everything.

    Returns
    -------
    list of str
        Selected names, in `available` order.

    Raises
    ------
    SystemExit
        For a name that matches no module (the message lists the available ones).
    """
    if not only:
        return list(available)
    wanted = {name.removeprefix(PREFIX).removesuffix(".py") for name in only}
    unknown = sorted(wanted - set(available))
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}"
        )
    return [name for name in available if name in wanted]


def _load(name: str) -> ModuleType:
    return importlib.import_module(PREFIX + name)


def run_module(module: ModuleType, name: str, quick: bool) -> list[Row]:
    """Call ``module.run(quick)``; turn an exception into one ``error`` row.

    Parameters
    ----------
    module : module
        A ``bench_*`` module.
    name : str
        Its short name, for messages.
    quick : bool
        Passed on.

    Returns
    -------
    list of Row
    """
    try:
        rows = list(module.run(quick))
    except Exception as exc:
        traceback.print_exc()
        return [Row(name, "-", "-", notes=f"error: {type(exc).__name__}: {exc}", status="error")]
    bad = [r for r in rows if not isinstance(r, Row)]
    if bad:
        return [
            Row(
                name,
                "-",
                "-",
                notes=f"error: run() returned {type(bad[0]).__name__}, not Row",
                status="error",
            )
        ]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every module ran, 1 when one raised (its row says ``error``).
    """
    parser = argparse.ArgumentParser(
        description="Run napari-calcium benchmarks and print a table (speed is measured here, "
        "never asserted in tests)."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: finishes in seconds")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (e.g. 'synthetic' for bench_synthetic.py); repeatable",
    )
    parser.add_argument("--json", metavar="PATH", help="also write machine info and rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    names = select(available, args.only)
    if not names:
        print("no benchmarks found", file=sys.stderr)
        return 1

    modules: dict[str, ModuleType] = {}
    rows: list[Row] = []
    for name in names:
        try:
            modules[name] = _load(name)
        except Exception as exc:
            traceback.print_exc()
            rows.append(Row(name, "-", "-", notes=f"error: import failed: {exc}", status="error"))
    extra = tuple(
        dict.fromkeys(p for m in modules.values() for p in getattr(m, "EXTRA_PACKAGES", ()))
    )
    info = machine_info(extra_packages=extra)
    mode = "quick" if args.quick else "full"
    header = f"napari-calcium benchmarks ({mode}), {time.strftime('%Y-%m-%d %H:%M')}\n"
    header += format_machine_info(info)
    print(f"```text\n{header}\n```\n" if args.markdown else header + "\n", flush=True)

    for name, module in modules.items():
        print(f"running {PREFIX}{name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        rows.extend(run_module(module, name, args.quick))
        print(
            f"  {PREFIX}{name} done in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    print(Table(rows).render(markdown=args.markdown))
    if args.json:
        write_json(args.json, info, rows)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 1 if any(r.status == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
