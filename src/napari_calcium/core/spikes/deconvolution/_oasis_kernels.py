"""Compiled OASIS kernels (numba, CPU) behind :mod:`napari_calcium.core.spikes.deconvolution.oasis`.

Written from the algorithm in Friedrich, Zhou & Paninski (2017), *PLoS Comput Biol* 13(3),
e1005423 (the pool-adjacent-violators view of AR(1) deconvolution); no reference code was used.

``_oasis_ar1_rows`` is a serial ``nogil`` kernel over rows ``start:stop``;
:func:`napari_calcium.core._threads.in_threads` spreads it over cores. A pool ``i`` holds

* ``v`` - its fitted value (the calcium at its first frame),
* ``w`` - its weight ``sum_k g^(2k)`` over its frames,
* ``t`` - its first frame, ``l`` - its length, and ``gl = g^l`` (kept to avoid ``pow``).

Inside a pool the calcium decays as ``c[t + k] = v g^k``, so ``v`` is the least-squares fit
``sum_k y[t+k] g^k / w``. Merging pool ``b`` into its predecessor ``a`` gives
``w = w_a + g^(2 l_a) w_b`` and ``v = (w_a v_a + g^(l_a) w_b v_b) / w``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__: list[str] = []


@njit(nogil=True, cache=True)
def _oasis_ar1_rows(y, g, lam, smin, c, s, bad, start, stop):  # pragma: no cover - compiled
    """OASIS AR(1) on rows ``start:stop`` of ``y``; writes ``c``, ``s`` and ``bad`` (non-finite)."""
    n = y.shape[1]
    pv = np.empty(n, np.float64)
    pw = np.empty(n, np.float64)
    pgl = np.empty(n, np.float64)
    pt = np.empty(n, np.int64)
    pl = np.empty(n, np.int64)
    for r in range(start, stop):
        gr = g[r]
        shift = lam[r] * (1.0 - gr)  # y_t - lam (1 - g) for t < T ...
        last_shift = lam[r]  # ... and y_T - lam for the last frame (see oasis.py Notes)
        sm = smin[r]
        k = -1
        ok = True
        for t in range(n):
            yt = np.float64(y[r, t])
            if yt - yt != 0.0:  # NaN or inf (cheaper than isfinite)
                ok = False
                break
            k += 1
            pv[k] = yt - (last_shift if t == n - 1 else shift)
            pw[k] = 1.0
            pt[k] = t
            pl[k] = 1
            pgl[k] = gr
            # Merge backwards while the spike at the boundary would fall below s_min (0 by
            # default): v_k < g^(l_{k-1}) v_{k-1} + s_min. The first pool's value is bounded
            # below by 0 (c_1 >= 0), so it counts as max(v, 0) in the test.
            while k > 0:
                prev = pv[k - 1]
                if k == 1 and prev < 0.0:
                    prev = 0.0
                a = pgl[k - 1]
                if pv[k] >= a * prev + sm:
                    break
                wb = a * a * pw[k]
                nw = pw[k - 1] + wb
                pv[k - 1] = (pw[k - 1] * pv[k - 1] + a * pw[k] * pv[k]) / nw
                pw[k - 1] = nw
                pl[k - 1] += pl[k]
                pgl[k - 1] = a * pgl[k]
                k -= 1
        if not ok:
            bad[r] = True
            for t in range(n):
                c[r, t] = np.nan
                s[r, t] = np.nan
            continue
        cprev = 0.0
        for i in range(k + 1):
            v = pv[i]
            if i == 0 and v < 0.0:
                v = 0.0
            t0 = pt[i]
            s[r, t0] = v - gr * cprev
            cc = v
            c[r, t0] = cc
            for t in range(t0 + 1, t0 + pl[i]):
                cc *= gr
                c[r, t] = cc
                s[r, t] = 0.0
            cprev = cc
