"""Automatic ROI detection: somata from activity (correlation x PNR) and anatomy (mean-image blobs).

Modules, in the order detection uses them
-----------------------------------------
* :mod:`.binned_store` — the temporally binned movie under a memory budget (in RAM, or spilled
  to a temporary file);
* :mod:`.maps` — band-passed frames, the activity and anatomy maps, the cell-size estimate;
* :mod:`.rings` — ring-shaped somata (nuclear exclusion): nuclear-shadow map and soma size;
* :mod:`.growth` — seeds, seeded growth of each candidate, de-duplication;
* :mod:`.evidence` — significance tests against noise, merging, the recording check;
* :mod:`.detect` — the entry points: ``detect_rois``, ``estimate_cell_diameter``.
"""
