"""A Miniscope folder in a real viewer, as a user works with it (issue 19).

Dragged in (the plugin's reader), motion-corrected piecewise with its corrupted frame
interpolated, the patch shifts shown as arrows, ROIs detected with the one-photon seeds (the
Detect ROIs widget's "auto" modality sees a Miniscope recording) and traces extracted.
"""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import click_run, dock_widget
from napari_calcium.core.rois.matching import detection_scores

pytestmark = pytest.mark.gui


def test_miniscope_folder_from_drop_to_traces(make_napari_viewer, qtbot, tmp_path):
    rec = nc.simulate_recording(
        n_frames=600, shape=(128, 128), n_neurons=16, frame_rate_hz=20.0,
        modality="one_photon", nonrigid_px=2.5, seed=4,
    )  # fmt: skip
    movie = np.asarray(rec.movie, dtype=np.float64)
    lo, hi = np.percentile(movie, [0.01, 99.99])
    movie8 = np.clip(np.rint((movie - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    movie8[300, 40:52] = (np.indices((12, 128)).sum(axis=0) % 2 * 255).astype(np.uint8)
    folder = nc.write_miniscope(tmp_path / "exp", movie8, frame_rate_hz=20.0, segment_frames=200)

    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(folder), plugin="napari-calcium")  # as napari opens a drop
    assert layer.data.shape == movie8.shape
    assert layer.metadata["napari_calcium"]["source_format"] == "miniscope"
    assert layer.scale[0] == pytest.approx(1 / 20.0, rel=0.02)  # from timeStamps.csv

    motion = dock_widget(viewer, "Motion correction")
    motion.layer_box.value = layer
    motion.piecewise.value = True
    motion.patch.value, motion.overlap.value, motion.max_deviation.value = 48, 16, 4.0
    motion.one_photon.value = True  # high-pass the background before estimating
    motion.corrupted.value = "interpolate"
    registered, arrows = click_run(motion, qtbot)
    assert registered.metadata["napari_calcium"]["corrupted_frames"] == [300]
    assert arrows._type_string == "vectors" and len(arrows.data) == 600 * 16  # 4 x 4 patches

    detect = dock_widget(viewer, "Detect ROIs")
    detect.layer_box.value = registered
    assert detect.modality.value == "auto"
    (labels,) = click_run(detect, qtbot)
    assert labels.metadata["napari_calcium"]["steps"][-1]["modality"] == "one_photon"
    rois = nc.RoiSet.from_label_image(np.asarray(labels.data))
    truth = nc.RoiSet.from_label_image(rec.truth.labels)
    scores = detection_scores(rois, truth, criterion="centroid")
    assert scores.f1 >= 0.6, scores  # motion-corrected 8-bit movie, diameter estimated

    extract = dock_widget(viewer, "Extract traces")
    extract.movie_box.value, extract.rois_box.value = registered, labels
    click_run(extract, qtbot, expect=": done")
    traces = labels.metadata["napari_calcium"]["traces"]
    assert traces.corrected.shape == (len(rois), 600)
    assert np.isfinite(traces.corrected).all()
