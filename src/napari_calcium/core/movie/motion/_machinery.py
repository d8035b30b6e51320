"""Machinery of rigid registration, written once for numpy and cupy (private).

:mod:`napari_calcium.core.movie.motion.rigid` documents the method and the sign convention: a frame
displaced by ``s = (dy, dx)`` shows ``template(y - dy, x - dx)``, its phase correlation with the
template peaks at ``+s``, and correcting it samples ``frame(y + dy, x + dx)``. Kernels take blocks
``(frames, y, x)`` of one namespace ``xp`` and use only ``xp``, ``fft_module(xp)`` and
``ndimage_module(xp)``; per-frame shifts are small host (numpy) arrays that steer slicing.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....errors import ParameterError
from ..._backend import array_module, fft_module, is_dask_array, ndimage_module, to_host
from ...chunking import auto_block_frames, frame_blocks, track_blocks

INTERPOLATIONS = ("cubic", "linear", "fourier")
BORDERS = ("nan", "zero", "edge", "crop")

#: Taper slope in pixels: frames fade to their mean over about ``4 * slope`` pixels at the edges.
_TAPER_SLOPE_PX = 3.45
#: Share of template frames (the best correlated) averaged into the template at each iteration.
_TEMPLATE_KEEP = 0.75
#: Relative floor of the spectral magnitude in the whitening, as a share of its mean.
_WHITEN_EPS = 1e-3


def _fft_kwargs(xp: Any) -> dict[str, Any]:
    """``workers=-1`` for scipy.fft (all cores); cupyx.scipy.fft takes no such argument."""
    return {"workers": -1} if xp is np else {}


def taper_mask(xp: Any, shape: tuple[int, int], slope_px: float) -> Any:
    """Sigmoid edge taper ``(y, x)``, float32: about 0.12 at the edge, 0.5 at ``2 * slope_px``.

    Multiplying mean-subtracted frames by it hides the frame edges (where content enters and
    leaves as the frame moves, and where the FFT wraps around) from the phase correlation.
    """
    axes = []
    for n in shape:  # 1 / (1 + exp((distance from centre - half width) / slope))
        half = (n - 1) / 2.0
        axes.append(
            1.0 / (1.0 + np.exp((np.abs(np.arange(n) - half) - half + 2 * slope_px) / slope_px))
        )
    return xp.asarray(np.outer(axes[0], axes[1]).astype(np.float32))


def prepare_frames(block: Any, xp: Any, *, taper: Any, highpass_sigma_px: float | None) -> Any:
    """Frames as phase correlation sees them: float32, high-passed, mean-free, tapered."""
    x = xp.asarray(block, dtype=xp.float32)
    x = x.copy() if x is block else x
    if block.dtype.kind == "f" and bool(xp.isnan(x).any()):  # e.g. NaN borders of a registration
        x = xp.where(xp.isnan(x), xp.nanmean(x, axis=(1, 2), keepdims=True), x)
    if highpass_sigma_px:
        ndi = ndimage_module(xp)
        x -= ndi.gaussian_filter(x, (0.0, highpass_sigma_px, highpass_sigma_px), mode="reflect")
    x -= x.mean(axis=(1, 2), keepdims=True)
    x *= taper
    return x


def _whiten(spec: Any, xp: Any, whitening: float) -> tuple[Any, Any]:
    """``spec / (|spec| + eps) ** whitening`` in place (1: phase only; 0: unchanged).

    Returns the whitened spectrum and its magnitude (float32, same shape).
    """
    mag = xp.abs(spec)
    if whitening == 0:
        return spec, mag
    scale = mag + (_WHITEN_EPS * mag.mean(axis=(-2, -1), keepdims=True) + 1e-30)
    if whitening != 1:
        scale **= whitening
    xp.reciprocal(scale, out=scale)
    spec *= scale
    mag *= scale
    return spec, mag


def _gaussian_weights(xp: Any, shape: tuple[int, int], sigma_px: float) -> Any:
    """Fourier transform of a unit-sum Gaussian of `sigma_px` on the rfft2 grid, float32."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    g = np.exp(-2.0 * np.pi**2 * sigma_px**2 * (ky**2 + kx**2))
    return xp.asarray(g.astype(np.float32))


