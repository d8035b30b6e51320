"""Bruker PrairieView recordings: reading, the file-naming convention, lazy assembly, writing.

One module per concept; each imports only modules above it in this list (no import circle):

- :mod:`~napari_calcium.io.bruker.pvxml`: low-level PrairieView XML: root sniffing, tolerant
  streaming parse, numbers.
- :mod:`~napari_calcium.io.bruker.naming`: the file-naming convention,
  ``<name>_CycleNNNNN[_label]_ChK_NNNNNN.ome.tif``: parsing names and building them back.
- :mod:`~napari_calcium.io.bruker.series`: the main ``.xml`` and ``.env`` (or file names) of a
  folder as a :class:`~napari_calcium.io.bruker.series.BrukerSeries` (``scan_bruker_folder``).
- :mod:`~napari_calcium.io.bruker.stack`: lazy dask assembly of the frames (``open_bruker``,
  ``is_bruker_folder``).
- :mod:`~napari_calcium.io.bruker.write`: writing a movie as a PrairieView T-series folder
  (``write_prairieview``).
- :mod:`~napari_calcium.io.bruker.calscipy`: CalSciPy-compatible functions built on
  ``open_bruker``.

Public names (exposed as ``napari_calcium.<name>``):

- ``write_prairieview`` (:mod:`~napari_calcium.io.bruker.write`)
- ``determine_imaging_content``, ``generate_bruker_naming_convention``, ``load_bruker_tifs``
  (:mod:`~napari_calcium.io.bruker.calscipy`)

Nothing is imported here: import the modules themselves (``napari_calcium`` loads them lazily).
"""
