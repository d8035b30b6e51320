"""Spike inference: :func:`deconvolve` and its solvers, kinetics, noise and evaluation.

* :mod:`.api` — :func:`deconvolve` (baseline, noise, kinetics, solver, calibrated activity);
* :mod:`.oasis`, :mod:`.oasis_ar2`, :mod:`.constrained` — our OASIS (Friedrich et al. 2017):
  AR(1), AR(2), noise-constrained λ and baseline;
* :mod:`.fista` — FISTA with CaLab's double-exponential kernel (numpy or cupy);
* :mod:`.kinetics`, :mod:`.kernels`, :mod:`.noise` — τ ↔ AR coefficients, kernels, Lipschitz
  constant, noise σ from the power spectrum, τ from the autocovariance;
* :mod:`.activity` — baseline removal and the smoothing that turns ``s`` into a rate;
* :mod:`.evaluation` — the spikefinder metric and other scores against ground truth.
"""

from __future__ import annotations

from .api import DECONVOLUTION_METHODS, deconvolve
from .result import DeconvolutionResult

__all__ = ["DECONVOLUTION_METHODS", "DeconvolutionResult", "deconvolve"]
