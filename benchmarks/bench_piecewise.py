"""Speed and accuracy of piecewise-rigid (NoRMCorre) motion correction, beside rigid.

The movie is a textured, cell-like scene (blobs of soma size, fine texture and a smooth
background, about 0-150 counts plus Gaussian noise of 3) warped by a smooth displacement field:
a rigid shift of up to 3 px plus a non-rigid part of 2-4 px that varies across the field (a
sinusoid of 2.5 frame widths) and changes every frame. The true correction field is the fixed
point ``d(q) = u(q + d(q))`` of the forward warp ``u``. 300 x 512 x 512 float32
(``--quick``: 60 x 256 x 256), generated once before any timing. Rows:

a. rigid ``motion_correct`` with the true template given (estimate + apply), and end to end
   (template built from 200 frames x 3 rounds + estimate + apply);
b. piecewise ``motion_correct(piecewise=True)``, the same two ways (patch 128 px, overlap 32 px;
   ``--quick``: 64 / 32), max deviation 5 px (the non-rigid part reaches 4.3 px);
c. the piecewise parts alone: patch-shift estimation and the dense-field warp;
d. accuracy: RMS (px) of the estimated minus the true per-pixel displacement, inside the frame
   between the outer patch centres, on every 10th frame, for rigid and piecewise;
e. CaImAn's NoRMCorre (``MotionCorrect(pw_rigid=True)``) when ``caiman`` imports; otherwise a
   skipped row saying so.

Throughput is frames (and megabytes of float32 input) per second.

Run it through the runner: ``python benchmarks/run.py --only piecewise [--quick]``.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage as ndi

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import time_call
from napari_calcium.core.movie.motion import piecewise as pw
from napari_calcium.core.movie.motion.rigid import estimate_shifts, motion_correct

IMPLEMENTATION = "napari-calcium"
EXTRA_PACKAGES = ("caiman",)


def _scene(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    ny, nx = shape
    img = np.zeros(shape)
    n = ny * nx // 250
    img[rng.integers(0, ny, n), rng.integers(0, nx, n)] = rng.uniform(0.5, 1.5, n)
    img = ndi.gaussian_filter(img, 3.0) * 2000
    img += ndi.gaussian_filter(rng.normal(size=shape), 1.5) * 20
    img += ndi.gaussian_filter(rng.normal(size=shape), 12) * 600
    return img + 100.0


def _displacement(params, shape, yy, xx):
    ry, rx, ay, ax, py, px = params
    wy, wx = yy / shape[0] - 0.5, xx / shape[1] - 0.5
    dy = ry + ay * np.sin(2 * np.pi * wx / 2.5 + py) * np.cos(np.pi * wy / 2.0)
    dx = rx + ax * np.sin(2 * np.pi * wy / 2.5 + px) * np.cos(np.pi * wx / 2.0)
    return dy, dx


def warped_movie(n_frames: int, side: int, seed: int = 0, truth_every: int = 10):
    """(movie float32, scene float32, {frame: true field (2, y, x)} for every `truth_every`)."""
    rng = np.random.default_rng(seed)
    shape = (side, side)
    scene = _scene(shape, rng)
    yy, xx = np.mgrid[0:side, 0:side].astype(float)
    movie = np.empty((n_frames, side, side), np.float32)
    truth = {}
    for t in range(n_frames):
        sign = rng.choice([-1, 1], 2)
        params = (*rng.uniform(-3, 3, 2), *(rng.uniform(2, 4, 2) * sign),
                  *rng.uniform(-0.5, 0.5, 2))  # fmt: skip
        u = _displacement(params, shape, yy, xx)
        movie[t] = ndi.map_coordinates(scene, [yy - u[0], xx - u[1]], order=3, mode="reflect")
        if t % truth_every == 0:
            d = u
            for _ in range(12):
                d = _displacement(params, shape, yy + d[0], xx + d[1])
            truth[t] = np.stack(d)
    movie += rng.normal(0, 3.0, movie.shape).astype(np.float32)
    return movie, scene.astype(np.float32), truth


def _residual(field_of, truth: dict, inner: slice) -> float:
    errors = [np.sum((field_of(t) - d)[:, inner, inner] ** 2, axis=0) for t, d in truth.items()]
    return float(np.sqrt(np.mean(errors)))


def run(quick: bool = False) -> list[Row]:
    """Time rigid and piecewise motion correction and measure their residual displacement.

    Parameters
    ----------
    quick : bool, optional
        A small movie and one repeat, for a smoke run of a few seconds.

    Returns
    -------
    list of Row
        Rows (a) to (e) of the module docstring.
    """
    n_frames, side, patch, overlap = (60, 256, 64, 32) if quick else (300, 512, 128, 32)
    repeat = 1 if quick else 3
    t0 = time.perf_counter()
    movie, scene, truth = warped_movie(n_frames, side)
    made_s = time.perf_counter() - t0
    size = f"{n_frames}x{side}x{side} float32"
    work = {"frames": n_frames, "MB": movie.nbytes / 1e6}
    options = {"max_shift_px": 10, "piecewise": True, "patch_px": patch, "overlap_px": overlap,
               "max_deviation_px": 5.0}  # fmt: skip
    rows: list[Row] = []
    results = {}

    def correct(key, **kwargs):
        def call():
            results[key] = motion_correct(movie, **kwargs)

        return call

    cases = [
        ("rigid", "rigid, template given (estimate + apply)", {"template": scene,
                                                              "max_shift_px": 10}),
        ("rigid_all", "rigid, end to end (template + estimate + apply)", {"max_shift_px": 10}),
        ("pw", "piecewise, template given (estimate + apply)", {"template": scene, **options}),
        ("pw_all", "piecewise, end to end (template + estimate + apply)", options),
    ]  # fmt: skip
    for key, bench, kwargs in cases:
        timing = time_call(correct(key, **kwargs), repeat=repeat, warmup=1)
        note = f"movie generated in {made_s:.0f} s, untimed" if key == "rigid" else ""
        if key.startswith("pw"):
            note = f"patch {patch} px, overlap {overlap} px, max deviation 5 px, cubic"
        rows.append(Row(f"motion correction: {bench}", IMPLEMENTATION, size, timing, work,
                        notes=note))  # fmt: skip

    # (c) the piecewise parts
    res = results["pw"]
    grid = pw.patch_grid((side, side), (patch, patch), (overlap, overlap))
    est = pw.make_patch_estimator(
        movie, grid, max_deviation_px=5.0, upsample_factor=10, highpass_sigma_px=None,
        smooth_sigma_px=1.15, whitening=1.0,
    )  # fmt: skip
    rigid_shifts = estimate_shifts(movie, scene, max_shift_px=10).shifts
    t_est = time_call(lambda: pw.estimate_patch_shifts(movie, scene, rigid_shifts, est),
                      repeat=repeat)  # fmt: skip
    rows.append(Row("piecewise: patch-shift estimation", IMPLEMENTATION, size, t_est, work,
                    notes=f"{grid.grid_shape[0]}x{grid.grid_shape[1]} patches of {patch} px, "
                    "batched rfft2 (scipy.fft workers=-1) + upsampled DFT"))  # fmt: skip
    t_app = time_call(lambda: pw.apply_patch_shifts(movie, res.patch_shifts, res.patch_centres),
                      repeat=repeat)  # fmt: skip
    note = "numba kernel: Keys-cubic field from the patch grid, 4x4 Keys taps"
    rows.append(Row("piecewise: dense-field warp (cubic)", IMPLEMENTATION, size, t_app, work,
                    notes=note))  # fmt: skip

    # (d) accuracy
    inner = slice(patch // 2, side - patch // 2)
    rigid_rms = _residual(lambda t: results["rigid"].shifts[t][:, None, None], truth, inner)
    pw_rms = _residual(res.shift_field, truth, inner)
    for name, value in (("rigid", rigid_rms), ("piecewise", pw_rms)):
        note = (f"{value:.3f} px vs the true field (every 10th frame, inside "
                f"[{inner.start}, {inner.stop}) px)")  # fmt: skip
        rows.append(Row(f"residual displacement RMS ({name})", IMPLEMENTATION, size, None, {},
                        notes=note, params={"rms_px": value}))  # fmt: skip
    rows.extend(_caiman_rows(size))
    return rows


def _caiman_rows(size: str) -> list[Row]:
    """CaImAn's NoRMCorre: a skipped row saying why (it is installed in no venv here)."""
    bench = "motion correction: piecewise, template given (estimate + apply)"
    if optional_import("caiman.motion_correction") is None:
        return [skipped_row(bench, "CaImAn", size, "caiman is not importable in this environment")]
    return [  # pragma: no cover - CaImAn needs files on disk; not wired up yet
        skipped_row(bench, "CaImAn", size, "caiman imports, but this benchmark does not run it yet")
    ]
