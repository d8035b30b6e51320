"""Stage 3, traces ``(n_rois, n_frames)``: extraction, baselines, dF/F, processing, trial tensors.

Modules
-------
* :mod:`.extraction` (+ :mod:`._extraction_kernels`) — weighted-mask traces with neuropil
  correction, in one pass over the movie: ``extract_traces``, ``TraceSet``, ``RoiTraces``,
  ``estimate_neuropil_coefficients``;
* :mod:`.baseline` (+ :mod:`._baseline_kernels`) — F0 estimators: ``baseline_robust``,
  ``baseline_sliding_percentile``, ``baseline_maximin``, ``baseline_percentile``,
  ``baseline_calscipy``;
* :mod:`.dff` — dF/F and dF/√F, standardized noise, SNR: ``compute_dff``, ``DffResult``,
  ``DFF_METHODS``, ``standardized_noise``, ``snr``, ``DegenerateTraceWarning`` (rows flagged
  instead of silent NaN/inf);
* :mod:`.processing` (+ :mod:`._processing_kernels`) — polynomial detrend, Perona-Malik,
  band-pass, smoothing: ``detrend_polynomial``, ``perona_malik``, ``bandpass``,
  ``bandpass_kernel``, ``kernel_band_hz``, ``smooth``;
* :mod:`.reorganize` — traces as trial tensors and back: ``generate_tensor``, ``merge_tensor``,
  ``merge_factorized_matrices``.

Imports the ROI and movie stages and the shared infrastructure.
"""
