"""Calcium-indicator kinetics: the double-exponential response to one action potential.

The fluorescence transient that one spike at ``t = 0`` evokes is modelled as the difference of two
exponentials (rise and decay), the standard model behind AR(2) deconvolution and FISTA with a
double-exponential kernel.

References
----------
Pnevmatikakis, E. A. et al. (2016). Simultaneous denoising, deconvolution, and demixing of calcium
imaging data. *Neuron* 89(2), 285-299.
Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging data.
*PLoS Comput Biol* 13(3), e1005423.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import ParameterError

__all__ = [
    "INDICATORS",
    "IndicatorKinetics",
    "double_exponential",
    "get_indicator",
    "kernel_peak_time_s",
]


@dataclass(frozen=True)
class IndicatorKinetics:
    """Typical response of an indicator to one action potential.

    Attributes
    ----------
    name : str
        Indicator name, e.g. ``"GCaMP6f"``.
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants of the double-exponential kernel, in seconds.
    dff_per_spike : float
        Peak ΔF/F of the transient evoked by one spike (unitless).
    reference : str
        Where the values come from.
    """

    name: str
    tau_rise_s: float
    tau_decay_s: float
    dff_per_spike: float
    reference: str


#: Approximate in-vivo single-spike kinetics of common indicators (mouse cortex, ~room to body
#: temperature). They are typical values for simulation and starting points for deconvolution,
#: not constants of nature: fit τ on your own data when you can. jGCaMP8f and jGCaMP8s: τ = the
#: 1-AP half-rise and half-decay times in cultured neurons (Zhang et al. 2023: 7.1 / 67.4 ms and
#: 10.1 / 306.7 ms) divided by ln 2, and the 1-AP ΔF/F there (0.41, 1.11) scaled by the jGCaMP8m
#: preset's ratio of 0.30 to its culture value (0.76). On the shared jGCaMP8m ground truth the
#: decay in vivo is slower than the culture's (the decay of the average transient: 0.23 s,
#: against 0.17 s), so treat these as lower bounds.
INDICATORS: dict[str, IndicatorKinetics] = {
    k.name: k
    for k in (
        IndicatorKinetics("GCaMP6f", 0.05, 0.40, 0.20, "Chen et al. 2013, Nature 499:295"),
        IndicatorKinetics("GCaMP6m", 0.07, 0.80, 0.15, "Chen et al. 2013, Nature 499:295"),
        IndicatorKinetics("GCaMP6s", 0.10, 1.20, 0.25, "Chen et al. 2013, Nature 499:295"),
        IndicatorKinetics("jGCaMP7f", 0.04, 0.35, 0.25, "Dana et al. 2019, Nat Methods 16:649"),
        IndicatorKinetics("jGCaMP8f", 0.01, 0.10, 0.16, "Zhang et al. 2023, Nature 615:884"),
        IndicatorKinetics("jGCaMP8m", 0.01, 0.20, 0.30, "Zhang et al. 2023, Nature 615:884"),
        IndicatorKinetics("jGCaMP8s", 0.015, 0.44, 0.44, "Zhang et al. 2023, Nature 615:884"),
        IndicatorKinetics("OGB-1", 0.01, 0.70, 0.08, "Kerr et al. 2005, PNAS 102:14063"),
    )
}


def get_indicator(name: str) -> IndicatorKinetics:
    """Look up an indicator preset by name (case-insensitive).

    Raises
    ------
    ParameterError
        If the name is not one of :data:`INDICATORS`.
    """
    for key, value in INDICATORS.items():
        if key.lower() == str(name).lower():
            return value
    raise ParameterError(
        f"indicator={name!r} is not a known preset; choose one of {sorted(INDICATORS)} "
        "or give tau_rise_s and tau_decay_s explicitly"
    )


def _check_taus(tau_rise_s: float, tau_decay_s: float) -> None:
    if not (np.isfinite(tau_rise_s) and tau_rise_s > 0):
        raise ParameterError(f"tau_rise_s must be a positive number of seconds, got {tau_rise_s!r}")
    if not (np.isfinite(tau_decay_s) and tau_decay_s > tau_rise_s):
        raise ParameterError(
            f"tau_decay_s must be a number of seconds larger than tau_rise_s={tau_rise_s}, "
            f"got {tau_decay_s!r}"
        )


def kernel_peak_time_s(tau_rise_s: float, tau_decay_s: float) -> float:
    """Time (s) after the spike at which the double-exponential kernel peaks.

    Notes
    -----
    Setting the derivative of ``exp(-t/τd) - exp(-t/τr)`` to zero gives
    ``t* = τd τr ln(τd/τr) / (τd - τr)``.
    """
    _check_taus(tau_rise_s, tau_decay_s)
    return (
        tau_decay_s * tau_rise_s * math.log(tau_decay_s / tau_rise_s) / (tau_decay_s - tau_rise_s)
    )


def double_exponential(t_s: np.ndarray, tau_rise_s: float, tau_decay_s: float) -> np.ndarray:
    """The calcium kernel ``h(t)``, normalised to a peak of 1.

    Parameters
    ----------
    t_s : array_like
        Times after the spike, in seconds (any shape). ``h`` is 0 for ``t < 0``.
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants in seconds, ``0 < tau_rise_s < tau_decay_s``.

    Returns
    -------
    numpy.ndarray
        ``h(t) = (exp(-t/τd) - exp(-t/τr)) / h_peak`` for ``t >= 0``, same shape as ``t_s``,
        float64.

    Examples
    --------
    >>> h = double_exponential(np.array([-0.1, 0.0, 0.2]), 0.05, 0.4)
    >>> h[0], h[1], round(float(h[2]), 3)
    (0.0, 0.0, 0.831)
    """
    _check_taus(tau_rise_s, tau_decay_s)
    t = np.asarray(t_s, dtype=np.float64)
    t_peak = kernel_peak_time_s(tau_rise_s, tau_decay_s)
    peak = math.exp(-t_peak / tau_decay_s) - math.exp(-t_peak / tau_rise_s)
    tc = np.maximum(t, 0.0)
    h = (np.exp(-tc / tau_decay_s) - np.exp(-tc / tau_rise_s)) / peak
    return np.where(t >= 0, h, 0.0)
