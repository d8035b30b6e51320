"""Stage 1, the movie ``(frames, y, x)``: filtering, summary images, motion, reshaping, detrending.

Modules
-------
* :mod:`.filters` (+ :mod:`._filter_kernels`, numba and array-API twins) — median, gaussian and
  uniform filters, spatial or spatio-temporal, blockwise: ``median_filter``, ``gaussian_filter``,
  ``uniform_filter``;
* :mod:`.projections` — mean/max/min/median/std/range over time: ``project``, ``projections``;
* :mod:`.summary_images` — local correlation and peak-to-noise ratio (CNMF-E seed images):
  ``correlation_image``, ``pnr_image``, ``correlation_pnr``, ``CorrelationPNR``;
* :mod:`.motion` — motion correction (rigid phase correlation; piecewise-rigid lands here):
  ``motion_correct``, ``estimate_shifts``, ``build_template``, ``apply_shifts``,
  ``recentre_shifts``, ``MotionCorrectionResult``, ``ShiftEstimate``;
* :mod:`.reshape` — temporal and spatial binning, cropping: ``bin_frames``, ``bin_pixels``,
  ``crop``, ``Cropped``;
* :mod:`.detrend` — slow trends of a movie: ``detrend``, ``debleach``, ``Debleached``,
  ``movie_dff``.

Imports only the shared infrastructure of :mod:`napari_calcium.core`.
"""
