"""Stage 2, regions of interest: the ROI set, its formats, detection, masks, quality, sessions.

Modules
-------
* :mod:`.roiset` — ``RoiSet``: sparse weighted masks ``(n_rois, y*x)`` plus a per-ROI table,
  the one source of truth for ROIs;
* :mod:`.formats` — shapes, contours, suite2p ``stat`` and neurofinder regions decoded to pixel
  lists and encoded from a ROI set (``RoiSet.from_shapes`` ... use it; it never imports
  :mod:`.roiset`);
* :mod:`.detection` — automatic detection from activity and anatomy: ``detect_rois``,
  ``estimate_cell_diameter``;
* :mod:`.neuropil` (+ :mod:`._neuropil_kernels`) — cell and neuropil masks for extraction:
  ``cell_masks``, ``neuropil_masks``, ``extraction_masks``, ``ExtractionMasks``,
  ``cell_pixel_map``, ``neuropil_label_preview``, ``neuropil_coverage``;
* :mod:`.quality` — per-ROI quality scores and filtering: ``evaluate_rois``, ``filter_rois``;
* :mod:`.matching` — one-to-one matching of two ROI sets: ``match_rois``, ``detection_scores``,
  ``iou_matrix``, ``centroid_distances``, ``RoiMatch``, ``DetectionScores``;
* :mod:`.sessions` — ROIs across imaging sessions: ``register_rois``, ``register_multisession``,
  ``shift_rois``, ``estimate_fov_shift``, ``SessionMatch``, ``MultiSessionMatch``.

Imports the movie stage (:mod:`napari_calcium.core.movie`) and the shared infrastructure.
"""
