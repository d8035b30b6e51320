"""The result of :func:`~napari_calcium.core.spikes.deconvolution.api.deconvolve`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DeconvolutionResult"]


@dataclass(frozen=True)
class DeconvolutionResult:
    """Spike inference for a set of traces, row ``i`` belonging to ROI ``ids[i]``.

    A row whose input was NaN throughout (a ROI flagged by
    :func:`~napari_calcium.core.traces.dff.compute_dff`) is NaN in every per-ROI array.

    Attributes
    ----------
    c : numpy.ndarray, shape (n_rois, n_frames)
        Denoised calcium: the model's noise-free trace above the baseline, in the units of the
        input traces (ΔF/F when ΔF/F went in).
    s : numpy.ndarray, shape (n_rois, n_frames)
        Inferred activity per frame, ``>= 0``, in the input's units (the size of the calcium jump
        each frame). Sparse for OASIS.
    activity : numpy.ndarray, shape (n_rois, n_frames)
        The calibrated activity estimate: ``s`` smoothed by a Gaussian of ``smoothing_s`` seconds
        (the default output to correlate with spikes or to average across trials; its scale is
        that of ``s`` per frame).
    baseline : numpy.ndarray, shape (n_rois, n_frames)
        Baseline removed before deconvolution, in the input's units (constant rows for a
        constant baseline).
    lam : numpy.ndarray, shape (n_rois,)
        Sparsity penalty λ used per ROI (input units).
    tau_decay_s, tau_rise_s : numpy.ndarray, shape (n_rois,)
        Kinetics used per ROI, in seconds (``tau_rise_s`` is 0 for AR(1)).
    noise : numpy.ndarray, shape (n_rois,)
        Noise standard deviation per ROI (input units), estimated from the power spectrum.
    method : str
        ``"oasis-ar1"``, ``"oasis-ar2"`` or ``"fista"``.
    frame_rate_hz : float
        Frames per second.
    ids : numpy.ndarray of int64, shape (n_rois,)
        ROI ids (``0..n_rois-1`` when the input carried none).
    parameters : dict
        Everything needed to reproduce the result (method settings, how τ and λ were chosen).
    """

    c: np.ndarray
    s: np.ndarray
    activity: np.ndarray
    baseline: np.ndarray
    lam: np.ndarray
    tau_decay_s: np.ndarray
    tau_rise_s: np.ndarray
    noise: np.ndarray
    method: str
    frame_rate_hz: float
    ids: np.ndarray
    parameters: dict = field(default_factory=dict)

    @property
    def n_rois(self) -> int:
        """Number of ROIs (rows)."""
        return int(self.s.shape[0])

    @property
    def n_frames(self) -> int:
        """Number of frames (columns)."""
        return int(self.s.shape[1])

    @property
    def time_s(self) -> np.ndarray:
        """Frame times in seconds, shape (n_frames,)."""
        return np.arange(self.n_frames) / float(self.frame_rate_hz)

    @property
    def fit(self) -> np.ndarray:
        """The reconvolved model ``baseline + c``, shape (n_rois, n_frames), input units."""
        return self.baseline + self.c

    @property
    def transient_snr(self) -> np.ndarray:
        """Per-ROI quality score, shape (n_rois,): z-score of the ROI's average transient.

        NaN where it is not defined (fewer than 5 transients, a skipped row, or a result made
        before the score existed). See
        :func:`~napari_calcium.core.spikes.deconvolution.activity.transient_snr`.
        """
        values = self.parameters.get("transient_snr")
        if values is None:
            return np.full(self.n_rois, np.nan)
        return np.array([np.nan if v is None else float(v) for v in values])

    @property
    def reliable(self) -> np.ndarray:
        """Per-ROI bool, shape (n_rois,): False where the activity is not to be trusted.

        ``transient_snr >= 20`` and ``>= 3`` per transient (the rule is in
        ``parameters["reliable_rule"]``). On the shared ground truth, held out, the flagged
        recordings' activity correlated 0.30 with the true spikes on average, the others 0.55
        (``docs/spikes.md``).
        """
        values = self.parameters.get("reliable")
        if values is None:
            return np.ones(self.n_rois, dtype=bool)
        return np.array([bool(v) for v in values], dtype=bool)

    def spike_rate_hz(self) -> np.ndarray:
        """Activity expressed per second: ``activity * frame_rate_hz``, shape (n_rois, n_frames).

        In spikes/s when the input was scaled so that one spike gives a jump of 1 (divide ΔF/F
        by the indicator's ΔF/F per spike first); otherwise in input units per second.
        """
        return self.activity * float(self.frame_rate_hz)

    def row(self, roi_id: Any) -> int:
        """Row index of the ROI with id ``roi_id``.

        Raises
        ------
        KeyError
            If no ROI has that id.
        """
        hits = np.flatnonzero(self.ids == int(roi_id))
        if hits.size == 0:
            raise KeyError(f"no ROI with id {roi_id!r} in this result")
        return int(hits[0])
