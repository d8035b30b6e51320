"""File > Open Sample > napari-calcium > Synthetic two-photon recording."""

from __future__ import annotations

import numpy as np

from ._layers import image2d_layer_kwargs, movie_layer_kwargs

#: the sample's size: small enough to appear within a couple of seconds on a laptop
SAMPLE_PARAMETERS = {
    "n_frames": 900,
    "shape": (192, 192),
    "n_neurons": 40,
    "frame_rate_hz": 30.0,
    "pixel_size_um": 1.0,
    "seed": 0,
}


def synthetic_two_photon() -> list[tuple]:
    """A synthetic GCaMP6f recording (30 s at 30 Hz) and its ground-truth ROIs.

    Returns
    -------
    list of napari LayerData tuples
        An Image layer with the ``(frames, y, x)`` movie, scaled in s and µm, and a Labels layer
        with the ground-truth somata. The full :class:`~napari_calcium.GroundTruth` (spikes,
        calcium, neuropil, ...) is in ``layer.metadata["napari_calcium"]["truth"]``.
    """
    from ..core.synthetic.recording import simulate_recording

    rec = simulate_recording(**SAMPLE_PARAMETERS)
    meta = {**rec.metadata, "truth": rec.truth, "simulation": dict(SAMPLE_PARAMETERS)}
    movie_kw = movie_layer_kwargs(meta, name="synthetic movie")
    # a display range from the data rather than the full 13-bit range: the movie is small and eager
    lo, hi = np.percentile(rec.movie[:: max(1, len(rec.movie) // 50)], (0.5, 99.9))
    movie_kw["contrast_limits"] = (float(lo), float(hi))
    labels_kw = image2d_layer_kwargs(meta, name="ground-truth ROIs")
    labels_kw["opacity"] = 0.4
    return [(rec.movie, movie_kw, "image"), (rec.truth.labels, labels_kw, "labels")]
