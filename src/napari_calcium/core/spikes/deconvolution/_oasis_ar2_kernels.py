"""Compiled OASIS AR(2) kernels (numba, CPU) behind :mod:`.oasis_ar2` and :mod:`.constrained`.

Written from the algorithm in Friedrich, Zhou & Paninski (2017), *PLoS Comput Biol* 13(3),
e1005423; no reference code was used. The model is ``c_t = g1 c_{t-1} + g2 c_{t-2} + s_t`` with
``c_0 = c_{-1} = 0``; ``h_k`` is its impulse response (``h_0 = 1``, ``h_1 = g1``,
``h_k = g1 h_{k-1} + g2 h_{k-2}``, ``h_{-1} = 0``), kept in ``hh[k + 1] = h_k``.

A *pool* is a run of frames ``t .. t + l - 1`` with a spike only at its first frame. With
``v = c_t`` (its value) and ``p = c_{t-1}`` (the last calcium of the pool before), the calcium
inside is ``c_{t+k} = v h_k + g2 p h_{k-1}``. A pool keeps ``Y0 = sum_k y_{t+k} h_k`` and
``Y1 = sum_k y_{t+k} h_{k-1}``; from ``h_{m+k} = h_m h_k + g2 h_{m-1} h_{k-1}`` two adjacent pools
merge in O(1). ``H0[l] = sum_{k<l} h_k^2`` and ``H01[l] = sum_{k<l} h_k h_{k-1}``.

Three steps per trace (``y`` already shifted by λ, see :mod:`.oasis_ar2`):

1. ``_greedy``: the paper's AR(2) OASIS: add frames as pools, fit ``v`` with ``p`` fixed, merge
   backwards while the spike at a pool start is below ``s_min``. Feasible, nearly optimal.
2. ``_dp``: the exact least-squares fit for a given set of pool starts. The pools form a chain
   (pool ``i`` sees pool ``i-1`` only through ``p_i``), so a scalar backward Riccati recursion
   ``V_i(p) = min_v cost_i(p, v) + V_{i+1}(h_{l-1} v + g2 h_{l-2} p)`` solves it in O(n_pools).
3. ``_polish``: a Lawson-Hanson active-set loop over pool starts, warm-started at the greedy
   solution: drop starts whose spike turns negative (convex step back to feasibility), add the
   frame with the most negative gradient ``(K^T (c - y))_t`` of each pool, until the KKT
   conditions hold. It makes the result exactly optimal (the greedy alone is not, for AR(2)).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__: list[str] = []

_N_FLOAT_WORK = 12
_N_INT_WORK = 3
_KKT_TOL = 1e-9
_LOOSE = 10
_MAX_OUTER = 500


@njit(nogil=True, cache=True)
def _tables(g1, g2, n, hh, H0, H01):  # pragma: no cover - compiled
    """Impulse response ``hh[k + 1] = h_k`` (k = -1..n) and the pool sums ``H0``, ``H01``."""
    hh[0] = 0.0
    hh[1] = 1.0
    for k in range(1, n + 1):
        x = g1 * hh[k] + g2 * hh[k - 1]
        if abs(x) < 1e-200:  # flush before denormals slow everything down
            x = 0.0
        hh[k + 1] = x
    H0[0] = 0.0
    H01[0] = 0.0
    for ln in range(1, n + 1):
        H0[ln] = H0[ln - 1] + hh[ln] * hh[ln]
        H01[ln] = H01[ln - 1] + hh[ln] * hh[ln - 1]


@njit(nogil=True, cache=True)
def _pool_end(v, p, ln, g2, hh):  # pragma: no cover - compiled
    """Last two calcium values of a pool (value ``v``, predecessor ``p``, length ``ln``)."""
    e1 = v * hh[ln] + g2 * p * hh[ln - 1]
    if ln == 1:
        return e1, p
    return e1, v * hh[ln - 1] + g2 * p * hh[ln - 2]


@njit(nogil=True, cache=True)
def _greedy(
    yp, n, g1, g2, smin, hh, H0, H01, st, sold, pv, pp, pq, y0, y1, pt, pl
):  # pragma: no cover
    """Paper-style AR(2) OASIS; writes pool starts ``st`` and their spikes ``sold`` (feasible)."""
    k = -1
    for t in range(n):
        yt = yp[t]
        k += 1
        pt[k] = t
        pl[k] = 1
        y0[k] = yt
        y1[k] = 0.0
        pv[k] = yt  # H0[1] = 1, H01[1] = 0
        if k == 0:
            pp[k] = 0.0
            pq[k] = 0.0
        else:
            v = pv[k - 1]
            if k == 1 and v < 0.0:
                v = 0.0  # c_1 >= 0
            pp[k], pq[k] = _pool_end(v, pp[k - 1], pl[k - 1], g2, hh)
        while k > 0:
            if pv[k] - g1 * pp[k] - g2 * pq[k] >= smin:
                break
            la = pl[k - 1]
            y0[k - 1] += hh[la + 1] * y0[k] + g2 * hh[la] * y1[k]
            y1[k - 1] += hh[la] * y0[k] + g2 * hh[la - 1] * y1[k]
            ln = la + pl[k]
            pl[k - 1] = ln
            k -= 1
            pv[k] = (y0[k] - g2 * pp[k] * H01[ln]) / H0[ln]
    for t in range(n):
        st[t] = False
        sold[t] = 0.0
    for i in range(k + 1):
        st[pt[i]] = True
        sold[pt[i]] = max(pv[i], 0.0) if i == 0 else pv[i] - g1 * pp[i] - g2 * pq[i]


@njit(nogil=True, cache=True)
def _build_pools(st, x, n, hh, pt, pl, y0, y1):  # pragma: no cover - compiled
    """Pools from the start flags ``st`` (``st[0]`` is always a start) and their sums of ``x``."""
    m = -1
    for t in range(n):
        if t == 0 or st[t]:
            m += 1
            pt[m] = t
            pl[m] = 0
            y0[m] = 0.0
            y1[m] = 0.0
        k = pl[m]
        y0[m] += x[t] * hh[k + 1]
        y1[m] += x[t] * hh[k]
        pl[m] = k + 1
    return m + 1


@njit(nogil=True, cache=True)
def _dp(m, pl, y0, y1, g1, g2, hh, H0, H01, mode, da, db, de, pv, pp, spk):  # pragma: no cover
    """Exact least squares for fixed pool starts; returns whether ``c_1`` was clipped to 0.

    ``mode`` 0: ``c_1 >= 0`` (clip), 1: ``c_1 = 0`` forced, 2: ``c_1`` free (linear map).
    Writes each pool's value ``pv``, predecessor ``pp`` and the spike ``spk`` at its start.
    """
    al = 0.0
    be = 0.0
    for i in range(m - 1, -1, -1):
        ln = pl[i]
        a = hh[ln]
        bb = g2 * hh[ln - 1]
        aa = H0[ln] + al * a * a
        b = g2 * H01[ln] + al * a * bb
        cc = g2 * g2 * H0[ln - 1] + al * bb * bb
        e = y0[i] - be * a
        f = g2 * y1[i] - be * bb
        da[i] = aa
        db[i] = b
        de[i] = e
        al = cc - b * b / aa
        be = b * e / aa - f
    v = de[0] / da[0]
    clipped = False
    if mode == 1 or (mode == 0 and v < 0.0):
        v = 0.0
        clipped = True
    p = 0.0
    q = 0.0
    for i in range(m):
        if i > 0:
            v = (de[i] - db[i] * p) / da[i]
        pv[i] = v
        pp[i] = p
        spk[i] = v - g1 * p - g2 * q
        p, q = _pool_end(v, p, pl[i], g2, hh)
    return clipped


@njit(nogil=True, cache=True)
def _fill_c(m, pt, pl, pv, pp, g2, hh, c):  # pragma: no cover - compiled
    """Calcium of every frame from the pools (any float array ``c``)."""
    for i in range(m):
        t0 = pt[i]
        v = pv[i]
        gp = g2 * pp[i]
        for k in range(pl[i]):
            c[t0 + k] = v * hh[k + 1] + gp * hh[k]


@njit(nogil=True, cache=True)
def _polish(yp, n, g1, g2, hh, H0, H01, st, sold, wf, wi, stats):  # pragma: no cover
    """Active set over pool starts from a feasible ``st``/``sold``; returns ``m``.

    On return the pools in ``wi``/``wf`` hold the optimum of ``min 1/2 ||yp - c||^2`` s.t.
    ``s >= 0`` (KKT up to a relative tolerance). The first ``_LOOSE`` rounds drop every negative
    spike at once (fast, not guaranteed); then strict Lawson-Hanson steps (convex step back to
    feasibility, one start dropped at a time), which cannot cycle. ``stats`` counts solves.
    """
    pt, pl, added = wi[0], wi[1], wi[2]
    y0, y1, da, db, de, pv, pp, spk, cw, gr = (
        wf[0],
        wf[1],
        wf[2],
        wf[3],
        wf[4],
        wf[5],
        wf[6],
        wf[7],
        wf[8],
        wf[9],
    )
    ymax = 0.0
    for t in range(n):
        ymax = max(ymax, abs(yp[t]))
    hsum = 0.0
    for k in range(1, n + 1):
        hsum += abs(hh[k])
    tol = _KKT_TOL * (ymax + 1e-300) * hsum
    single = False
    n_added = 0
    m = 0
    for outer in range(_MAX_OUTER):
        strict = outer >= _LOOSE
        while True:  # solve on the support; step back to feasibility while spikes go negative
            m = _build_pools(st, yp, n, hh, pt, pl, y0, y1)
            _dp(m, pl, y0, y1, g1, g2, hh, H0, H01, 0, da, db, de, pv, pp, spk)
            stats[0] += 1
            amin = 2.0
            imin = -1
            for i in range(1, m):
                z = spk[i]
                if z < 0.0:
                    so = sold[pt[i]]
                    a = so / (so - z)
                    if a < amin:
                        amin = a
                        imin = i
            if imin < 0:
                break
            if not strict:
                for i in range(1, m):
                    if spk[i] < 0.0:
                        st[pt[i]] = False
                continue
            for i in range(1, m):
                t0 = pt[i]
                snew = sold[t0] + amin * (spk[i] - sold[t0])
                if i == imin or snew <= 0.0:
                    st[t0] = False
                    sold[t0] = 0.0
                else:
                    sold[t0] = snew
            sold[0] = sold[0] + amin * (spk[0] - sold[0])
        if strict and n_added > 0:
            kept = 0
            for j in range(n_added):
                if st[added[j]]:
                    kept += 1
            single = kept == 0
        for i in range(m):
            sold[pt[i]] = spk[i]
        # KKT: gradient of the objective w.r.t. s, (K^T (c - yp))_t, must be >= 0 off the support
        _fill_c(m, pt, pl, pv, pp, g2, hh, cw)
        stats[1] += 1
        g_1 = 0.0
        g_2 = 0.0
        for t in range(n - 1, -1, -1):
            x = cw[t] - yp[t] + g1 * g_1 + g2 * g_2
            gr[t] = x
            g_2 = g_1
            g_1 = x
        n_added = 0
        best = -tol
        tbest = -1
        for i in range(m):
            t0 = pt[i]
            lo = -tol
            tlo = -1
            for t in range(t0 + 1, t0 + pl[i]):
                if gr[t] < lo:
                    lo = gr[t]
                    tlo = t
            if tlo >= 0:
                if lo < best:
                    best = lo
                    tbest = tlo
                added[n_added] = tlo
                n_added += 1
        if single and tbest >= 0:
            added[0] = tbest
            n_added = 1
        if n_added == 0:
            return m
        for j in range(n_added):
            st[added[j]] = True
            sold[added[j]] = 0.0
    return m


@njit(nogil=True, cache=True)
def _solve(
    yp, n, g1, g2, smin, hh, H0, H01, st, sold, wf, wi, stats
):  # pragma: no cover - compiled
    """Full AR(2) OASIS on shifted data ``yp``; returns ``m`` with the pools in ``wi``/``wf``."""
    _greedy(
        yp, n, g1, g2, smin, hh, H0, H01, st, sold, wf[5], wf[6], wf[7], wf[0], wf[1], wi[0], wi[1]
    )
    if smin <= 0.0:
        return _polish(yp, n, g1, g2, hh, H0, H01, st, sold, wf, wi, stats)
    # s_min > 0 (greedy, non-convex): keep the greedy support, refit it exactly and drop the
    # starts whose refitted spike falls below s_min, until none does.
    pt, pl = wi[0], wi[1]
    while True:
        m = _build_pools(st, yp, n, hh, pt, pl, wf[0], wf[1])
        _dp(m, pl, wf[0], wf[1], g1, g2, hh, H0, H01, 0, wf[2], wf[3], wf[4], wf[5], wf[6], wf[7])
        dropped = False
        for i in range(1, m):
            if wf[7][i] < smin:
                st[pt[i]] = False
                dropped = True
        if not dropped:
            return m


@njit(nogil=True, cache=True)
def _shift(y, r, lam, g1, g2, yp):  # pragma: no cover - compiled
    """``yp = y[r] - lam K^{-T} 1``; returns False if the row holds NaN or inf."""
    n = y.shape[1]
    for t in range(n):
        yt = np.float64(y[r, t])
        if yt - yt != 0.0:
            return False
        d = 1.0 - g1 - g2
        if t == n - 2:
            d = 1.0 - g1
        elif t == n - 1:
            d = 1.0
        yp[t] = yt - lam * d
    return True


@njit(nogil=True, cache=True)
def _write_row(m, wf, wi, g2, hh, c, s, r):  # pragma: no cover - compiled
    """Write the pools' calcium and spikes into row ``r`` of ``c`` and ``s``."""
    pt, pl = wi[0], wi[1]
    pv, pp, spk = wf[5], wf[6], wf[7]
    for i in range(m):
        t0 = pt[i]
        v = pv[i]
        gp = g2 * pp[i]
        s[r, t0] = spk[i]
        c[r, t0] = v
        for k in range(1, pl[i]):
            c[r, t0 + k] = v * hh[k + 1] + gp * hh[k]
            s[r, t0 + k] = 0.0


