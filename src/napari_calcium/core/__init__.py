"""The numeric core: numpy / scipy / numba, CuPy through :mod:`._backend`; no IO, no napari, no Qt.

Organised by stage of the analysis, each stage a subpackage that may import the earlier stages and
the shared infrastructure, never a later stage (an import-linter contract in ``pyproject.toml``):

1. :mod:`.movie` — the movie ``(frames, y, x)``: filters, projections and summary images, motion
   correction, reshaping, movie detrending;
2. :mod:`.rois` — regions of interest: :class:`~.rois.roiset.RoiSet` and its formats, detection,
   neuropil and cell masks, quality, matching and sessions;
3. :mod:`.traces` — traces ``(n_rois, n_frames)``: extraction, baselines, dF/F, trace processing,
   trial tensors;
4. :mod:`.spikes` — spike inference (deconvolution), indicator kinetics, events, spectral analysis;
5. :mod:`.synthetic` — the ground-truth generator (it may use every stage).

Shared infrastructure, importable by every stage and importing none:

* :mod:`._backend` — the array module of the data (numpy or cupy), ndimage/fft/signal for it,
  ``to_host``, device selection;
* :mod:`.chunking` — frame-block iteration over numpy, memmap, dask and device arrays, progress and
  cancellation hooks;
* :mod:`._threads` — spreading a serial ``nogil`` numba kernel over threads;
* :mod:`._validate` — argument checks shared by the stages.

Every public name is exported lazily from the top-level package (``napari_calcium.<name>``);
``docs/architecture.md`` has a table "where to find X".
"""
