"""Render the screenshots used in docs/.

Run under Xvfb: ``xvfb-run -a python docs/_scripts/screenshots.py``.

Each picture is made from the plugin's own entry points, the way a user would get it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "images"


def sample_recording() -> None:
    """File > Open Sample > napari-calcium > Synthetic two-photon recording, 10 s in."""
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1300, 820)
    viewer.open_sample("napari-calcium", "synthetic")
    viewer.dims.set_point(0, 10.0)
    viewer.layers["ground-truth ROIs"].contour = 1
    viewer.layers["ground-truth ROIs"].opacity = 0.8
    viewer.scale_bar.visible = True
    viewer.text_overlay.visible = True
    viewer.text_overlay.text = "t = 10.0 s"
    napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(path=str(OUT / "sample_recording.png"), canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, "blank screenshot"
    viewer.close()


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def bruker_folder() -> None:
    """A real 4-plane PrairieView T-series dropped into napari, with the Convert widget docked."""
    folder = (
        SHARED
        / "bruker_calscipy_4plane_tseries"
        / "reg1_x300_y009n_z1425t1530_p110t131_APr_VSleft-007"
    )
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 860)
    (layer,) = viewer.open(str(folder), plugin="napari-calcium")
    # a mean over all 30 volumes (napari's thick slicing): single resonant frames are photon-sparse
    layer.projection_mode = "mean"
    viewer.dims.set_point(1, 2 * layer.scale[1])  # third plane
    viewer.dims.thickness = (layer.data.shape[0] * layer.scale[0] * 2, 0, 0, 0)
    mean_image = np.asarray(layer.data[:, 2].mean(axis=0))
    layer.contrast_limits = tuple(float(v) for v in np.percentile(mean_image, (1, 99.7)))
    viewer.scale_bar.visible = True
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Convert recording")
    widget.source.value = folder
    widget.output.value = Path("~/converted").expanduser()
    napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(path=str(OUT / "bruker_folder.png"), canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, "blank screenshot"
    viewer.close()


def processing() -> None:
    """Summary images and motion correction widgets on a moving synthetic recording."""
    import napari_calcium as nc

    rec = nc.simulate_recording(n_frames=600, shape=(192, 192), n_neurons=40, motion_px=3, seed=2)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 860)
    movie = viewer.add_image(
        rec.movie,
        name="moving movie",
        scale=(1 / 30, 1, 1),
        metadata={"napari_calcium": rec.metadata},
    )
    corrected = nc.motion_correct(rec.movie, max_shift_px=8)
    viewer.add_image(
        corrected.movie,
        name="registered",
        scale=movie.scale,
        metadata={"napari_calcium": rec.metadata},
    )
    cp = nc.correlation_pnr(corrected.movie, gaussian_sigma_px=3, threshold_sigma=3)
    viewer.add_image(cp.correlation, name="correlation image", colormap="magma")
    viewer.grid.enabled = True
    viewer.grid.shape = (1, 3)
    viewer.window.add_plugin_dock_widget("napari-calcium", "Motion correction")
    viewer.window.add_plugin_dock_widget("napari-calcium", "Summary images")
    viewer.dims.set_point(0, 10.0)
    napari.qt.get_qapp().processEvents()
    viewer.reset_view()
    napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(path=str(OUT / "processing.png"), canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, "blank screenshot"
    viewer.close()


def rois() -> None:
    """Detect ROIs on the real neurofinder crop through the widget; manual labels as outlines."""
    import time

    import napari_calcium as nc
    from napari_calcium._napari._rois import rois_shapes_kwargs

    folder = SHARED / "neurofinder_crop"
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 860)
    (movie,) = viewer.open(str(folder / "movie.tif"), plugin="napari-calcium")
    mean = np.asarray(movie.data).mean(axis=0)
    lo, hi = np.percentile(mean, (1, 99.7))
    viewer.add_image(mean, name="mean image", scale=movie.scale[1:], contrast_limits=(lo, hi))
    movie.visible = False
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Detect ROIs")
    widget.layer_box.value = movie
    job = widget.start()
    app = napari.qt.get_qapp()
    while not job.done:
        app.processEvents()
        time.sleep(0.05)
    (detected,) = widget.last_layers
    detected.opacity = 0.45
    manual = nc.load_rois(folder / "regions.json", shape=mean.shape)
    polys, kwargs = rois_shapes_kwargs(manual, name="manual labels (neurofinder)", reference=movie)
    kwargs.update(edge_color="cyan", edge_width=0.6)
    viewer.add_shapes(polys, **kwargs)
    viewer.scale_bar.visible = True
    viewer.reset_view()
    app.processEvents()
    shot = viewer.screenshot(path=str(OUT / "rois.png"), canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, "blank screenshot"
    viewer.close()


def _wait(job) -> None:
    import time

    app = napari.qt.get_qapp()
    while not job.done:
        app.processEvents()
        time.sleep(0.05)


def _detected_scene(size: tuple[int, int]):
    """Viewer, recording, movie layer, detected ROIs and their Labels layer (traces, spikes)."""
    import napari_calcium as nc
    from napari_calcium._napari._layers import movie_layer_kwargs
    from napari_calcium._napari._rois import rois_labels_kwargs

    rec = nc.simulate_recording(n_frames=1800, shape=(192, 192), n_neurons=40, seed=4)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(*size)
    movie = viewer.add_image(rec.movie, **movie_layer_kwargs(rec.metadata, name="movie"))
    movie.contrast_limits = tuple(float(v) for v in np.percentile(rec.movie[600], (1, 99.8)))
    rois = nc.detect_rois(rec.movie, frame_rate_hz=30, pixel_size_um=1.0)
    data, kwargs = rois_labels_kwargs(rois, name="movie ROIs", reference=movie)
    labels = viewer.add_labels(data, **kwargs)
    labels.contour = 1
    return viewer, rec, movie, rois, labels


def traces() -> None:
    """Extract traces + dF/F through the widgets, then the trace plot dock on one ROI."""
    viewer, _, movie, _, labels = _detected_scene((1500, 900))
    _, extract = viewer.window.add_plugin_dock_widget("napari-calcium", "Extract traces")
    extract.movie_box.value, extract.rois_box.value = movie, labels
    _wait(extract.start())
    _, dff = viewer.window.add_plugin_dock_widget("napari-calcium", "dF/F")
    dff.rois_box.value = labels
    _wait(dff.start())
    _, plot = viewer.window.add_plugin_dock_widget("napari-calcium", "Trace plot")
    plot.set_layer(labels)
    active = np.argsort(labels.features["dff_snr"].to_numpy())[::-1]
    plot.show_rois([int(labels.features["index"].iloc[active[0]])])
    viewer.dims.set_point(0, 20.0)
    viewer.layers.selection.active = labels
    napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(path=str(OUT / "traces.png"), canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, "blank screenshot"
    viewer.close()


def spikes() -> None:
    """Deconvolve (GCaMP6f preset) through the widget, the trace plot with fit and activity,
    and the spike raster, on the same synthetic recording as ``traces``."""
    import napari_calcium as nc

    viewer, rec, _, rois, labels = _detected_scene((1700, 1150))
    traces = nc.extract_traces(rec.movie, rois, frame_rate_hz=30.0)
    meta = dict(labels.metadata["napari_calcium"])
    meta.update(traces=traces, dff=nc.compute_dff(traces.corrected, frame_rate_hz=30.0))
    labels.metadata = {**labels.metadata, "napari_calcium": meta}
    _, decon = viewer.window.add_plugin_dock_widget("napari-calcium", "Deconvolve")
    decon.rois_box.value = labels
    decon.indicator.value = "GCaMP6f"
    _wait(decon.start())
    from napari_calcium._napari.widgets.trace_plot import TracePlotWidget

    plot = TracePlotWidget(viewer)  # the Plugins-menu widget, docked below the canvas
    viewer.window.add_dock_widget(plot, name="Trace plot (napari-calcium)", area="bottom")
    plot.set_layer(labels)
    snr = nc.snr(meta["dff"].dff)
    best = int(traces.ids[int(np.argmax(snr))])
    labels.selected_label = best
    plot.show_rois([best])
    _, raster = viewer.window.add_plugin_dock_widget("napari-calcium", "Spike raster")
    raster.set_layer(labels)
    viewer.dims.set_point(0, 20.0)
    viewer.layers.selection.active = labels
    napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(path=str(OUT / "spikes.png"), canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, "blank screenshot"
    viewer.close()


SHOTS = {
    "sample_recording": sample_recording,
    "bruker_folder": bruker_folder,
    "processing": processing,
    "rois": rois,
    "traces": traces,
    "spikes": spikes,
}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[1:] or SHOTS:  # e.g. `screenshots.py rois` renders only that one
        SHOTS[name]()
    print("wrote", *sorted(p.name for p in OUT.glob("*.png")), file=sys.stderr)
