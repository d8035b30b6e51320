"""Spike inference: OASIS (own numba implementation, Friedrich et al. 2017) and AR kinetics."""

from __future__ import annotations

from .kinetics import ar1_to_tau, estimate_ar1, tau_to_ar1
from .oasis import oasis_ar1, oasis_ar1_batch

__all__ = ["ar1_to_tau", "estimate_ar1", "oasis_ar1", "oasis_ar1_batch", "tau_to_ar1"]
