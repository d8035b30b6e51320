"""Motion correction of movies: rigid, and piecewise-rigid (NoRMCorre).

Modules, one concept each (this file imports none of them):

- :mod:`.rigid`: the driver, :func:`motion_correct` (rigid, or piecewise with
  ``piecewise=True``) and :func:`estimate_shifts`, and their results; re-exports the public names
  below.
- :mod:`.piecewise`: the piecewise-rigid pass (Pnevmatikakis & Giovannucci 2017): the patch grid,
  per-patch shifts within a maximum deviation of the rigid ones, outlier replacement, the smooth
  dense shift field and its application (:func:`~.piecewise.apply_patch_shifts`).
- :mod:`.phase_correlation`: measuring shifts: taper, whitening, reference spectrum, peak search
  and subpixel refinement, and the :class:`Estimator` of checked estimation options.
- :mod:`.template`: the reference image: sampling the movie, seeding and iterating the template
  (:func:`build_template`).
- :mod:`.shifting`: applying shifts: interpolation (cubic, linear, Fourier), border filling,
  cropping, block by block or lazily on dask (:func:`apply_shifts`), and referring shifts to the
  median position (:func:`recentre_shifts`).

Imports run one way, ``rigid -> piecewise -> template -> shifting -> phase_correlation``; a
module may also import any module further right, never one to its left.

Public names (all importable from :mod:`.rigid` and from the top-level ``napari_calcium``):
:class:`MotionCorrectionResult`, :class:`ShiftEstimate`, :func:`motion_correct`,
:func:`estimate_shifts`, :func:`build_template`, :func:`apply_shifts`, :func:`recentre_shifts`.
"""
