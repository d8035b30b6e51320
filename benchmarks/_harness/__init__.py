"""Shared helpers of the benchmark scripts in ``benchmarks/``, one module per concept.

A benchmark module ``benchmarks/bench_<name>.py`` exposes ``run(quick: bool) -> list[Row]``;
``benchmarks/run.py`` finds the modules, prints the machine description and a table of all rows,
and can write everything as JSON. Scripts import each name from the module that owns it:

* :mod:`_harness.machine`: :func:`machine_info` / :func:`format_machine_info`: CPU, cores, RAM,
  OS, library versions, napari-calcium's compute backend (and threadpoolctl's view of BLAS/OpenMP
  pools if installed);
* :mod:`_harness.timing`: :func:`time_call` and :class:`Timing`: best and median wall time of
  repeated calls (``time.perf_counter``), with an optional peak-RSS sampler;
* :mod:`_harness.memory`: :class:`RssSampler`, :func:`max_rss_bytes`, :func:`current_rss_bytes`,
  :func:`traced_peak_bytes`, ``MiB``: memory helpers;
* :mod:`_harness.results`: :class:`Row` and :class:`Table`: one result line each, printed as
  aligned text or markdown; :func:`write_json`;
* :mod:`_harness.peers`: :func:`optional_import`, :func:`skipped_row`, :func:`add_relative_notes`:
  for running peer libraries (scipy, CalSciPy, suite2p, OASIS, ...) side by side when they are
  installed.

Speed is measured here, never asserted in the test suite. This package re-exports nothing.
"""
