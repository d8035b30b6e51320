"""Dense shift fields from a grid of patch shifts, and frames warped by them (NoRMCorre's
second half; the patch shifts come from :mod:`.piecewise`).

- :func:`grid_taps` / :func:`dense_shift_field`: the per-frame patch-shift grid interpolated
  (Keys cubic, separable, in patch-index space) to a per-pixel ``(dy, dx)`` field;
- :func:`warp_frames`: frames resampled there (Keys cubic or bilinear), a numba kernel on numpy
  and the same algorithm as an array expression elsewhere (cupy);
- :func:`apply_patch_shifts`: that over a whole movie, block by block or lazily on dask
  (:func:`~.shifting.correct_frames`, the rigid path's driver), with the rigid path's border
  options; :func:`patch_valid_box` is the region valid in every frame.

Sign convention (the rigid one, per pixel): ``corrected[t, y, x] = movie[t, y + dy(y, x),
x + dx(y, x)]``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ..._backend import array_module, to_host
from ..._threads import in_threads
from .shifting import (
    BORDERS,
    _check_dtype,
    _check_movie,
    _choice,
    correct_frames,
    valid_box,
)

__all__ = [
    "PIECEWISE_INTERPOLATIONS",
    "apply_patch_shifts",
    "dense_shift_field",
    "field_extremes",
    "grid_taps",
    "patch_valid_box",
    "warp_frames",
]

#: Interpolations of the frame a piecewise correction offers (no Fourier: the shift varies).
PIECEWISE_INTERPOLATIONS = ("cubic", "linear")


def _keys(t: np.ndarray) -> np.ndarray:
    """Keys cubic (a = -0.5) weights of taps -1, 0, 1, 2 for fractions `t`, float64 (..., 4)."""
    a = -0.5
    out = []
    for d in (1.0 + t, t, 1.0 - t, 2.0 - t):
        near = (a + 2.0) * d**3 - (a + 3.0) * d**2 + 1.0
        far = a * d**3 - 5.0 * a * d**2 + 8.0 * a * d - 4.0 * a
        out.append(np.where(d <= 1.0, near, far))
    return np.stack(out, axis=-1)


def grid_taps(centres: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Taps ``(n, 4)`` int64 and weights ``(n, 4)`` float64 interpolating a patch row to pixels.

    Pixel ``i`` sits at the fractional patch index ``u(i)`` (piecewise linear between the patch
    centres, extended linearly beyond the outer ones); its value is the Keys cubic interpolation
    of the patch values at indices ``floor(u) - 1 .. floor(u) + 2``, the values beyond the ends
    extended linearly from the two outer patches (so a field linear in the patch index is
    reproduced exactly, up to the frame edge). A single patch gives its value everywhere.
    """
    centres = np.asarray(centres, dtype=np.float64)
    g = len(centres)
    pos = np.arange(n, dtype=np.float64)
    if g == 1:
        idx = np.zeros((n, 4), np.int64)
        w = np.zeros((n, 4))
        w[:, 1] = 1.0
        return idx, w
    u = np.interp(pos, centres, np.arange(g, dtype=np.float64))
    u = np.where(pos < centres[0], (pos - centres[0]) / (centres[1] - centres[0]), u)
    u = np.where(pos > centres[-1], g - 1 + (pos - centres[-1]) / (centres[-1] - centres[-2]), u)
    base = np.floor(u).astype(np.int64)
    raw = base[:, None] + np.arange(-1, 3)  # (n, 4) indices, possibly beyond the ends
    keys = _keys(u - base)
    dense = np.zeros((n, g))
    rows = np.repeat(np.arange(n), 4)
    raw, keys = raw.ravel(), keys.ravel()
    low, high = raw < 0, raw > g - 1
    inside = ~(low | high)
    np.add.at(dense, (rows[inside], raw[inside]), keys[inside])
    # v(i) = v(0) + i (v(1) - v(0)) below, v(L) + (i - L) (v(L) - v(L - 1)) above
    np.add.at(dense, (rows[low], 0), keys[low] * (1 - raw[low]))
    np.add.at(dense, (rows[low], 1), keys[low] * raw[low])
    over = raw[high] - (g - 1)
    np.add.at(dense, (rows[high], g - 1), keys[high] * (1 + over))
    np.add.at(dense, (rows[high], g - 2), -keys[high] * over)
    first = np.clip(base - 1, 0, max(0, g - 4))
    idx = np.minimum(first[:, None] + np.arange(4), g - 1)
    w = np.take_along_axis(dense, idx, axis=1)
    w[:, 1:][idx[:, 1:] == idx[:, :-1]] = 0.0  # fewer than 4 patches: count each once
    return idx, w


