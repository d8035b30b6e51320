"""Stage 4, spikes: inference from traces, indicator kinetics, events, spectral analysis.

Modules
-------
* :mod:`.deconvolution` — ``deconvolve`` and its solvers (OASIS AR(1)/AR(2), noise-constrained,
  FISTA), kernels, kinetics, noise, calibrated activity and evaluation against ground truth;
* :mod:`.indicators` — calcium-indicator presets and the double-exponential response to one
  action potential: ``INDICATORS``;
* :mod:`.event_detection` — event onsets above a noise model with a set false-event rate:
  ``detect_events`` (the default of the pipeline and the Events widget), ``EventList``;
* :mod:`.events` — event onsets, firing rates, waveforms and rasters (CalSciPy):
  ``identify_events`` (CalSciPy's rule, also ``identify_events_calscipy``), ``event_counts``,
  ``calc_firing_rates``, ``generate_raster`` ...;
* :mod:`.spectral` — derivative events, instantaneous phase, multitaper spectrogram (ACE-neuro):
  ``derivative_events``, ``hilbert_phase``, ``multitaper_spectrogram``, ``Spectrogram``.

Imports the trace, ROI and movie stages and the shared infrastructure.
"""
