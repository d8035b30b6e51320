"""Synthetic recordings and traces with known ground truth (may use every stage).

Modules
-------
* :mod:`.recording` — two-photon movies with their truth: ``simulate_recording``,
  ``SyntheticRecording``, ``GroundTruth``;
* :mod:`.scene` — the building blocks: cell footprints, spikes, calcium, neuropil, motion;
* :mod:`.traces` — fluorescence traces with a drifting, known F0 (``simulate_drifting_traces``,
  for baselines and dF/F).
"""