def dense_shift_field(
    patch_shifts: np.ndarray, centres: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]
) -> np.ndarray:
    """One frame's per-pixel shift field from its patch shifts.

    Parameters
    ----------
    patch_shifts : ndarray, shape (n_py, n_px, 2)
        (dy, dx) in px of each patch.
    centres : (ndarray (n_py,), ndarray (n_px,))
        Patch centres in px (:attr:`PatchGrid.centres`).
    shape : (int, int)
        Frame shape (y, x).

    Returns
    -------
    ndarray, shape (2, y, x), float64
        (dy, dx) at every pixel: the separable Keys cubic interpolation of the grid that
        :func:`apply_patch_shifts` uses.
    """
    g = np.asarray(patch_shifts, dtype=np.float64)
    ry, wy = grid_taps(centres[0], int(shape[0]))
    cx, wx = grid_taps(centres[1], int(shape[1]))
    along_x = np.einsum("xk,gxkc->gxc", wx, g[:, cx])  # (n_py, x, 2)
    field = np.einsum("yk,ykxc->yxc", wy, along_x[ry])  # (y, x, 2)
    return np.moveaxis(field, -1, 0)


_MODES = {"nan": 0, "zero": 1, "edge": 2, "crop": 2}


@functools.cache
def _warp_kernel() -> Any:
    """numba CPU kernel (compiled once, cached on disk): resample frames at a dense shift field.

    Serial over the frames ``start:stop`` and ``nogil``; spread over threads by
    :func:`~napari_calcium.core._threads.in_threads`. Its array twin is :func:`_warp_frames_xp`.
    """
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(frames, grid, ry, wy, cx, wx, cubic, mode, out, start, stop):  # pragma: no cover
        ny, nx = frames.shape[1], frames.shape[2]
        gy = grid.shape[1]
        along = np.empty((2, gy, nx))
        src_y = np.empty(nx)
        src_x = np.empty(nx)
        nan = np.float32(np.nan)
        tol = 1e-6
        for f in range(start, stop):
            fr = frames[f]
            o = out[f]
            for g in range(gy):  # the patch grid interpolated along x
                for j in range(nx):
                    a0 = 0.0
                    a1 = 0.0
                    for k in range(4):
                        a0 += wx[j, k] * grid[f, g, cx[j, k], 0]
                        a1 += wx[j, k] * grid[f, g, cx[j, k], 1]
                    along[0, g, j] = a0
                    along[1, g, j] = a1
            for i in range(ny):
                q0, q1, q2, q3 = ry[i, 0], ry[i, 1], ry[i, 2], ry[i, 3]
                p0, p1, p2, p3 = wy[i, 0], wy[i, 1], wy[i, 2], wy[i, 3]
                for j in range(nx):  # ... then along y: where this row's pixels come from
                    src_y[j] = i + (
                        p0 * along[0, q0, j] + p1 * along[0, q1, j]
                        + p2 * along[0, q2, j] + p3 * along[0, q3, j]
                    )  # fmt: skip
                    src_x[j] = j + (
                        p0 * along[1, q0, j] + p1 * along[1, q1, j]
                        + p2 * along[1, q2, j] + p3 * along[1, q3, j]
                    )  # fmt: skip
                for j in range(nx):
                    sy = src_y[j]
                    sx = src_x[j]
                    if mode != 2 and (
                        sy < -tol or sy > ny - 1 + tol or sx < -tol or sx > nx - 1 + tol
                    ):
                        o[i, j] = nan if mode == 0 else np.float32(0.0)
                        continue
                    by = math.floor(sy)
                    bx = math.floor(sx)
                    ty = np.float32(sy - by)
                    tx = np.float32(sx - bx)
                    if cubic:  # Keys (a = -0.5) weights of taps -1, 0, 1, 2
                        t2 = ty * ty
                        t3 = t2 * ty
                        u0 = np.float32(-0.5) * t3 + t2 - np.float32(0.5) * ty
                        u1 = np.float32(1.5) * t3 - np.float32(2.5) * t2 + np.float32(1.0)
                        u2 = np.float32(-1.5) * t3 + np.float32(2.0) * t2 + np.float32(0.5) * ty
                        u3 = np.float32(0.5) * t3 - np.float32(0.5) * t2
                        t2 = tx * tx
                        t3 = t2 * tx
                        v0 = np.float32(-0.5) * t3 + t2 - np.float32(0.5) * tx
                        v1 = np.float32(1.5) * t3 - np.float32(2.5) * t2 + np.float32(1.0)
                        v2 = np.float32(-1.5) * t3 + np.float32(2.0) * t2 + np.float32(0.5) * tx
                        v3 = np.float32(0.5) * t3 - np.float32(0.5) * t2
                    else:
                        u0, u1, u2, u3 = np.float32(0.0), np.float32(1.0) - ty, ty, np.float32(0.0)
                        v0, v1, v2, v3 = np.float32(0.0), np.float32(1.0) - tx, tx, np.float32(0.0)
                    if by >= 1 and by + 2 < ny and bx >= 1 and bx + 2 < nx:
                        r0, r1, r2, r3 = by - 1, by, by + 1, by + 2
                        c0, c1, c2, c3 = bx - 1, bx, bx + 1, bx + 2
                    else:  # near the edge: read beyond it as the edge value
                        r0 = min(max(by - 1, 0), ny - 1)
                        r1 = min(max(by, 0), ny - 1)
                        r2 = min(max(by + 1, 0), ny - 1)
                        r3 = min(max(by + 2, 0), ny - 1)
                        c0 = min(max(bx - 1, 0), nx - 1)
                        c1 = min(max(bx, 0), nx - 1)
                        c2 = min(max(bx + 1, 0), nx - 1)
                        c3 = min(max(bx + 2, 0), nx - 1)
                    h0 = (v0 * np.float32(fr[r0, c0]) + v1 * np.float32(fr[r0, c1])
                          + v2 * np.float32(fr[r0, c2]) + v3 * np.float32(fr[r0, c3]))  # fmt: skip
                    h1 = (v0 * np.float32(fr[r1, c0]) + v1 * np.float32(fr[r1, c1])
                          + v2 * np.float32(fr[r1, c2]) + v3 * np.float32(fr[r1, c3]))  # fmt: skip
                    h2 = (v0 * np.float32(fr[r2, c0]) + v1 * np.float32(fr[r2, c1])
                          + v2 * np.float32(fr[r2, c2]) + v3 * np.float32(fr[r2, c3]))  # fmt: skip
                    h3 = (v0 * np.float32(fr[r3, c0]) + v1 * np.float32(fr[r3, c1])
                          + v2 * np.float32(fr[r3, c2]) + v3 * np.float32(fr[r3, c3]))  # fmt: skip
                    o[i, j] = u0 * h0 + u1 * h1 + u2 * h2 + u3 * h3

    return kernel


