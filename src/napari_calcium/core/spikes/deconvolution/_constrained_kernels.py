"""Compiled noise-constrained OASIS (λ and baseline search) behind :mod:`.constrained`.

Written from Friedrich, Zhou & Paninski (2017), *PLoS Comput Biol* 13(3), e1005423 (section on
hyperparameter optimisation); no reference code was used. Each trace is solved by the exact AR(2)
OASIS of :mod:`._oasis_ar2_kernels` (AR(1) is ``g2 = 0``).

For a fixed set of spike times the solution is affine in (λ, b): ``c(λ', b') = c - (λ'-λ) c_d
- (b'-b) c_1`` with ``c_d``, ``c_1`` the least-squares fits (same support) of ``D^T 1`` (the λ
shift) and of a constant. So the residual ``y - b' - c'`` is affine in ``u = λ' - λ`` once the
baseline is tied to it by ``mean(y - b' - c') = 0``; the squared norm is a quadratic in ``u``
whose root gives the next λ exactly for that support. Re-solving and repeating stops when λ and
b no longer move (the support is stable); it takes a handful of passes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._oasis_ar2_kernels import (
    _N_FLOAT_WORK,
    _N_INT_WORK,
    _dp,
    _fill_c,
    _polish,
    _solve,
    _tables,
)

__all__: list[str] = []

_MAX_ITER = 60


@njit(nogil=True, cache=True)
def _shift_sums(m, pt, pl, n, g1, g2, hh, y0d, y1d, y0o, y1o):  # pragma: no cover - compiled
    """Pool sums of the constant 1 (``y0o``, ``y1o``) and of the λ shift ``D^T 1`` (``y0d``...)."""
    dc = 1.0 - g1 - g2
    for i in range(m):
        s0 = 0.0
        s1 = 0.0
        for k in range(pl[i]):  # O(n) in all; cheap next to the solve
            s0 += hh[k + 1]
            s1 += hh[k]
        y0o[i] = s0
        y1o[i] = s1
        y0d[i] = dc * s0
        y1d[i] = dc * s1
    # D^T 1 = dc everywhere but (1 - g1) at n-2 and 1 at n-1: add the differences
    for j, extra in ((n - 2, g2), (n - 1, g1 + g2)):
        if j < 0:
            continue
        i = m - 1
        while pt[i] > j:
            i -= 1
        k = j - pt[i]
        y0d[i] += extra * hh[k + 1]
        y1d[i] += extra * hh[k]


@njit(nogil=True, cache=True)
def _min_running_mean(x, n, w):  # pragma: no cover - compiled
    """Minimum of the ``w``-frame running mean of ``x`` (a low first guess of the baseline)."""
    w = max(1, min(w, n))
    acc = 0.0
    for t in range(w):
        acc += x[t]
    best = acc
    for t in range(w, n):
        acc += x[t] - x[t - w]
        best = min(best, acc)
    return best / w


@njit(nogil=True, cache=True)
def _constrained_rows(
    y, g1, g2, sigma, estimate, bfix, smin, c, s, b_out, lam_out, rss_out, conv, bad, start, stop
):  # pragma: no cover - compiled
    """Noise-constrained OASIS on rows ``start:stop``; writes c, s, b, λ, RSS, converged, bad."""
    n = y.shape[1]
    hh = np.empty(n + 2, np.float64)
    H0 = np.empty(n + 1, np.float64)
    H01 = np.empty(n + 1, np.float64)
    yr = np.empty(n, np.float64)
    yp = np.empty(n, np.float64)
    st = np.empty(n, np.bool_)
    sold = np.empty(n, np.float64)
    wf = np.empty((_N_FLOAT_WORK, n), np.float64)
    wi = np.empty((_N_INT_WORK, n), np.int64)
    aff = np.empty((8, n), np.float64)
    stats = np.zeros(2, np.int64)
    cc, cd, c1 = aff[0], aff[1], aff[2]
    y0d, y1d, y0o, y1o = aff[3], aff[4], aff[5], aff[6]
    pt, pl = wi[0], wi[1]
    for r in range(start, stop):
        ok = True
        for t in range(n):
            x = np.float64(y[r, t])
            if x - x != 0.0:
                ok = False
                break
            yr[t] = x
        if not ok:
            bad[r] = True
            for t in range(n):
                c[r, t] = np.nan
                s[r, t] = np.nan
            b_out[r] = np.nan
            lam_out[r] = np.nan
            rss_out[r] = np.nan
            continue
        a1, a2 = g1[r], g2[r]
        _tables(a1, a2, n, hh, H0, H01)
        target = sigma[r] * sigma[r] * n
        dc = 1.0 - a1 - a2
        if estimate:
            # low first guess: lowest mean over ~ one decay time, at least 10 frames
            w = 10
            for k in range(10, n + 1):
                if hh[k + 1] < 0.37 * hh[1] and hh[k + 1] <= hh[k]:
                    w = k
                    break
            b = _min_running_mean(yr, n, w)
        else:
            b = bfix[r]
        lam = 0.0
        m = 0
        rss = 0.0
        done = False
        lam_used = 0.0
        b_used = b
        for it in range(_MAX_ITER):
            lam_used = lam
            b_used = b
            for t in range(n):
                d = dc
                if t == n - 2:
                    d = 1.0 - a1
                elif t == n - 1:
                    d = 1.0
                yp[t] = yr[t] - b - lam * d
            if it > 0 and smin[r] <= 0.0:  # warm start from the last (feasible) solution
                m = _polish(yp, n, a1, a2, hh, H0, H01, st, sold, wf, wi, stats)
            else:
                m = _solve(yp, n, a1, a2, smin[r], hh, H0, H01, st, sold, wf, wi, stats)
            _fill_c(m, pt, pl, wf[5], wf[6], a2, hh, cc)
            mode = 1 if wf[5][0] <= 0.0 else 2  # c_1 held at 0, or free
            _shift_sums(m, pt, pl, n, a1, a2, hh, y0d, y1d, y0o, y1o)
            # fits of D^T 1 and of 1 on this support (wf[8:12] as scratch: A, B, E, v/p)
            _dp(
                m,
                pl,
                y0d,
                y1d,
                a1,
                a2,
                hh,
                H0,
                H01,
                mode,
                wf[8],
                wf[9],
                wf[10],
                wf[11],
                aff[7],
                wf[10],
            )
            _fill_c(m, pt, pl, wf[11], aff[7], a2, hh, cd)
            _dp(
                m,
                pl,
                y0o,
                y1o,
                a1,
                a2,
                hh,
                H0,
                H01,
                mode,
                wf[8],
                wf[9],
                wf[10],
                wf[11],
                aff[7],
                wf[10],
            )
            _fill_c(m, pt, pl, wf[11], aff[7], a2, hh, c1)
            # residual r = y - b - c; next residual r + u c_d - w (1 - c_1), u = Δλ, w = Δb
            sr = 0.0
            sd = 0.0
            s1 = 0.0
            rss = 0.0
            for t in range(n):
                rt = yr[t] - b - cc[t]
                sr += rt
                sd += cd[t]
                s1 += c1[t]
                rss += rt * rt
            om0 = 0.0
            om1 = 0.0
            den = n - s1
            if estimate and den > 1e-6 * n:
                om0 = sr / den
                om1 = sd / den
            q00 = 0.0
            q01 = 0.0
            q11 = 0.0
            for t in range(n):
                e = 1.0 - c1[t]
                r0 = yr[t] - b - cc[t] - om0 * e
                r1 = cd[t] - om1 * e
                q00 += r0 * r0
                q01 += r0 * r1
                q11 += r1 * r1
            if q11 <= 0.0:
                u = 0.0
            else:
                disc = q01 * q01 - q11 * (q00 - target)
                # below this support's reach (disc < 0): go to its minimum
                u = -q01 / q11 if disc < 0.0 else (-q01 + np.sqrt(disc)) / q11
            if lam + u < 0.0:
                u = -lam
            wb = om0 + om1 * u
            if abs(u) <= 1e-7 * (lam + sigma[r]) and abs(wb) <= 1e-7 * sigma[r]:
                done = True
                break
            lam += u
            b += wb
        for i in range(m):  # c and s of the last solve (at the returned λ, b)
            t0 = pt[i]
            s[r, t0] = wf[7][i]
            for k in range(pl[i]):
                c[r, t0 + k] = cc[t0 + k]
                if k > 0:
                    s[r, t0 + k] = 0.0
        b_out[r] = b_used
        lam_out[r] = lam_used
        rss_out[r] = rss
        conv[r] = done
