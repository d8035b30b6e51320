"""Motion correction of movies: rigid now; piecewise-rigid (NoRMCorre) will land here too.

Modules, one concept each (this file imports none of them):

- :mod:`.rigid`: the rigid driver, :func:`motion_correct` and :func:`estimate_shifts`, and their
  results; re-exports the public names below.
- :mod:`.phase_correlation`: measuring shifts: taper, whitening, reference spectrum, peak search
  and subpixel refinement, and the :class:`Estimator` of checked estimation options.
- :mod:`.template`: the reference image: sampling the movie, seeding and iterating the template
  (:func:`build_template`).
- :mod:`.shifting`: applying shifts: interpolation (cubic, linear, Fourier), border filling,
  cropping, block by block or lazily on dask (:func:`apply_shifts`), and referring shifts to the
  median position (:func:`recentre_shifts`).

Imports run one way, ``rigid -> template -> shifting -> phase_correlation``; a module may also
import any module further right, never one to its left.

Public names (all importable from :mod:`.rigid` and from the top-level ``napari_calcium``):
:class:`MotionCorrectionResult`, :class:`ShiftEstimate`, :func:`motion_correct`,
:func:`estimate_shifts`, :func:`build_template`, :func:`apply_shifts`, :func:`recentre_shifts`.
"""