def _warp_frames_xp(x: Any, grid: np.ndarray, taps: tuple, cubic: bool, mode: int, xp: Any) -> Any:
    """Array-expression twin of the numba kernel (cupy's path): the same field and taps."""
    n, ny, nx = x.shape
    ry, wy, cx, wx = (xp.asarray(a) for a in taps)
    out = xp.empty((n, ny, nx), dtype=xp.float32)
    iy = xp.arange(ny, dtype=xp.float64)[:, None]
    ix = xp.arange(nx, dtype=xp.float64)[None, :]
    for f in range(n):
        g = xp.asarray(grid[f], dtype=xp.float64)
        along = (wx[None, :, :, None] * g[:, cx]).sum(axis=2)  # (gy, nx, 2)
        field = (wy[:, :, None, None] * along[ry]).sum(axis=1)  # (ny, nx, 2)
        sy = iy + field[..., 0]
        sx = ix + field[..., 1]
        by = xp.floor(sy)
        bx = xp.floor(sx)
        ty, tx = (sy - by).astype(xp.float32), (sx - bx).astype(xp.float32)
        if cubic:
            t2, t3 = ty * ty, ty * ty * ty
            uw = (-0.5 * t3 + t2 - 0.5 * ty, 1.5 * t3 - 2.5 * t2 + 1.0,
                  -1.5 * t3 + 2.0 * t2 + 0.5 * ty, 0.5 * t3 - 0.5 * t2)  # fmt: skip
            t2, t3 = tx * tx, tx * tx * tx
            vw = (-0.5 * t3 + t2 - 0.5 * tx, 1.5 * t3 - 2.5 * t2 + 1.0,
                  -1.5 * t3 + 2.0 * t2 + 0.5 * tx, 0.5 * t3 - 0.5 * t2)  # fmt: skip
        else:
            zero = xp.zeros_like(ty)
            uw = (zero, 1.0 - ty, ty, zero)
            vw = (zero, 1.0 - tx, tx, zero)
        by = by.astype(xp.int64)
        bx = bx.astype(xp.int64)
        frame = xp.asarray(x[f], dtype=xp.float32)
        cols = [xp.clip(bx - 1 + m, 0, nx - 1) for m in range(4)]
        res = None
        for k in range(4):
            r = xp.clip(by - 1 + k, 0, ny - 1)
            h = vw[0] * frame[r, cols[0]] + vw[1] * frame[r, cols[1]]
            h = h + vw[2] * frame[r, cols[2]] + vw[3] * frame[r, cols[3]]
            res = uw[k] * h if res is None else res + uw[k] * h
        if mode != 2:
            tol = 1e-6
            outside = (sy < -tol) | (sy > ny - 1 + tol) | (sx < -tol) | (sx > nx - 1 + tol)
            res = xp.where(outside, xp.float32(np.nan if mode == 0 else 0.0), res)
        out[f] = res
    return out


