"""Render the screenshots of docs/tutorial.md ("From a Bruker folder to spikes").

Run under Xvfb: ``xvfb-run -a python docs/_scripts/tutorial_screenshots.py`` (``--only-tiff``
for the "your own TIFF" pictures alone, from ``../shared/data/neurofinder_crop``; ``--only-1p``
for the one-photon ones, from a Miniscope folder of the one-photon simulator).

It writes the demo PrairieView folder (``napari-calcium demo DIR --bruker``), opens it in napari
with the plugin's reader, and drives the real widgets in the order of the tutorial, saving one
picture per step as ``docs/images/tutorial_<step>.png``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "images"
SIZE = (1600, 1000)
MAX_BYTES = 400_000
#: the demo recording of the tutorial: 40 s at 30 Hz, 256 x 256 px, 40 neurons, 2 px of motion
DEMO = ["--frames", "1200", "--neurons", "40", "--motion", "2", "--seed", "3", "--quiet"]


def _app():
    return napari.qt.get_qapp()


def _wait(job) -> None:
    assert job is not None
    while not job.done:
        _app().processEvents()
        time.sleep(0.05)


def _run(widget) -> None:
    _wait(widget.start())
    assert ": done" in widget.status.value, widget.status.value


def _shot(viewer, step: str) -> None:
    """Save the whole window as tutorial_<step>.png (downscaled if it would be too large)."""
    from PIL import Image

    for _ in range(3):
        _app().processEvents()
        time.sleep(0.05)
    path = OUT / f"tutorial_{step}.png"
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, f"blank screenshot {path.name}"
    image = Image.fromarray(np.asarray(shot)).convert("RGB")
    image.save(path, optimize=True)
    while path.stat().st_size > MAX_BYTES:
        image = image.resize((image.width * 9 // 10, image.height * 9 // 10), Image.LANCZOS)
        image.save(path, optimize=True)
    print(f"{path.name}: {image.width}x{image.height}, {path.stat().st_size // 1024} KiB")


def _dock(viewer, name: str, area: str = "right"):
    dock, widget = viewer.window.add_plugin_dock_widget("napari-calcium", name)
    if area != "right":
        viewer.window._qt_window.addDockWidget(
            {"bottom": 0x8, "left": 0x1}[area], dock
        )  # Qt.DockWidgetArea
    return dock, widget


def _undock(viewer, dock) -> None:
    viewer.window.remove_dock_widget(dock)


def render(folder: Path) -> None:
    """All steps, in one viewer, as a user would do them."""
    from napari_calcium._napari.widgets.trace_plot import TracePlotWidget

    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    viewer.scale_bar.visible = True

    # 1. open: drag the folder in (napari-calcium reader)
    (raw,) = viewer.open(str(folder), plugin="napari-calcium")
    frame = np.asarray(raw.data[300])
    raw.contrast_limits = tuple(float(v) for v in np.percentile(frame, (1, 99.8)))
    viewer.dims.set_point(0, 10.0)
    viewer.text_overlay.visible = True
    viewer.text_overlay.text = f"{raw.name}: {raw.data.shape[0]} frames, 30 Hz, 1 µm/px"
    _shot(viewer, "open")
    viewer.text_overlay.visible = False

    # 2. motion correction: mean over time before and after, side by side
    dock, motion = _dock(viewer, "Motion correction")
    motion.layer_box.value = raw
    _run(motion)
    (registered,) = motion.last_layers
    registered.contrast_limits = raw.contrast_limits
    for layer in (raw, registered):
        layer.projection_mode = "mean"
    viewer.dims.thickness = (raw.data.shape[0] * raw.scale[0] * 2, 0, 0)
    viewer.grid.enabled = True
    viewer.grid.shape = (1, 2)
    viewer.reset_view()
    _shot(viewer, "motion")
    _undock(viewer, dock)
    viewer.grid.enabled = False
    viewer.dims.thickness = (0, 0, 0)
    for layer in (raw, registered):
        layer.projection_mode = "none"
    raw.visible = False

    # 3. summary images: the correlation image of the registered movie
    dock, summary = _dock(viewer, "Summary images")
    summary.layer_box.value = registered
    summary.kind.value = "correlation"
    _run(summary)
    (corr,) = summary.last_layers
    registered.visible = False
    viewer.reset_view()
    _shot(viewer, "summary")
    _undock(viewer, dock)

    # 4. detect ROIs on the registered movie, outlines over the correlation image
    dock, detect = _dock(viewer, "Detect ROIs")
    detect.layer_box.value = registered
    _run(detect)
    (labels,) = detect.last_layers
    labels.contour = 1
    viewer.layers.selection.active = labels
    _shot(viewer, "rois")
    _undock(viewer, dock)

    # 5. traces with neuropil correction, and the trace plot below the canvas
    dock, extract = _dock(viewer, "Extract traces")
    extract.movie_box.value, extract.rois_box.value = registered, labels
    _run(extract)
    plot = TracePlotWidget(viewer)
    plot_dock = viewer.window.add_dock_widget(
        plot, name="Trace plot (napari-calcium)", area="bottom"
    )
    plot_dock.setMinimumHeight(330)
    plot.set_layer(labels)
    traces = labels.metadata["napari_calcium"]["traces"]
    best = int(traces.ids[int(np.argmax(traces.corrected.std(axis=1)))])
    labels.selected_label = best
    plot.show_rois([best])
    plot.kind_boxes["Fneu"].setChecked(True)
    registered.visible = True
    corr.visible = False
    viewer.dims.set_point(0, 20.0)
    viewer.layers.selection.active = labels
    _shot(viewer, "traces")
    _undock(viewer, dock)

    # 6. dF/F
    dock, dff = _dock(viewer, "dF/F")
    dff.rois_box.value = labels
    _run(dff)
    plot.kind_boxes["Fneu"].setChecked(False)
    plot.set_layer(labels)
    plot.show_rois([best])
    _shot(viewer, "dff")
    _undock(viewer, dock)

    # 7. deconvolve: activity in the plot, and the spike raster of every ROI
    dock, decon = _dock(viewer, "Deconvolve")
    decon.rois_box.value = labels
    decon.indicator.value = "GCaMP6f"
    _run(decon)
    plot.set_layer(labels)
    plot.show_rois([best])
    plot.kind_boxes["F"].setChecked(False)
    plot_dock.setMinimumHeight(420)
    _, raster = _dock(viewer, "Spike raster")
    raster.set_layer(labels)
    _shot(viewer, "spikes")
    _undock(viewer, dock)

    # 8. save traces, dF/F and spikes
    dock, save = _dock(viewer, "Save traces")
    save.rois_box.value = labels
    results = folder.parent / "results"
    results.mkdir(exist_ok=True)
    save.path.value = results / "traces.npz"
    save.overwrite.value = True
    save.start()
    assert "saved" in save.status.value, save.status.value
    save.status.value = save.status.value.replace(str(results.parent) + "/", "")
    _shot(viewer, "save")
    viewer.close()


def render_tiff(folder: Path) -> None:
    """Your own TIFF without metadata: the real neurofinder crop, a rate typed in the viewer."""
    from napari_calcium._napari.widgets.trace_plot import TracePlotWidget

    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    (movie,) = viewer.open(str(folder / "movie.tif"), plugin="napari-calcium")
    import_dock, importer = _dock(viewer, "Import ROIs")
    importer.image_box.value = movie
    importer.path.value = folder / "regions.json"
    importer.start()
    labels = viewer.layers["regions ROIs"]
    labels.contour = 1
    extract_dock, extract = _dock(viewer, "Extract traces")
    extract.movie_box.value, extract.rois_box.value = movie, labels
    _run(extract)
    for dock in (import_dock, extract_dock):
        _undock(viewer, dock)

    # dF/F refuses: the TIFF has no frame rate; Recording properties shows it unknown
    _, dff = _dock(viewer, "dF/F")
    dff.rois_box.value = labels
    assert dff.start() is None and "frame rate" in dff.status.value.lower(), dff.status.value
    _, props = _dock(viewer, "Recording properties")
    props.layer_box.value = movie
    viewer.dims.set_point(0, 200)
    viewer.layers.selection.active = labels
    _shot(viewer, "tiff_unknown")

    # type the rate, Apply: the time axis is in seconds and dF/F runs
    props.frame_rate.value = "7.5"
    props.apply_button.native.click()
    _run(dff)
    plot = TracePlotWidget(viewer)
    plot_dock = viewer.window.add_dock_widget(
        plot, name="Trace plot (napari-calcium)", area="bottom"
    )
    plot_dock.setMinimumHeight(330)
    plot.set_layer(labels)
    traces = labels.metadata["napari_calcium"]["traces"]
    best = int(traces.ids[int(np.nanargmax(traces.corrected.std(axis=1)))])
    # and a ROI whose neuropil outshines it: flagged in the features, the plot and the status
    flagged = labels.features.loc[labels.features["neuropil_dominated"].astype(bool), "index"]
    shown = [best, *(int(v) for v in flagged[:1])]
    labels.selected_label = shown[-1]
    plot.show_rois(shown)
    viewer.dims.set_point(0, 200 / 7.5)
    _shot(viewer, "tiff_dff")
    viewer.close()


def render_miniscope(tmp: Path) -> None:
    """One-photon: a Miniscope folder dragged in, piecewise motion, one-photon ROIs, traces."""
    import napari_calcium as nc
    from napari_calcium._napari.widgets.trace_plot import TracePlotWidget

    rec = nc.simulate_recording(
        n_frames=1200, shape=(192, 192), n_neurons=40, frame_rate_hz=20.0,
        modality="one_photon", nonrigid_px=3.0, seed=1,
    )  # fmt: skip
    movie = np.asarray(rec.movie, dtype=np.float64)
    lo, hi = np.percentile(movie, [0.01, 99.99])
    movie8 = np.clip(np.rint((movie - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    movie8[600, 70:84] = (np.indices((14, 192)).sum(axis=0) % 2 * 255).astype(np.uint8)
    (tmp / "2026_12_07").mkdir()
    folder = nc.write_miniscope(tmp / "2026_12_07" / "10_30_00", movie8, frame_rate_hz=20.0)

    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    (layer,) = viewer.open(str(folder), plugin="napari-calcium")
    viewer.dims.set_point(0, 600 / 20.0)
    motion_dock, motion = _dock(viewer, "Motion correction")
    motion.layer_box.value = layer
    motion.one_photon.value = True
    motion.piecewise.value = True
    motion.patch.value, motion.overlap.value, motion.max_deviation.value = 64, 24, 4.0
    motion.corrupted.value = "interpolate"
    _run(motion)
    registered, arrows = motion.last_layers
    layer.visible = False
    viewer.layers.selection.active = arrows
    viewer.dims.set_point(0, 600 / 20.0)
    _shot(viewer, "1p_motion")
    _undock(viewer, motion_dock)

    detect_dock, detect = _dock(viewer, "Detect ROIs")
    detect.layer_box.value = registered
    _run(detect)
    (labels,) = detect.last_layers
    labels.contour = 1
    arrows.visible = False
    extract_dock, extract = _dock(viewer, "Extract traces")
    extract.movie_box.value, extract.rois_box.value = registered, labels
    _run(extract)
    _undock(viewer, detect_dock)
    _undock(viewer, extract_dock)
    plot = TracePlotWidget(viewer)
    plot_dock = viewer.window.add_dock_widget(
        plot, name="Trace plot (napari-calcium)", area="bottom"
    )
    plot_dock.setMinimumHeight(330)
    plot.set_layer(labels)
    traces = labels.metadata["napari_calcium"]["traces"]
    # the two ROIs whose corrected traces are most transient-like (skewed), not the ones the
    # slow one-photon background moves most
    x = traces.corrected - np.median(traces.corrected, axis=1, keepdims=True)
    skew = (x**3).mean(axis=1) / np.maximum(x.std(axis=1), 1e-9) ** 3
    best = [int(traces.ids[i]) for i in np.argsort(skew)[::-1][:2]]
    labels.selected_label = best[0]
    plot.show_rois(best)
    viewer.layers.selection.active = labels
    for _ in range(5):  # let the docked plot take its height, then fit the image
        _app().processEvents()
        time.sleep(0.05)
    viewer.reset_view()
    _shot(viewer, "1p_rois")
    viewer.close()


if __name__ == "__main__":
    from napari_calcium.cli import DEMO_BRUKER, main

    OUT.mkdir(parents=True, exist_ok=True)
    neurofinder = Path(__file__).resolve().parents[3] / "shared" / "data" / "neurofinder_crop"
    if "--only-1p" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            render_miniscope(Path(tmp))
        sys.exit(0)
    render_tiff(neurofinder)
    if "--only-tiff" in sys.argv:
        sys.exit(0)
    with tempfile.TemporaryDirectory() as tmp:
        render_miniscope(Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        assert main(["demo", str(demo), "--bruker", *DEMO]) == 0
        render(demo / DEMO_BRUKER)
    print("wrote", *sorted(p.name for p in OUT.glob("tutorial_*.png")), file=sys.stderr)
