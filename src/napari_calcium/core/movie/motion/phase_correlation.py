"""Phase correlation: each frame's displacement from a template, to a fraction of a pixel.

The measuring half of rigid registration (public face:
:func:`~napari_calcium.core.movie.motion.rigid.estimate_shifts`), written once for numpy and cupy.
A frame displaced by ``s = (dy, dx)`` shows ``template(y - dy, x - dx)``, and its phase correlation
with the template peaks at ``+s`` (:mod:`napari_calcium.core.movie.motion.rigid` documents the
method and the sign convention).

- :func:`prepare_frames`: float32, high-passed if asked, mean-free, edges tapered
  (:func:`taper_mask`);
- :func:`reference_spectrum`: the template's whitened, smoothed, conjugated spectrum;
- :func:`find_shifts`: the whole-pixel peak within ``±max_shift``, refined by 1-D upsampled DFTs
  (:func:`_refine_subpixel`);
- :class:`Estimator` / :func:`make_estimator`: the estimation options, checked
  (:func:`max_shift_pair`, :func:`int_at_least`, :func:`number`), and the template spectrum;
  called on a block of frames, it returns their shifts and peak correlations.

Kernels take blocks ``(frames, y, x)`` of one namespace ``xp`` and use only ``xp``,
``fft_module(xp)`` and ``ndimage_module(xp)``; per-frame shifts are small host (numpy) arrays.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....errors import ParameterError
from ..._backend import array_module, fft_module, ndimage_module, to_host

#: Taper slope in pixels: frames fade to their mean over about ``4 * slope`` pixels at the edges.
_TAPER_SLOPE_PX = 3.45
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
    _contract_kernels()[axis](cross, vec, out)
    return out


def _profile(xp: Any, line: Any, ramp: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``Σ_k (line[f, k] ramp[f, k]) grid[k, m]`` on the host, ``(frames, m)`` complex64.

    numpy: a numba loop, whose results do not depend on the number of frames (numpy's SIMD
    complex product of whole arrays differs by an ulp at the array's tail, which would make the
    shifts depend on the block size); other namespaces: the same product and ``einsum``.
    """
    if xp is not np:
        line = line * xp.asarray(ramp)
        return to_host(xp.einsum("fk,km->fm", line, xp.asarray(grid)))
    out = np.empty((line.shape[0], grid.shape[1]), np.complex64)
    args = (np.ascontiguousarray(line), np.ascontiguousarray(ramp), np.ascontiguousarray(grid))
    _profile_kernel()(*args, out)
    return out


@functools.cache
def _contract_kernels() -> tuple[Any, Any]:
    """numba CPU kernels (compiled once, cached on disk): contract over ky / kx."""
    import numba

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

    return contract_ky, contract_kx


@functools.cache
def _profile_kernel() -> Any:
    """numba CPU kernel (compiled once, cached on disk): the subpixel profile of
    :func:`_profile`."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def profile(line, ramp, grid, out):  # pragma: no cover - compiled
        moved = np.empty(line.shape[1], np.complex64)
        for f in range(line.shape[0]):
            for k in range(line.shape[1]):
                moved[k] = line[f, k] * ramp[f, k]
            for m in range(grid.shape[1]):
                acc = np.complex64(0)
                for k in range(line.shape[1]):
                    acc += moved[k] * grid[k, m]
                out[f, m] = acc

    return profile


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
        profile = _profile(xp, line, ramp.astype(np.complex64), grid.astype(np.complex64))
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
# Estimation options and the estimator
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
