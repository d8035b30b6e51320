"""A small recording and the comparison every resume test makes against its clean run.

Shared by ``test_pipeline_safety.py`` and ``test_disk_full.py``: a rerun after a fault (a flipped
byte, a full disk) must give exactly the results of a run that met no fault.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import napari_calcium as nc
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.pipeline import load_results


def write_movie(folder: Path) -> Path:
    """A 300-frame 64 x 64 synthetic TIFF with frame rate and pixel size, in `folder`."""
    rec = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=8, seed=4)
    return write_tiff_stack(
        folder / "movie.tif",
        rec.movie,
        frame_rate_hz=rec.metadata["frame_rate_hz"],
        pixel_size_um=rec.metadata["pixel_size_um"],
    )


def assert_same_results(folder: Path, clean: Path) -> None:
    """ROIs, traces, dF/F, spikes, events and the exported traces equal the clean run's."""
    a, b = load_results(folder), load_results(clean)
    np.testing.assert_array_equal(a.rois.ids, b.rois.ids)
    for name in ("F", "Fneu", "corrected"):
        np.testing.assert_array_equal(getattr(a.traces, name), getattr(b.traces, name))
    np.testing.assert_array_equal(a.dff.dff, b.dff.dff)
    np.testing.assert_array_equal(a.spikes.s, b.spikes.s)
    assert len(a.events) == len(b.events)
    for ea, eb in zip(a.events, b.events, strict=True):
        np.testing.assert_array_equal(ea, eb)
    for ext in ("npz", "json"):
        assert (folder / f"traces.{ext}").is_file()
    with np.load(folder / "traces.npz") as x, np.load(clean / "traces.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key])