def warp_frames(
    block: Any,
    patch_shifts: np.ndarray,
    centres: tuple[np.ndarray, np.ndarray],
    xp: Any,
    *,
    interpolation: str,
    border: str,
    use_numba: bool = True,
) -> Any:
    """Correct each frame: ``out[f](y, x) = block[f](y + dy_f(y, x), x + dx_f(y, x))``, float32.

    The field is :func:`dense_shift_field` of ``patch_shifts[f]`` (n, n_py, n_px, 2); samples
    beyond the edge read the edge value; pixels whose source lies outside the frame become NaN
    (``border="nan"``), 0 (``"zero"``) or keep the edge-extended sample (``"edge"``, ``"crop"``).
    numpy blocks go through a numba kernel (unless `use_numba` is False), other namespaces
    through the same algorithm as an array expression.
    """
    ny, nx = int(block.shape[1]), int(block.shape[2])
    ry, wy = grid_taps(centres[0], ny)
    cx, wx = grid_taps(centres[1], nx)
    grid = np.ascontiguousarray(patch_shifts, dtype=np.float64)
    cubic = interpolation == "cubic"
    mode = _MODES[border]
    if xp is np and use_numba:
        # float32 first: converting each of the 16 taps of every pixel costs more than one pass
        frames = np.ascontiguousarray(block, dtype=np.float32)
        out = np.empty(frames.shape, dtype=np.float32)
        if frames.shape[0]:
            args = (frames, grid, ry, wy, cx, wx, cubic, mode, out)
            in_threads(_warp_kernel(), args, frames.shape[0], "napari-calcium-warp")
        return out
    return _warp_frames_xp(xp.asarray(block), grid, (ry, wy, cx, wx), cubic, mode, xp)