def reference_spectrum(
    prepared_template: Any, xp: Any, *, whitening: float, smooth_sigma_px: float
) -> Any:
    """``conj(T)`` whitened and multiplied by the Gaussian smoothing, ``(y, x // 2 + 1)``."""
    fft = fft_module(xp)
    spec = fft.rfft2(prepared_template[None], **_fft_kwargs(xp))
    spec = xp.conj(_whiten(spec, xp, whitening)[0])[0]
    spec *= _gaussian_weights(xp, prepared_template.shape, smooth_sigma_px)
    spec[0, 0] = 0
    return spec.astype(xp.complex64, copy=False)


def _half_spectrum_weights(nx: int) -> np.ndarray:
    """Weight of each rfft bin in a full-spectrum sum (2 for the bins that stand for two)."""
    weight = np.full(nx // 2 + 1, 2.0)
    weight[0] = 1.0
    if nx % 2 == 0:
        weight[-1] = 1.0
    return weight


def _parabola_vertex(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex offset in [-0.5, 0.5] of the parabola through three equally spaced samples."""
    denom = left - 2.0 * mid + right
    safe = np.where(denom < 0, denom, -1.0)
    vertex = np.where(denom < 0, 0.5 * (left - right) / safe, 0.0)
    return np.clip(vertex, -0.5, 0.5)


def _contract(xp: Any, cross: Any, vec: np.ndarray, axis: int) -> Any:
    """``Σ_k cross[f, .., k, ..] vec[f, k]`` over spectrum axis `axis` (0: ky, 1: kx), per frame.

    numpy: a small numba loop (OpenBLAS's threads make batched matrix-vector products erratic
    beside the FFT's threads on few cores); other namespaces: the same sum by ``einsum``.
    """
    vec = xp.asarray(vec.astype(np.complex64))
    if xp is not np:
        return xp.einsum("fyk,fy->fk" if axis == 0 else "fyk,fk->fy", cross, vec)
    out = np.empty((cross.shape[0], cross.shape[2 if axis == 0 else 1]), np.complex64)
    _kernels()[1 + axis](cross, vec, out)
    return out


def _refine_subpixel(
    xp: Any, cross: Any, shape: tuple[int, int], centre: np.ndarray, upsample_factor: int
) -> np.ndarray:
    """Subpixel peak by 1-D upsampled DFTs: along y at the integer x, then along x.

    Along y at x: ``r(y) = Re Σ_ky e^{2πi ky y} Σ_kx w e^{2πi kx x} R(ky, kx)`` on a grid of
    ``1 / upsample_factor`` px within ±0.75 px of the peak; the grid maximum is refined by a
    parabola; then x at the new y. Each pass contracts the spectrum with one vector per frame, a
    fraction of the cost of the 2-D grid of Guizar-Sicairos et al. (2008), with the same
    accuracy on the generator's movies (the smoothed peak is nearly isotropic).
    """
    n = cross.shape[0]
    freqs = (np.fft.fftfreq(shape[0]), np.fft.rfftfreq(shape[1]))
    weights = (np.ones(shape[0]), _half_spectrum_weights(shape[1]))
    reach = math.ceil(0.75 * upsample_factor)
    offsets = np.arange(-reach, reach + 1) / upsample_factor
    pos, frames = centre.astype(np.float64).copy(), np.arange(n)
    for axis in (0, 1):
        other = 1 - axis
        line = _contract(xp, cross, np.exp(2j * np.pi * pos[:, other, None] * freqs[other])
                         * weights[other], other)  # fmt: skip
        ramp = np.exp(2j * np.pi * pos[:, axis, None] * freqs[axis]) * weights[axis]
        grid = np.exp(2j * np.pi * freqs[axis][:, None] * offsets[None, :])  # (k, m)
        line = line * xp.asarray(ramp.astype(np.complex64))
        profile = to_host(xp.einsum("fk,km->fm", line, xp.asarray(grid.astype(np.complex64))))
        profile = profile.real.astype(np.float64)
        best = np.argmax(profile, axis=1)
        j = np.clip(best, 1, profile.shape[1] - 2)
        vertex = _parabola_vertex(
            profile[frames, j - 1], profile[frames, j], profile[frames, j + 1]
        )
        pos[:, axis] += (best - reach + np.where(j == best, vertex, 0.0)) / upsample_factor
    return pos


def find_shifts(
    prepared: Any,
    ref_spec: Any,
    xp: Any,
    *,
    whitening: float,
    max_shift: tuple[int, int],
    upsample_factor: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Shift (dy, dx) of each prepared frame relative to the template, and the peak height.

    The correlation is only needed within ``±max_shift`` of zero: after the inverse FFT along y
    only those rows are transformed along x. Returns host float64 shifts ``(frames, 2)`` clipped
    to ``±max_shift`` and float32 peak correlations ``(frames,)``: the normalised
    cross-correlation (<= 1) of the whitened, smoothed frame and template at the integer peak.
    """
    fft = fft_module(xp)
    kwargs = _fft_kwargs(xp)
    shape = (int(prepared.shape[1]), int(prepared.shape[2]))
    n = int(prepared.shape[0])
    my, mx = max_shift
    cross, power = _whiten(fft.rfft2(prepared, **kwargs), xp, whitening)
    weight = xp.asarray(_half_spectrum_weights(shape[1]).astype(np.float32))
    power *= power
    power *= weight
    frame_norm = xp.sqrt(power.sum(axis=(1, 2)))
    del power
    ref_norm = xp.sqrt((xp.abs(ref_spec) ** 2 * weight).sum())
    cross *= ref_spec
    near_y, near_x = (
        xp.asarray(np.arange(-m, m + 1) % s) for m, s in zip(max_shift, shape, strict=True)
    )
    rows = xp.take(fft.ifft(cross, axis=1, **kwargs), near_y, axis=1)
    corr = fft.irfft(rows, n=shape[1], axis=2, **kwargs)
    window = xp.take(corr, near_x, axis=2).reshape(n, -1)
    best = xp.argmax(window, axis=1)
    peak = xp.take_along_axis(window, best[:, None], axis=1)[:, 0]
    peak = peak * (shape[0] * shape[1]) / xp.maximum(frame_norm * ref_norm, 1e-30)
    iy, ix = np.divmod(to_host(best), 2 * mx + 1)
    centre = np.stack([iy - my, ix - mx], axis=1).astype(np.float64)
    if upsample_factor > 1 and n:
        centre = _refine_subpixel(xp, cross, shape, centre, upsample_factor)
    limit = np.asarray(max_shift, dtype=np.float64)
    return np.clip(centre, -limit, limit), to_host(peak).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Applying shifts
# --------------------------------------------------------------------------------------------------
def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """Keys (1981) cubic convolution (a = -0.5): weights of taps -1, 0, 1, 2 for fractions t."""
    a = -0.5
    out = []
    for d in (1.0 + t, t, 1.0 - t, 2.0 - t):
        near = (a + 2.0) * d**3 - (a + 3.0) * d**2 + 1.0
        far = a * d**3 - 5.0 * a * d**2 + 8.0 * a * d - 4.0 * a
        out.append(np.where(d <= 1.0, near, far))
    return np.stack(out, axis=-1)


def interpolation_taps(shifts: np.ndarray, interpolation: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer bases ``(frames, 2)`` and float32 weights ``(frames, 2, 4)`` of taps -1..2.

    ``out(i) = Σ_k weights[k] in(i + base + k - 1)`` samples ``in(i + shift)`` (linear: taps 0, 1).
    Computed on the host once, so the numba kernel and the array expression use the same numbers.
    """
    base = np.floor(np.asarray(shifts, dtype=np.float64).reshape(-1, 2))
    t = np.asarray(shifts, dtype=np.float64).reshape(-1, 2) - base
    zero = np.zeros_like(t)
    linear = np.stack([zero, 1.0 - t, t, zero], axis=-1)
    weights = linear if interpolation == "linear" else _cubic_weights(t)
    return base.astype(np.int64), weights.astype(np.float32)


def _shift_frames_xp(x: Any, base: np.ndarray, weights: np.ndarray, xp: Any) -> Any:
    """Array-expression twin of the numba kernel (cupy's path): the same taps, the same order."""
    n, ny, nx = x.shape
    out = xp.empty((n, ny, nx), dtype=xp.float32)
    if n == 0:
        return out
    pad = int(np.abs(base).max()) + 3
    padded = xp.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    for f in range(n):
        rows = None
        start = pad + int(base[f, 0]) - 1
        for k in range(4):
            term = padded[f, start + k : start + k + ny, :] * weights[f, 0, k]
            rows = term if rows is None else rows + term
        cols = None
        start = pad + int(base[f, 1]) - 1
        for k in range(4):
            term = rows[:, start + k : start + k + nx] * weights[f, 1, k]
            cols = term if cols is None else cols + term
        out[f] = cols
    return out


@functools.cache
def _kernels() -> tuple[Any, Any, Any]:
    """numba CPU kernels (compiled once, cached on disk): shift frames, contract over ky / kx."""
    import numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def kernel(frames, base, weights, out):  # pragma: no cover - compiled
        n, ny, nx = frames.shape
        for f in numba.prange(n):
            by, bx = base[f, 0], base[f, 1]
            wy, wx = weights[f, 0], weights[f, 1]
            w0, w1, w2, w3 = wy[0], wy[1], wy[2], wy[3]
            v0, v1, v2, v3 = wx[0], wx[1], wx[2], wx[3]
            pad = abs(bx) + 2
            line = np.empty(nx + 2 * pad, np.float32)
            for i in range(ny):
                r0 = frames[f, min(max(i + by - 1, 0), ny - 1)]
                r1 = frames[f, min(max(i + by, 0), ny - 1)]
                r2 = frames[f, min(max(i + by + 1, 0), ny - 1)]
                r3 = frames[f, min(max(i + by + 2, 0), ny - 1)]
                for j in range(nx):  # rows first: same order of operations as the xp twin
                    line[pad + j] = (
                        np.float32(r0[j]) * w0
                        + np.float32(r1[j]) * w1
                        + np.float32(r2[j]) * w2
                        + np.float32(r3[j]) * w3
                    )
                for j in range(pad):  # edge values beyond the frame ("nearest")
                    line[j] = line[pad]
                    line[pad + nx + j] = line[pad + nx - 1]
                start = pad + bx - 1
                for j in range(nx):
                    out[f, i, j] = (
                        line[start + j] * v0
                        + line[start + j + 1] * v1
                        + line[start + j + 2] * v2
                        + line[start + j + 3] * v3
                    )

    @numba.njit(cache=True, nogil=True)
    def contract_ky(cross, vec, out):  # pragma: no cover - compiled
        for f in range(cross.shape[0]):
            out[f] = 0
            for y in range(cross.shape[1]):
                v = vec[f, y]
                for k in range(cross.shape[2]):
                    out[f, k] += v * cross[f, y, k]

    @numba.njit(cache=True, nogil=True)
    def contract_kx(cross, vec, out):  # pragma: no cover - compiled
        for f in range(cross.shape[0]):
            for y in range(cross.shape[1]):
                acc = np.complex64(0)
                for k in range(cross.shape[2]):
                    acc += cross[f, y, k] * vec[f, k]
                out[f, y] = acc

    return kernel, contract_ky, contract_kx


def shift_frames(
    block: Any, shifts: np.ndarray, xp: Any, *, interpolation: str, use_numba: bool = True
) -> Any:
    """Correct each frame: ``out[f](y, x) = block[f](y + dy[f], x + dx[f])``, float32.

    ``cubic`` and ``linear`` read samples beyond the frame edge as the edge value ("nearest");
    ``fourier`` shifts periodically. Pixels whose source lies outside the frame are left to
    :func:`fill_border`. numpy blocks go through a numba kernel (unless `use_numba` is False),
    other namespaces through the equivalent array expression.
    """
    shifts = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
    if interpolation == "fourier":
        x = xp.asarray(block, dtype=xp.float32)
        fft = fft_module(xp)
        kwargs = _fft_kwargs(xp)
        ny, nx = x.shape[1:]
        ky = np.fft.fftfreq(ny)[None, :, None]
        kx = np.fft.rfftfreq(nx)[None, None, :]
        ramp_y = np.exp(2j * np.pi * ky * shifts[:, 0, None, None]).astype(np.complex64)
        ramp_x = np.exp(2j * np.pi * kx * shifts[:, 1, None, None]).astype(np.complex64)
        spec = fft.rfft2(x, **kwargs)
        spec *= xp.asarray(ramp_y)
        spec *= xp.asarray(ramp_x)
        return fft.irfft2(spec, s=(ny, nx), **kwargs).astype(xp.float32, copy=False)
    base, weights = interpolation_taps(shifts, interpolation)
    if xp is np and use_numba:  # the CPU fast path: numba, parallel over frames
        native = np.dtype(block.dtype) in (np.dtype(np.uint16), np.dtype(np.float32))
        frames = np.ascontiguousarray(block, dtype=None if native else np.float32)
        out = np.empty(frames.shape, dtype=np.float32)
        if frames.shape[0]:  # two compiled signatures: uint16 (raw data) and float32
            _kernels()[0](frames, base, weights, out)
        return out
    return _shift_frames_xp(xp.asarray(block, dtype=xp.float32), base, weights, xp)


def _valid_range(shift: float, length: int) -> tuple[int, int]:
    """Output indices ``[lo, hi)`` whose source ``i + shift`` lies within ``[0, length - 1]``."""
    tol = 1e-6
    lo = max(0, math.ceil(-shift - tol))
    hi = min(length, math.floor(length - 1 - shift + tol) + 1)
    return lo, max(lo, hi)


def valid_box(shifts: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the region whose source lies inside the frame for every shift."""
    box = [0, shape[0], 0, shape[1]]
    for row in np.asarray(shifts, dtype=np.float64).reshape(-1, 2):
        for axis in (0, 1):
            lo, hi = _valid_range(float(row[axis]), shape[axis])
            box[2 * axis], box[2 * axis + 1] = max(box[2 * axis], lo), min(box[2 * axis + 1], hi)
    return box[0], max(box[0], box[1]), box[2], max(box[2], box[3])


def fill_border(frames: Any, shifts: np.ndarray, border: str) -> Any:
    """Fill pixels whose source lay outside the frame: NaN, 0 or the nearest valid pixel."""
    if border == "crop":
        return frames
    ny, nx = frames.shape[1:]
    for f in range(frames.shape[0]):
        y0, y1 = _valid_range(float(shifts[f, 0]), ny)
        x0, x1 = _valid_range(float(shifts[f, 1]), nx)
        frame, edge = frames[f], border == "edge"
        if edge and (y1 <= y0 or x1 <= x0):
            continue
        value = float("nan") if border == "nan" else 0.0
        frame[:y0] = frame[y0] if edge else value
        frame[y1:] = frame[y1 - 1] if edge else value
        frame[:, :x0] = frame[:, x0 : x0 + 1] if edge else value
        frame[:, x1:] = frame[:, x1 - 1 : x1] if edge else value
    return frames


def correct_block(block, shifts, *, interpolation, border, dtype, box, xp=None) -> Any:
    xp = array_module(block) if xp is None else xp
    out = shift_frames(block, shifts, xp, interpolation=interpolation)
    out = fill_border(out, shifts, border)
    if border == "crop":
        out = out[:, box[0] : box[1], box[2] : box[3]]
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        out = xp.clip(xp.rint(out), info.min, info.max)
    return out.astype(dtype, copy=False)


def dask_block(block, *, shifts, block_info=None, **options) -> Any:
    start, stop = block_info[0]["array-location"][0]
    return correct_block(block, shifts[start:stop], **options)


def _read_frames(movie: Any, start: int, stop: int, xp: Any) -> Any:
    """``movie[start:stop]`` in memory on `xp` (dask computed, memmap copied)."""
    block = movie[start:stop]
    if is_dask_array(block):
        block = block.compute()
    if isinstance(block, np.memmap):
        return np.array(block)
    return xp.asarray(block)


# --------------------------------------------------------------------------------------------------
# Argument checks (the public functions' parameters)
# --------------------------------------------------------------------------------------------------
def int_at_least(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def number(value: Any, name: str, lo: float, hi: float = math.inf, *, open_lo=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    v = float(value)
    bad_lo = v <= lo if open_lo else v < lo
    if not math.isfinite(v) or bad_lo or v > hi:
        bounds = f"{'>' if open_lo else '>='} {lo:g}" + (f" and <= {hi:g}" if hi < math.inf else "")
        raise ParameterError(f"{name} must be a finite number {bounds}, got {value!r}")
    return v


def max_shift_pair(value: Any, shape: tuple[int, int]) -> tuple[int, int]:
    """``max_shift_px`` as whole pixels (y, x); None is 10 % of each side (suite2p's default)."""
    if value is None:
        return tuple(max(1, n // 10) for n in shape)  # type: ignore[return-value]
    pair = (value, value) if isinstance(value, numbers.Real) else value
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise ParameterError(f"max_shift_px must be a number or a (y, x) pair, got {value!r}")
    out = []
    for v, n, axis in zip(pair, shape, "yx", strict=True):
        v = number(v, "max_shift_px", 0.0)
        if math.floor(v) > (n - 1) // 2:
            raise ParameterError(
                f"max_shift_px={value!r} is too large for frames of {n} pixels along {axis}; "
                f"it must be at most {(n - 1) // 2} (less than half the frame)"
            )
        out.append(math.floor(v))
    return out[0], out[1]


def make_estimator(movie, *, max_shift_px, upsample_factor, highpass_sigma_px, smooth_sigma_px,
               whitening) -> Estimator:  # fmt: skip
    shape = (int(movie.shape[1]), int(movie.shape[2]))
    xp = array_module(movie)
    return Estimator(
        xp,
        max_shift=max_shift_pair(max_shift_px, shape),
        upsample_factor=int_at_least(upsample_factor, "upsample_factor", 1),
        highpass_sigma_px=None
        if highpass_sigma_px is None
        else number(highpass_sigma_px, "highpass_sigma_px", 0.0, open_lo=True),
        smooth_sigma_px=number(smooth_sigma_px, "smooth_sigma_px", 0.0),
        whitening=number(whitening, "whitening", 0.0, 1.0),
        taper=taper_mask(xp, shape, _TAPER_SLOPE_PX),
    )


# --------------------------------------------------------------------------------------------------
# Estimation and template
# --------------------------------------------------------------------------------------------------
@dataclass
class Estimator:
    """The estimation options and the template spectrum; measures the shifts of frame blocks."""

    xp: Any
    max_shift: tuple[int, int]
    upsample_factor: int
    highpass_sigma_px: float | None
    smooth_sigma_px: float
    whitening: float
    taper: Any
    ref_spec: Any = None

    def prepare(self, block: Any) -> Any:
        return prepare_frames(
            block, self.xp, taper=self.taper, highpass_sigma_px=self.highpass_sigma_px
        )

    def set_template(self, template: Any) -> None:
        prepared = self.prepare(self.xp.asarray(template)[None])[0]
        self.ref_spec = reference_spectrum(
            prepared, self.xp, whitening=self.whitening, smooth_sigma_px=self.smooth_sigma_px
        )

    def __call__(self, block: Any) -> tuple[np.ndarray, np.ndarray]:
        return find_shifts(
            self.prepare(block),
            self.ref_spec,
            self.xp,
            whitening=self.whitening,
            max_shift=self.max_shift,
            upsample_factor=self.upsample_factor,
        )


def _sample_runs(n_frames: int, n_sample: int, n_runs: int = 10) -> list[tuple[int, int]]:
    """About `n_sample` frames as up to `n_runs` contiguous runs spread over the recording.

    Runs rather than single frames: a dask or compressed movie then computes few chunks.
    """
    if n_frames <= n_sample:
        return [(0, n_frames)]
    n_runs = max(1, min(n_runs, n_sample))
    length = math.ceil(n_sample / n_runs)
    starts = np.linspace(0, n_frames - length, n_runs).round().astype(int)
    runs: list[tuple[int, int]] = []
    for s in starts:
        start = max(int(s), runs[-1][1] if runs else 0)
        if start < n_frames:
            runs.append((start, min(n_frames, start + length)))
    return runs


def _binned(prepared: Any, xp: Any, target: int = 64) -> Any:
    """Prepared frames block-averaged down to about `target` px a side, flattened (frames, p)."""
    n, ny, nx = prepared.shape
    b = max(1, min(ny, nx) // target)
    cut = prepared[:, : ny // b * b, : nx // b * b]
    return cut.reshape(n, ny // b, b, nx // b, b).mean(axis=(2, 4)).reshape(n, -1)


def _seed_template(sample: Any, est: Estimator, blocks) -> Any:
    """Mean of the frame most like the others and the frames most like it (correlation)."""
    xp = est.xp
    small = xp.concatenate([_binned(est.prepare(sample[b.frames]), xp) for b in blocks], axis=0)
    small -= small.mean(axis=1, keepdims=True)
    small /= xp.maximum(xp.sqrt((small**2).sum(axis=1, keepdims=True)), 1e-12)
    corr = to_host(small @ small.T).astype(np.float64)
    n = corr.shape[0]
    k = min(n, max(3, n // 10))
    np.fill_diagonal(corr, -np.inf)
    top = -np.sort(-corr, axis=1)[:, : max(1, k - 1)]
    seed = int(np.argmax(top.mean(axis=1)))
    members = np.concatenate([[seed], np.argsort(-corr[seed])[: k - 1]])
    return xp.asarray(sample[xp.asarray(np.sort(members))], dtype=xp.float32).mean(axis=0)


def _build_template(sample: Any, est: Estimator, n_iterations: int, interpolation: str,
                    should_stop) -> Any:  # fmt: skip
    xp = est.xp
    n = int(sample.shape[0])
    budget = auto_block_frames(sample)
    blocks = frame_blocks(n, block_frames=budget)
    template = _seed_template(
        sample, est, track_blocks(blocks, should_stop=should_stop, desc="motion template")
    )
    for _ in range(n_iterations):
        est.set_template(template)
        shifts = np.zeros((n, 2))
        peaks = np.zeros(n, np.float32)
        for b in track_blocks(blocks, should_stop=should_stop, desc="motion template"):
            shifts[b.frames], peaks[b.frames] = est(sample[b.frames])
        shifts -= np.median(shifts, axis=0)  # anchor the template at the median position
        keep = peaks >= np.quantile(peaks, 1.0 - _TEMPLATE_KEEP) if n > 1 else np.ones(1, bool)
        total = xp.zeros(sample.shape[1:], dtype=xp.float32)
        for b in track_blocks(blocks, should_stop=should_stop, desc="motion template"):
            chosen = np.flatnonzero(keep[b.frames])
            if chosen.size == 0:
                continue
            frames = sample[b.frames][xp.asarray(chosen)]
            moved = shift_frames(frames, shifts[b.frames][chosen], xp, interpolation=interpolation)
            total += fill_border(moved, shifts[b.frames][chosen], "edge").sum(axis=0)
        template = total / float(keep.sum())
    return template


def template_from_movie(
    movie: Any, est: Estimator, n_sample: int, n_iterations: int, interpolation: str, should_stop
) -> Any:
    """Read the template sample of `movie` and build the template from it."""
    runs = _sample_runs(int(movie.shape[0]), n_sample)
    sample = est.xp.concatenate([_read_frames(movie, a, b, est.xp) for a, b in runs], axis=0)
    return _build_template(sample, est, n_iterations, interpolation, should_stop)
