"""Trace plot redraw on click, pyqtgraph (our dock) vs matplotlib, 1,000 ROIs x 20,000 frames.

Needs a display: run under Xvfb (``xvfb-run -a python benchmarks/run.py --only plot``). Each row
times "select ROI(s)" until the plot has repainted (``QApplication.processEvents()`` after the
change), cycling through different ROIs, for

* one ROI: raw F, neuropil, corrected (one axes) and dF/F (a second, x-linked axes), 4 curves;
* an overlay of 10 ROIs (40 curves) and, for our dock, the stacked view of the same 10.

Implementations:

* ``napari-calcium (pyqtgraph)``: :class:`TracePlotWidget` itself (auto "peak" downsampling and
  clip-to-view; curve items reused, their data set to the stored rows);
* ``napari-matplotlib`` (``NapariMPLWidget``, its themed FigureCanvasQTAgg base; plain
  ``FigureCanvasQTAgg`` when napari-matplotlib is not installed): the axes cleared and re-plotted,
  then ``canvas.draw()``; and the fastest matplotlib pattern, reusing the Line2D objects
  (``set_ydata``) so only the draw is timed.

Goal: redraw on click < 100 ms (issue 6).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import time_call

EXTRA_PACKAGES = ("pyqtgraph", "matplotlib", "napari-matplotlib", "napari")
GOAL_S = 0.100
FS = 30.0


def _data(n_rois: int, n_frames: int) -> tuple[Any, Any, Any, np.ndarray]:
    import napari_calcium as nc
    from napari_calcium.core.traces.dff import DffResult
    from napari_calcium.core.traces.extraction import TraceSet

    rng = np.random.default_rng(0)
    F = rng.normal(500, 20, (n_rois, n_frames)).astype(np.float32)
    Fneu = rng.normal(200, 5, (n_rois, n_frames)).astype(np.float32)
    corrected = (F - 0.7 * Fneu).astype(np.float32)
    ids = np.arange(1, n_rois + 1, dtype=np.int64)
    traces = TraceSet(F, Fneu, corrected, np.full(n_rois, 0.7, np.float32), ids, FS)
    base = np.full_like(corrected, float(np.median(corrected)))
    dff = DffResult((corrected - base) / base, base, "constant")
    side = int(np.ceil(np.sqrt(n_rois)))
    labels = np.zeros((side * 8, side * 8), np.int32)
    for k in range(n_rois):
        r, c = divmod(k, side)
        labels[r * 8 + 1 : r * 8 + 7, c * 8 + 1 : c * 8 + 7] = k + 1
    return traces, dff, nc.RoiSet.from_label_image(labels), ids


def _cycle(ids: np.ndarray, n: int):
    starts = itertools.cycle(range(0, len(ids) - n, max(n, 37)))

    def nxt() -> list[int]:
        s = next(starts)
        return [int(i) for i in ids[s : s + n]]

    return nxt


def _pyqtgraph_rows(viewer, app, traces, dff, rois, ids, size, repeat) -> list[Row]:
    from napari_calcium._napari._rois import rois_labels_kwargs
    from napari_calcium._napari.widgets.trace_plot import TracePlotWidget

    data, kwargs = rois_labels_kwargs(rois, name="rois", extra_meta={"traces": traces, "dff": dff})
    viewer.add_labels(data, **kwargs)
    widget = TracePlotWidget(viewer)
    for box in widget.kind_boxes.values():
        box.setChecked(True)
    widget.resize(800, 500)
    widget.show()
    app.processEvents()
    rows = []
    for label, n, mode in (
        ("1 ROI, 4 traces", 1, "overlay"),
        ("10 ROIs overlay", 10, "overlay"),
        ("10 ROIs stacked", 10, "stacked"),
    ):
        widget.mode = mode
        nxt = _cycle(ids, n)

        def click(nxt=nxt) -> None:
            widget.show_rois(nxt())
            app.processEvents()

        t = time_call(click, repeat=repeat, warmup=2)
        note = "meets" if t.best < GOAL_S else "misses"
        rows.append(
            Row(
                f"redraw on click: {label}",
                "napari-calcium (pyqtgraph)",
                size,
                t,
                {"points": 4 * n * traces.n_frames},
                notes=f"{note} 100 ms goal",
            )
        )
    widget.close()
    return rows


def _mpl_rows(viewer, app, traces, dff, ids, size, repeat) -> list[Row]:
    nmpl = optional_import("napari_matplotlib.base")
    if nmpl is not None:
        widget, impl = nmpl.NapariMPLWidget(viewer), "napari-matplotlib"
        fig, canvas = widget.figure, widget.canvas
    else:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        fig = Figure()
        widget = canvas = FigureCanvasQTAgg(fig)
        impl = "matplotlib FigureCanvasQTAgg"
    fig.clear()
    ax_f, ax_d = fig.subplots(2, 1, sharex=True)
    widget.resize(800, 500)
    widget.show()
    app.processEvents()
    x = np.arange(traces.n_frames) / FS
    kinds = ((ax_f, traces.F), (ax_f, traces.Fneu), (ax_f, traces.corrected), (ax_d, dff.dff))
    rows = []
    for label, n in (("1 ROI, 4 traces", 1), ("10 ROIs overlay", 10)):
        nxt = _cycle(ids, n)

        def replot(nxt=nxt) -> None:
            rows_i = [int(r) - 1 for r in nxt()]
            ax_f.cla()
            ax_d.cla()
            for ax, arr in kinds:
                for i in rows_i:
                    ax.plot(x, arr[i], lw=0.8)
            canvas.draw()
            app.processEvents()

        t = time_call(replot, repeat=repeat, warmup=1)
        note = "meets" if t.best < GOAL_S else "misses"
        rows.append(
            Row(
                f"redraw on click: {label}",
                impl + " (re-plot)",
                size,
                t,
                {"points": 4 * n * traces.n_frames},
                notes=f"{note} 100 ms goal",
            )
        )
        # fastest matplotlib pattern: keep the lines, swap their data
        ax_f.cla()
        ax_d.cla()
        lines = [(ax.plot(x, arr[0], lw=0.8)[0], arr) for ax, arr in kinds for _ in range(n)]

        def swap(nxt=nxt, lines=lines, n=n) -> None:
            rows_i = [int(r) - 1 for r in nxt()]
            for k, (line, arr) in enumerate(lines):
                line.set_ydata(arr[rows_i[k % n]])
            for ax in (ax_f, ax_d):
                ax.relim()
                ax.autoscale_view()
            canvas.draw()
            app.processEvents()

        t = time_call(swap, repeat=repeat, warmup=1)
        note = "meets" if t.best < GOAL_S else "misses"
        rows.append(
            Row(
                f"redraw on click: {label}",
                impl + " (set_ydata)",
                size,
                t,
                {"points": 4 * n * traces.n_frames},
                notes=f"{note} 100 ms goal",
            )
        )
    widget.close()
    return rows


def run(quick: bool = False) -> list[Row]:
    """Time redraw-on-click; see the module docstring."""
    napari = optional_import("napari")
    if napari is None or optional_import("pyqtgraph") is None:
        return [
            skipped_row("redraw on click", "napari-calcium (pyqtgraph)", "-", "napari/pyqtgraph")
        ]
    n_rois, n_frames = (100, 6000) if quick else (1000, 20000)
    repeat = 3 if quick else 10
    traces, dff, rois, ids = _data(n_rois, n_frames)
    size = f"{n_rois}x{n_frames} traces"
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    try:
        rows = _pyqtgraph_rows(viewer, app, traces, dff, rois, ids, size, repeat)
        if optional_import("matplotlib") is None:
            rows.append(
                skipped_row("redraw on click: 1 ROI, 4 traces", "matplotlib", size, "matplotlib")
            )
        else:
            rows += _mpl_rows(viewer, app, traces, dff, ids, size, repeat)
    finally:
        viewer.close()
    return rows