def field_extremes(
    patch_shifts: np.ndarray, centres: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame smallest and largest (dy, dx) of the dense field, each (frames, 2), float64.

    Evaluated on every 4th row and column (and the last), plus a 0.01 px margin: the field is
    smooth on the scale of the patches.
    """
    ys = np.unique(np.r_[np.arange(0, shape[0], 4), shape[0] - 1])
    xs = np.unique(np.r_[np.arange(0, shape[1], 4), shape[1] - 1])
    ry, wy = grid_taps(centres[0], int(shape[0]))
    cx, wx = grid_taps(centres[1], int(shape[1]))
    ry, wy, cx, wx = ry[ys], wy[ys], cx[xs], wx[xs]
    g = np.asarray(patch_shifts, dtype=np.float64)  # (n, gy, gx, 2)
    along = np.einsum("xk,ngxkc->ngxc", wx, g[:, :, cx])
    field = np.einsum("yk,nykxc->nyxc", wy, along[:, ry])
    return field.min(axis=(1, 2)) - 0.01, field.max(axis=(1, 2)) + 0.01


def patch_valid_box(
    patch_shifts: np.ndarray, centres: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: a region whose source lies inside the frame in every frame."""
    if len(patch_shifts) == 0:
        return 0, shape[0], 0, shape[1]
    lo, hi = field_extremes(patch_shifts, centres, shape)
    return valid_box(np.concatenate([lo, hi]), shape)


def _check_patch_shifts(patch_shifts: Any, n_frames: int) -> np.ndarray:
    arr = np.asarray(to_host(patch_shifts), dtype=np.float64)
    if arr.ndim != 4 or arr.shape[0] != n_frames or arr.shape[3] != 2:
        raise ShapeError(
            f"patch_shifts has shape {arr.shape}; expected (frames, n_py, n_px, 2) with "
            f"{n_frames} frames"
        )
    if not np.isfinite(arr).all():
        raise ParameterError("patch_shifts must be finite (no NaN or inf)")
    return arr


def _check_centres(centres: Any, grid_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(centres, tuple | list) or len(centres) != 2:
        raise ParameterError("patch_centres must be a pair (rows, columns) of patch centres in px")
    cy, cx = (np.asarray(c, dtype=np.float64).ravel() for c in centres)
    if (len(cy), len(cx)) != tuple(grid_shape):
        raise ShapeError(
            f"patch_centres have {len(cy)} rows and {len(cx)} columns; patch_shifts has "
            f"{grid_shape[0]} x {grid_shape[1]} patches"
        )
    for c in (cy, cx):
        if len(c) > 1 and not (np.diff(c) > 0).all():
            raise ParameterError("patch_centres must increase along each axis")
    return cy, cx


def _correct_block(block, patch_shifts, *, centres, interpolation, border, dtype, box, xp=None):
    xp = array_module(block) if xp is None else xp
    out = warp_frames(block, patch_shifts, centres, xp, interpolation=interpolation, border=border)
    if border == "crop":
        out = out[:, box[0] : box[1], box[2] : box[3]]
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        out = xp.clip(xp.rint(out), info.min, info.max)
    return out.astype(dtype, copy=False)


def apply_patch_shifts(
    movie: Any,
    patch_shifts: Any,
    patch_centres: tuple[Any, Any],
    *,
    interpolation: str = "cubic",
    border: str = "nan",
    dtype: Any = np.float32,
    block_frames: int | None = None,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Any:
    """Remove piecewise-rigid displacements: ``out[t, y, x] = movie[t, y + dy, x + dx]``.

    ``(dy, dx)`` varies over the frame: the patch shifts interpolated to every pixel
    (:func:`dense_shift_field`). Use it to correct another channel with the shifts of a
    :func:`~napari_calcium.core.movie.motion.rigid.motion_correct` result
    (``result.apply(movie)`` does this).

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask or cupy.
    patch_shifts : array_like, shape (frames, n_py, n_px, 2)
        (dy, dx) in px of each patch of each frame (``result.patch_shifts``).
    patch_centres : (array (n_py,), array (n_px,))
        Patch centres in px (``result.patch_centres``), increasing.
    interpolation : {"cubic", "linear"}, optional
        Keys cubic (a = -0.5, 4 x 4 taps) or bilinear resampling of the frame.
    border : {"nan", "zero", "edge", "crop"}, optional
        Pixels whose source lies outside the frame become NaN, 0 or the edge-extended sample;
        ``"crop"`` keeps the region valid in every frame.
    dtype : numpy dtype, optional
        Output dtype (float32 by default); integers are rounded and clipped.
    block_frames, progress, should_stop : optional
        As in :func:`~napari_calcium.core.movie.motion.rigid.apply_shifts`.

    Returns
    -------
    array, shape (frames, y, x) or cropped
        On the movie's array module; lazy (``map_blocks``) for a dask movie.

    Raises
    ------
    ShapeError, ParameterError
        For shifts or centres of the wrong shape, non-finite shifts or a bad option.
    OperationCancelled
        When `should_stop` returns True.
    """
    movie = _check_movie(movie)
    patch_shifts = _check_patch_shifts(patch_shifts, int(movie.shape[0]))
    centres = _check_centres(patch_centres, patch_shifts.shape[1:3])
    interpolation = _choice(interpolation, "interpolation", PIECEWISE_INTERPOLATIONS)
    border = _choice(border, "border", BORDERS)
    out_dtype = _check_dtype(dtype, border)
    ny, nx = int(movie.shape[1]), int(movie.shape[2])
    box = patch_valid_box(patch_shifts, centres, (ny, nx)) if border == "crop" else (0, ny, 0, nx)
    if border == "crop" and (box[1] <= box[0] or box[3] <= box[2]):
        raise ParameterError(
            "border='crop' leaves no pixel valid in every frame (the shifts span the whole frame); "
            "use border='nan'"
        )
    return correct_frames(
        movie, patch_shifts, _correct_block, box=box, dtype=out_dtype, block_frames=block_frames,
        progress=progress, should_stop=should_stop,
        desc="motion correction: applying patch shifts", centres=centres,
        interpolation=interpolation, border=border,
    )  # fmt: skip