@njit(nogil=True, cache=True)
def _oasis_ar2_rows(y, g1, g2, lam, smin, c, s, bad, start, stop):  # pragma: no cover - compiled
    """OASIS AR(2) on rows ``start:stop`` of ``y``; writes ``c``, ``s`` and ``bad`` (non-finite)."""
    n = y.shape[1]
    hh = np.empty(n + 2, np.float64)
    H0 = np.empty(n + 1, np.float64)
    H01 = np.empty(n + 1, np.float64)
    yp = np.empty(n, np.float64)
    st = np.empty(n, np.bool_)
    sold = np.empty(n, np.float64)
    wf = np.empty((_N_FLOAT_WORK, n), np.float64)
    wi = np.empty((_N_INT_WORK, n), np.int64)
    stats = np.zeros(2, np.int64)
    for r in range(start, stop):
        if not _shift(y, r, lam[r], g1[r], g2[r], yp):
            bad[r] = True
            for t in range(n):
                c[r, t] = np.nan
                s[r, t] = np.nan
            continue
        _tables(g1[r], g2[r], n, hh, H0, H01)
        m = _solve(yp, n, g1[r], g2[r], smin[r], hh, H0, H01, st, sold, wf, wi, stats)
        _write_row(m, wf, wi, g2[r], hh, c, s, r)
