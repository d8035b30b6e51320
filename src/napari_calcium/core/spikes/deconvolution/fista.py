"""FISTA deconvolution with a double-exponential kernel (one implementation for numpy and cupy).

Solves, for every ROI independently,

    min_{s >= 0, beta}  1/2 ||y - K s - beta||^2 + lam · G · sum(s)

where ``K`` is the causal convolution with the peak-normalised double-exponential kernel of
:func:`~napari_calcium.core.spikes.deconvolution.kernels.build_kernel`, ``G = sum(kernel)`` its DC
gain and ``beta`` an optional constant baseline (unpenalised). The weighting ``lam · G`` is CaLab's:
since ``G · sum(s) ≈ sum(K s)``, the penalty is ``lam`` times the total reconstructed calcium, so
``lam`` is in the units of the trace (e.g. ΔF/F) and keeps its meaning across kernels and frame
rates.

The iterations (:func:`fista_rows`) are written once for numpy and cupy (``xp`` picked from the
data); :func:`fista_deconvolve` validates the inputs, splits rows into blocks (threads on the CPU,
one block on the GPU) and calls them. The convolutions are *blocked* (:class:`BlockedKernel`): a
trace of ``n`` frames is laid out as ``(n_blocks, B)``; inside a block the kernel is a ``B x B``
triangular Toeplitz matrix (one matmul for all blocks), and what earlier blocks leave behind is
carried by the kernel's two geometric modes ``d^n`` and ``r^n`` (``h[n] = A (d^n - r^n)``): two
numbers per block, accumulated by a tiny recursion over the blocks. Matmuls are much faster than
the serial ``lfilter`` recursion on both backends.

References
----------
Beck, A. & Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm for linear inverse
problems. *SIAM J. Imaging Sci.* 2(1), 183-202.
O'Donoghue, B. & Candès, E. (2015). Adaptive restart for accelerated gradient schemes. *Found.
Comput. Math.* 15(3), 715-732.
Vogelstein, J. T. et al. (2010). Fast nonnegative deconvolution for spike train inference from
population calcium imaging. *J. Neurophysiol.* 104(6), 3691-3704.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ....errors import ParameterError, ShapeError
from ..._backend import array_module, signal_module
from .kernels import kernel_iir, tau_to_ar2

__all__ = ["BLOCK_FRAMES", "BlockedKernel", "FistaResult", "fista_deconvolve", "fista_rows"]

# Convergence is only declared after this many iterations (FISTA's first steps are erratic).
_MIN_ITER = 5
# Frames per block of the blocked convolution.
BLOCK_FRAMES = 32
# Blocks per matrix product: keeps each product below OpenBLAS's threading threshold (M*N*K <=
# 262144), so products issued from our row threads do not oversubscribe the cores (~2x slower).
_GEMM_BLOCKS = 192


class BlockedKernel:
    """Causal convolution with ``h[n] = amp (d^n - r^n)`` and its adjoint, on blocked arrays.

    Parameters
    ----------
    xp : module
        numpy or cupy.
    dtype : dtype
        Working dtype (float32 or float64).
    amp, d, r : float
        Kernel amplitude and per-frame decay / rise factors (``0 <= r < d < 1``).
    scale_t : float
        Factor applied to the adjoint (the step size, so that it returns ``step K^T x``).
    block : int
        Frames per block ``B``.

    Notes
    -----
    Arrays have shape ``(n_rows, n_blocks, B)`` (a trace padded to a multiple of ``B``). The
    forward carry into block ``k`` is ``amp (d^(i+1) U_(k-1) - r^(i+1) V_(k-1))`` with ``U_k`` the
    ``d``-mode state at the last frame of block ``k``; the adjoint runs the same idea backwards.
    A third carry column adds a per-row constant (the proximal step's ``lam * step``) for free.
    """

    def __init__(
        self, xp: Any, dtype: Any, amp: float, d: float, r: float, scale_t: float, block: int
    ) -> None:
        i = np.arange(block, dtype=np.float64)
        lag = i[:, None] - i[None, :]  # T[i, j] = h(i - j), lower triangular
        toep = np.where(lag >= 0, amp * (d ** np.abs(lag) - r ** np.abs(lag)), 0.0)
        # forward: c_block = s_block @ T^T; block-end mode sums e = s_block @ [d^(B-1-j), r^(B-1-j)]
        tail = block - 1 - i
        fwd = np.concatenate([toep.T, (d**tail)[:, None], (r**tail)[:, None]], 1)
        # adjoint: g_block = x_block @ T (scaled); block-start mode sums x_block @ [d^j, r^j]
        adj = np.concatenate([scale_t * toep, (d**i)[:, None], (r**i)[:, None]], 1)
        carry_f = np.stack([amp * d ** (i + 1), -amp * r ** (i + 1), np.ones(block)])
        carry_t = np.stack([scale_t * amp * d ** (block - i), -scale_t * amp * r ** (block - i)])
        carry_t = np.concatenate([carry_t, np.ones((1, block))])
        self.xp, self.block, self.dtype = xp, block, dtype
        self.fwd, self.adj = (xp.asarray(m, dtype=dtype) for m in (fwd, adj))
        self.carry_f, self.carry_t = (xp.asarray(m, dtype=dtype) for m in (carry_f, carry_t))
        self.decay = (float(d) ** block, float(r) ** block)
        self.lfilter = signal_module(xp).lfilter

    def n_blocks(self, n_frames: int) -> int:
        """Number of blocks for `n_frames`, padded so that the products split evenly."""
        nb = -(-n_frames // self.block)
        parts = -(-nb // _GEMM_BLOCKS)
        return parts * -(-nb // parts)

    def _product(self, x: Any, mat: Any) -> Any:
        """``x @ mat`` over the blocks, issued as products of at most ~:data:`_GEMM_BLOCKS` rows."""
        n_rows, nb, b = x.shape
        chunk = nb // -(-nb // _GEMM_BLOCKS)
        return (x.reshape(-1, chunk, b) @ mat).reshape(n_rows, nb, mat.shape[1])

    def _scan(self, e: Any, reverse: bool, bias: Any) -> Any:
        """Carry states ``(n_rows, n_blocks, 3)``: mode states of the neighbouring block, bias."""
        xp = self.xp
        n_rows, n_blocks = e.shape[:2]
        out = xp.zeros((n_rows, n_blocks, 3), dtype=self.dtype)
        if bias is not None:
            out[..., 2] = bias
        if n_blocks == 1:
            return out
        for m, g in enumerate(self.decay):
            x = e[..., m][:, ::-1] if reverse else e[..., m]
            acc = self.lfilter(
                xp.asarray([1.0], dtype=self.dtype), xp.asarray([1.0, -g], dtype=self.dtype), x
            )
            if reverse:
                out[:, :-1, m] = acc[:, ::-1][:, 1:]
            else:
                out[:, 1:, m] = acc[:, :-1]
        return out

    def forward(self, s: Any, bias: Any = None) -> Any:
        """``K s + bias`` as a (strided) view of shape ``s.shape``; `bias` is ``(n_rows, 1)``."""
        out = self._product(s, self.fwd)
        b = self.block
        c = out[..., :b]
        c += self._scan(out[..., b:], False, bias) @ self.carry_f
        return c

    def adjoint(self, x: Any, bias: Any = None) -> Any:
        """``scale_t K^T x + bias`` as a (strided) view of shape ``x.shape``."""
        out = self._product(x, self.adj)
        b = self.block
        g = out[..., :b]
        g += self._scan(out[..., b:], True, bias) @ self.carry_t
        return g


def fista_rows(
    y: Any,
    kernel: BlockedKernel,
    lam_eff: Any,
    step: float,
    n_iter: int,
    tol: float,
    baseline: bool,
) -> tuple[Any, Any, Any, Any, Any]:
    """Solve ``min_{s>=0, beta} 1/2 ||y - K s - beta||^2 + lam_eff sum(s)`` for each row of `y`.

    Parameters
    ----------
    y : array, shape (n_rows, n_frames), float32 or float64
        Traces (numpy or cupy; the work stays on that backend and in that dtype).
    kernel : BlockedKernel
        The kernel, with ``scale_t = step``, on the backend and dtype of `y`.
    lam_eff : array, shape (n_rows, 1)
        Penalty weight per row (already multiplied by the kernel DC gain).
    step : float
        ``1 / L`` with ``L >= ||K||_2^2``.
    n_iter : int
        Maximum number of iterations.
    tol : float
        A row has converged when the relative change of its objective between two iterations
        falls below `tol` (after :data:`_MIN_ITER` iterations). The block stops when all rows have.
    baseline : bool
        Fit a constant per row (it is eliminated: ``beta = mean(y - K s)`` is its exact minimiser).

    Returns
    -------
    s, c, beta, n_run, converged
        Activity and calcium ``K s`` (shape of `y`), baseline ``(n_rows,)`` (zeros without
        `baseline`), iterations run per row (``int64``) and the convergence flags (``bool``).

    Notes
    -----
    With the baseline eliminated the smooth part is ``f(s) = 1/2 ||P (K s - y)||^2`` (``P``
    removes the row mean) with gradient ``K^T P (K s - y)`` and Lipschitz constant ``<= ||K||^2``.
    The iteration keeps the centred residual ``r = P (K s - y)``; the residual at the momentum
    point ``z`` is the same combination of ``r_k`` and ``r_(k-1)`` as ``z`` itself, so each
    iteration applies ``K`` and ``K^T`` once. The objective ``1/2 ||r||^2 + lam sum(s)`` comes for
    free and drives the per-row function-value restart of O'Donoghue & Candès (2015).
    """
    xp = array_module(y)
    dt = y.dtype
    n_rows, n = y.shape
    bsz = kernel.block
    n_blocks = kernel.n_blocks(n)
    n_pad = n_blocks * bsz
    shape = (n_rows, n_blocks, bsz)

    yb = xp.zeros(shape, dtype=dt)
    yb.reshape(n_rows, n_pad)[:, :n] = y
    ones = xp.ones(bsz, dtype=dt)

    def row_sum(x: Any) -> Any:  # float32 sums of a block, float64 over blocks
        return xp.sum(x @ ones, axis=-1, dtype=xp.float64)

    def residual(c: Any, out: Any) -> Any:
        """Centred residual ``P (c - y)`` into `out` (padding zero); returns ``1/2 ||r||^2``."""
        xp.subtract(c, yb, out=out)
        flat = out.reshape(n_rows, n_pad)
        flat[:, n:] = 0
        if baseline:
            out -= (row_sum(out) / n).astype(dt)[:, None, None]
            flat[:, n:] = 0
        return 0.5 * xp.sum(xp.einsum("rkb,rkb->rk", out, out), axis=-1, dtype=xp.float64)

    lam_step = xp.asarray(lam_eff * step, dtype=dt)  # (n_rows, 1)
    lam64 = xp.asarray(lam_eff[:, 0], dtype=xp.float64)
    s = xp.zeros(shape, dtype=dt)
    s_old = xp.zeros(shape, dtype=dt)
    r = xp.empty(shape, dtype=dt)
    r_old = xp.empty(shape, dtype=dt)
    residual(xp.zeros(shape, dtype=dt), r)
    r_old[...] = r
    mom = xp.zeros((n_rows, 1, 1), dtype=dt)
    t = xp.ones(n_rows, dtype=xp.float64)
    f_old = xp.full(n_rows, xp.inf, dtype=xp.float64)
    n_run = xp.full(n_rows, n_iter, dtype=xp.int64)
    done = xp.zeros(n_rows, dtype=bool)
    for k in range(1, n_iter + 1):
        # momentum point: z = s + mom (s - s_old) in s_old, its residual likewise in r_old
        for cur, old in ((s, s_old), (r, r_old)):
            xp.subtract(cur, old, out=old)
            old *= mom
            old += cur
        # proximal step: s_new = max(z - step (K^T r_z + lam), 0), written over the gradient
        grad = kernel.adjoint(r_old, lam_step)
        xp.subtract(s_old, grad, out=s_old)
        s_new = xp.maximum(s_old, 0, out=s_old)
        f_new = residual(kernel.forward(s_new), r_old) + lam64 * row_sum(s_new)
        s, s_old, r, r_old = s_new, s, r_old, r
        # FISTA momentum with a per-row restart when the objective went up
        t_new = 0.5 * (1.0 + xp.sqrt(1.0 + 4.0 * t * t))
        up = f_new > f_old
        mom = xp.where(up, 0.0, (t - 1.0) / t_new).astype(dt)[:, None, None]
        t = xp.where(up, 1.0, t_new)
        if k > _MIN_ITER:
            rel = xp.abs(f_old - f_new) / xp.maximum(xp.abs(f_new), 1e-30)
            newly = (rel < tol) & ~done
            n_run = xp.where(newly, k, n_run)
            done |= newly
            if bool(xp.all(done)):
                break
        f_old = f_new
    s_out = xp.ascontiguousarray(s.reshape(n_rows, n_pad)[:, :n])
    c = xp.ascontiguousarray(kernel.forward(s).reshape(n_rows, n_pad)[:, :n])
    if baseline:
        beta = xp.mean(y - c, axis=-1, dtype=xp.float64).astype(dt)
    else:
        beta = xp.zeros(n_rows, dtype=dt)
    return s_out, c, beta, n_run, done


# Rows per block on the CPU: the working arrays of a block stay in the core's cache.
_CPU_BLOCK_ROWS = 16


@dataclass(frozen=True)
class FistaResult:
    """Result of :func:`fista_deconvolve` (arrays on the input's backend, 1-D input gives 1-D).

    Attributes
    ----------
    s : array, shape (n_rois, n_frames)
        Non-negative activity, in trace units per unit kernel peak (a spike that evokes a transient
        of peak ``p`` gives ``s ≈ p``, possibly spread over two adjacent frames).
    c : array, shape (n_rois, n_frames)
        Denoised calcium ``K s`` (without the baseline).
    baseline : array, shape (n_rois,)
        Fitted constant baseline (zeros when ``baseline=False``). ``y ≈ c + baseline``.
    n_iter_run : array of int, shape (n_rois,)
        Iteration at which each ROI met `tol` (``n_iter`` if it did not).
    converged : array of bool, shape (n_rois,)
        Whether each ROI met `tol` within ``n_iter`` iterations.
    lam_eff : float
        The penalty weight actually used, ``lam · sum(kernel)`` (per ROI if `lam` was an array).
    """

    s: Any
    c: Any
    baseline: Any
    n_iter_run: Any
    converged: Any
    lam_eff: Any


def _number(value: Any, name: str, *, low: float, inclusive: bool) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number; got {value!r}") from None
    ok = np.isfinite(v) and (v >= low if inclusive else v > low)
    if not ok:
        raise ParameterError(
            f"{name} must be finite and {'>=' if inclusive else '>'} {low}; got {value!r}"
        )
    return v


def fista_deconvolve(
    traces: Any,
    *,
    frame_rate_hz: float,
    tau_rise_s: float,
    tau_decay_s: float,
    lam: Any = 0.01,
    n_iter: int = 2000,
    tol: float = 1e-6,
    baseline: bool = True,
) -> FistaResult:
    """Non-negative sparse deconvolution of calcium traces by FISTA (CaLab's problem, batched).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Fluorescence (ΔF/F or raw) traces; numpy or cupy (the work runs on that backend).
        float32 stays float32 (faster), other dtypes are computed in float64. Must be finite.
    frame_rate_hz : float
        Frame rate in Hz.
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants of the kernel in seconds, ``0 < tau_rise_s < tau_decay_s``.
    lam : float or array_like of shape (n_rois,)
        Sparsity weight in trace units (CaLab's ``lambda``; the objective uses ``lam * G``,
        ``G = sum(kernel)``). 0 gives non-negative least squares. A value around the noise σ of
        the traces (:func:`~napari_calcium.core.spikes.deconvolution.noise.noise_sigma_psd`)
        suppresses most noise-driven activity.
    n_iter : int
        Maximum number of iterations (default 2000, as CaLab).
    tol : float
        Stop a ROI when the relative change of its objective between two iterations is below
        `tol` (default 1e-6, as CaLab). Blocks of ROIs stop when all their ROIs have converged.
    baseline : bool
        Fit a constant baseline per ROI jointly with ``s`` (default True).

    Returns
    -------
    FistaResult
        ``s``, ``c``, ``baseline``, ``n_iter_run``, ``converged``, ``lam_eff``.

    Raises
    ------
    ShapeError
        For input that is not 1-D/2-D, has fewer than 2 frames, or is not numeric.
    ParameterError
        For non-finite traces, bad time constants, rate, `lam`, `n_iter` or `tol`.

    Notes
    -----
    Proximal gradient with Nesterov momentum (FISTA, Beck & Teboulle 2009), step ``1 / L`` with
    ``L = G^2 >= ||K||_2^2``
    (:func:`~napari_calcium.core.spikes.deconvolution.kernels.compute_lipschitz` of the kernel),
    proximal step ``max(z - (grad + lam G) / L, 0)`` and a per-ROI restart of the momentum whenever
    the objective increases (O'Donoghue & Candès 2015). The baseline is eliminated exactly (``beta =
    mean(y - K s)``). ``K s`` and ``K^T r`` are blocked convolutions with the exact (untruncated)
    kernel: a 32 x 32 Toeplitz matrix product inside blocks of 32 frames plus the kernel's two
    exponential modes carried between blocks, O(n_frames) per ROI and about twice as fast as the
    ``lfilter`` recursion; on the CPU blocks of ROIs run in parallel threads (``NUMBA_NUM_THREADS``
    of them), on the GPU all ROIs form one batch. FISTA needs roughly 100-600 iterations at
    ``tol=1e-6`` for typical GCaMP kernels at 30 Hz (more for ``lam = 0``, slower kernels or higher
    frame rates).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from napari_calcium.core.spikes.deconvolution.kernels import build_kernel
    >>> spikes = (rng.random((2, 600)) < 0.03).astype(float)
    >>> h = build_kernel(0.05, 0.4, 30.0)
    >>> y = np.array([np.convolve(r, h)[:600] for r in spikes])
    >>> y += 0.05 * rng.standard_normal((2, 600))
    >>> res = fista_deconvolve(y, frame_rate_hz=30.0, tau_rise_s=0.05, tau_decay_s=0.4, lam=0.05)
    >>> res.s.shape, bool(res.converged.all())
    ((2, 600), True)
    """
    if not hasattr(traces, "shape") or not hasattr(traces, "dtype"):
        traces = np.asarray(traces)
    xp = array_module(traces)
    ndim = len(traces.shape)
    if ndim not in (1, 2):
        raise ShapeError(
            f"traces has shape {tuple(traces.shape)}; expected (n_rois, n_frames) or (n_frames,)"
        )
    if int(traces.shape[-1]) < 2:
        raise ShapeError(f"traces needs at least 2 frames; got shape {tuple(traces.shape)}")
    kind = np.dtype(traces.dtype).kind
    if kind not in "biuf":
        raise ShapeError(f"traces must be real numbers; got dtype {traces.dtype}")
    dt = xp.float32 if np.dtype(traces.dtype) == np.float32 else xp.float64
    y = xp.asarray(traces, dtype=dt)
    y = y[None, :] if ndim == 1 else y
    if not bool(xp.all(xp.isfinite(y))):
        raise ParameterError(
            "traces must be finite (no NaN or inf); interpolate or drop bad frames"
        )
    if isinstance(n_iter, bool) or int(n_iter) != n_iter or n_iter < 1:
        raise ParameterError(f"n_iter must be an integer >= 1; got {n_iter!r}")
    tol_v = _number(tol, "tol", low=0.0, inclusive=True)
    n_rois = int(y.shape[0])
    lam_host = np.asarray(lam.get() if hasattr(lam, "get") else lam, dtype=np.float64)
    if lam_host.ndim == 0:
        lam_host = np.full(n_rois, float(lam_host))
    if lam_host.shape != (n_rois,):
        raise ShapeError(
            f"lam must be a number or an array of shape ({n_rois},); got {lam_host.shape}"
        )
    if not np.all(np.isfinite(lam_host) & (lam_host >= 0)):
        raise ParameterError("lam must be finite and >= 0")

    b, _, gain = kernel_iir(tau_rise_s, tau_decay_s, frame_rate_hz)
    step = 1.0 / gain**2  # = 1 / compute_lipschitz(kernel) for the untruncated kernel
    lam_eff = lam_host * gain
    _, _, d, r = tau_to_ar2(tau_rise_s, tau_decay_s, frame_rate_hz)
    kernel = BlockedKernel(xp, dt, float(b[1]) / (d - r), d, r, step, BLOCK_FRAMES)
    lam_x = xp.asarray(lam_eff[:, None])

    def solve(lo: int, hi: int) -> tuple[Any, ...]:
        return fista_rows(y[lo:hi], kernel, lam_x[lo:hi], step, int(n_iter), tol_v, baseline)

    if xp is np:
        s, c = np.empty_like(y), np.empty_like(y)
        beta = np.empty(n_rois, dtype=y.dtype)
        n_run = np.empty(n_rois, dtype=np.int64)
        conv = np.empty(n_rois, dtype=bool)

        def work(lo: int, hi: int) -> None:
            for start in range(lo, hi, _CPU_BLOCK_ROWS):
                stop = min(hi, start + _CPU_BLOCK_ROWS)
                out = solve(start, stop)
                for dst, src in zip((s, c, beta, n_run, conv), out, strict=True):
                    dst[start:stop] = src

        n_parts = max(1, min(numba.get_num_threads(), -(-n_rois // _CPU_BLOCK_ROWS)))
        bounds = [p * n_rois // n_parts for p in range(n_parts + 1)]
        if n_parts == 1:
            work(0, n_rois)
        else:
            with ThreadPoolExecutor(n_parts, thread_name_prefix="napari-calcium-fista") as pool:
                for f in [pool.submit(work, lo, hi) for lo, hi in itertools.pairwise(bounds)]:
                    f.result()
    else:
        s, c, beta, n_run, conv = solve(0, n_rois)

    if ndim == 1:
        return FistaResult(s[0], c[0], beta[0], n_run[0], conv[0], float(lam_eff[0]))
    lam_out: Any = float(lam_eff[0]) if np.ndim(lam) == 0 else lam_eff
    return FistaResult(s, c, beta, n_run, conv, lam_out)
