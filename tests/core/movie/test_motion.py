"""Tests of napari_calcium.core.movie.motion: rigid motion correction on the synthetic generator.

Accuracy is measured against ``simulate_recording(..., motion_px=...)``, whose ``truth.shifts``
follow the same sign convention as ours: ``movie[t, y, x] ≈ scene(y - dy, x - dx)``.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcium.core._backend import gpu_available
from napari_calcium.core.movie.motion import phase_correlation, shifting
from napari_calcium.core.movie.motion.rigid import (
    MotionCorrectionResult,
    apply_shifts,
    build_template,
    estimate_shifts,
    motion_correct,
)
from napari_calcium.core.synthetic.recording import simulate_recording
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError

SIZE = {"n_frames": 500, "shape": (128, 128), "n_neurons": 30}


def rms(error: np.ndarray) -> float:
    """Root-mean-square length of (frames, 2) displacement errors, in pixels."""
    return float(np.sqrt(np.mean(np.sum(error**2, axis=1))))


def laplacian_sharpness(image: np.ndarray, margin: int = 8) -> float:
    """Variance of the Laplacian of the image interior, relative to its squared mean."""
    inner = np.asarray(image, np.float64)[margin:-margin, margin:-margin]
    return float(ndi.laplace(inner)[1:-1, 1:-1].var() / inner.mean() ** 2)


def gradient_sharpness(image: np.ndarray, margin: int = 8) -> float:
    """Mean gradient magnitude of the image interior, relative to its mean."""
    inner = np.asarray(image, np.float64)[margin:-margin, margin:-margin]
    return float(np.mean(np.hypot(*np.gradient(inner))) / inner.mean())


@pytest.fixture(scope="module")
def moving():
    return simulate_recording(**SIZE, motion_px=3, seed=7)


@pytest.fixture(scope="module")
def still():
    """The same scene, activity and noise streams without motion."""
    return simulate_recording(**SIZE, motion_px=0, seed=7)


@pytest.fixture(scope="module")
def corrected(moving):
    return motion_correct(moving.movie)


@pytest.fixture(scope="module")
def small():
    return simulate_recording(n_frames=60, shape=(64, 64), n_neurons=8, motion_px=2, seed=3)


# --------------------------------------------------------------------------------------------------
# Accuracy on the generator
# --------------------------------------------------------------------------------------------------
def test_recovers_generator_shifts_relative_to_median_position(moving, corrected):
    """Built template: shifts = truth - median(truth), no fitted offset, ≤ 0.1 px RMS."""
    assert isinstance(corrected, MotionCorrectionResult)
    truth = moving.truth.shifts
    assert corrected.shifts.shape == (SIZE["n_frames"], 2)
    np.testing.assert_allclose(np.median(corrected.shifts, axis=0), 0.0, atol=1e-12)
    error = corrected.shifts - (truth - np.median(truth, axis=0))
    assert rms(error) <= 0.1, rms(error)
    assert np.abs(error).max() < 0.3
    assert np.all(corrected.peak_correlation > 0) and np.all(corrected.peak_correlation <= 1)


def test_given_motion_free_template_gives_the_generator_shifts(moving, still):
    """Against the motion-free scene the estimate is truth.shifts itself: same sign, no offset."""
    template = still.movie.mean(axis=0)
    est = estimate_shifts(moving.movie, template, max_shift_px=6)
    error = est.shifts - moving.truth.shifts
    assert rms(error) <= 0.1, rms(error)
    assert np.abs(error.mean(axis=0)).max() < 0.05


def test_corrected_mean_image_is_sharper(moving, still, corrected):
    raw = moving.movie.mean(axis=0)
    fixed = np.nanmean(corrected.movie, axis=0)
    reference = still.movie.mean(axis=0)
    lap_raw, lap_fixed, lap_ref = map(laplacian_sharpness, (raw, fixed, reference))
    assert lap_fixed > 2.0 * lap_raw, (lap_raw, lap_fixed)
    assert lap_fixed > 0.8 * lap_ref, (lap_fixed, lap_ref)
    grad_raw, grad_fixed, grad_ref = map(gradient_sharpness, (raw, fixed, reference))
    assert grad_fixed > 1.08 * grad_raw, (grad_raw, grad_fixed)
    assert grad_fixed > 0.97 * grad_ref, (grad_fixed, grad_ref)


def test_apply_generator_shifts_recovers_the_motion_free_movie(moving, still):
    """apply_shifts(movie, truth.shifts) undoes the generator's motion (sign of apply_shifts)."""
    fixed = apply_shifts(moving.movie, moving.truth.shifts, border="nan")
    mean_fixed, mean_still = np.nanmean(fixed, axis=0)[8:-8, 8:-8], still.movie.mean(0)[8:-8, 8:-8]
    assert np.corrcoef(mean_fixed.ravel(), mean_still.ravel())[0, 1] > 0.995
    wrong = apply_shifts(moving.movie, -moving.truth.shifts, border="edge").mean(0)[8:-8, 8:-8]
    assert np.abs(mean_fixed - mean_still).mean() < 0.5 * np.abs(wrong - mean_still).mean()


def test_highpass_rescues_one_photon_like_data(moving):
    """A bright static background (illumination, out-of-focus glow) pins plain phase correlation
    towards zero shift; the spatial high-pass (CaImAn's gSig_filt) removes it from estimation."""
    yy, xx = np.mgrid[:128, :128]
    glow = 10000.0 * np.exp(-((yy - 50.0) ** 2 + (xx - 70.0) ** 2) / (2 * 35.0**2))
    movie = moving.movie[:200].astype(np.float32) + glow.astype(np.float32)
    truth = moving.truth.shifts[:200]
    errors = {}
    for sigma in (None, 6.0):
        res = motion_correct(movie, highpass_sigma_px=sigma, max_shift_px=8, n_template_frames=100)
        errors[sigma] = rms(res.shifts - (truth - np.median(truth, axis=0)))
    assert errors[6.0] <= 0.1, errors
    assert errors[None] > 0.1 and errors[None] > 2 * errors[6.0], errors


@pytest.mark.parametrize("max_shift_px", [1, (1, 2.7)])
def test_shifts_never_exceed_max_shift(moving, max_shift_px):
    res = motion_correct(moving.movie[:120], max_shift_px=max_shift_px, n_template_frames=60)
    limit = np.broadcast_to(np.floor(max_shift_px), (2,))
    assert np.all(np.abs(res.shifts) <= limit + 1e-12)
    assert np.any(np.isclose(np.abs(res.shifts), limit))  # motion of 3 px does hit the limit


def test_registering_a_corrected_movie_with_nan_borders_finds_no_motion(corrected):
    again = estimate_shifts(corrected.movie[:100], corrected.template)
    assert np.isfinite(again.shifts).all()
    assert np.abs(again.shifts).max() < 0.2


def test_upsample_factor_one_gives_whole_pixels(small):
    template = build_template(small.movie, max_shift_px=4, upsample_factor=1)
    est = estimate_shifts(small.movie, template, max_shift_px=4, upsample_factor=1)
    np.testing.assert_array_equal(est.shifts, np.round(est.shifts))


# --------------------------------------------------------------------------------------------------
# Chunking, dask, memmap, backends
# --------------------------------------------------------------------------------------------------
def test_chunked_estimation_equals_whole(moving, corrected):
    """Frames are independent given the template: any block size gives the same numbers."""
    movie = moving.movie[:200]
    whole = estimate_shifts(movie, corrected.template, block_frames=200)
    for block_frames in (1, 7, 64):
        chunked = estimate_shifts(movie, corrected.template, block_frames=block_frames)
        np.testing.assert_array_equal(chunked.shifts, whole.shifts)
        np.testing.assert_array_equal(chunked.peak_correlation, whole.peak_correlation)


def test_chunked_application_equals_whole(small):
    shifts = small.truth.shifts
    whole = apply_shifts(small.movie, shifts, block_frames=60)
    chunked = apply_shifts(small.movie, shifts, block_frames=7)
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("border", ["nan", "crop"])
def test_dask_input_gives_lazy_output_equal_to_numpy(small, border):
    lazy_in = da.from_array(small.movie, chunks=(16, 32, 64))
    res_np = motion_correct(small.movie, max_shift_px=4, border=border)
    res_da = motion_correct(lazy_in, max_shift_px=4, border=border)
    assert isinstance(res_da.movie, da.Array)
    assert res_da.movie.chunks[0] == (16, 16, 16, 12)
    np.testing.assert_array_equal(res_da.shifts, res_np.shifts)
    np.testing.assert_array_equal(res_da.movie.compute(), res_np.movie)
    if border == "crop":
        y0, y1, x0, x1 = res_np.valid_box
        assert res_np.movie.shape == (60, y1 - y0, x1 - x0)
        assert not np.isnan(res_np.movie).any()


def test_memmap_input(tmp_path, small):
    path = tmp_path / "movie.u16"
    mm = np.memmap(path, dtype=np.uint16, mode="w+", shape=small.movie.shape)
    mm[:] = small.movie
    mm.flush()
    res_mm = motion_correct(np.memmap(path, dtype=np.uint16, mode="r", shape=mm.shape))
    res_np = motion_correct(small.movie)
    np.testing.assert_array_equal(res_mm.shifts, res_np.shifts)
    np.testing.assert_array_equal(res_mm.movie, res_np.movie)


@pytest.mark.parametrize("interpolation", ["cubic", "linear"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_numba_kernel_matches_its_array_twin(small, interpolation, dtype):
    """The CPU numba kernel and the xp expression (cupy's path) are the same algorithm."""
    block = small.movie[:10].astype(dtype)
    shifts = np.array([[0.3, -1.7], [-4.5, 2.25], [0, 0], [7.9, -0.01], [-0.5, 0.5]] * 2)
    fast = shifting.shift_frames(block, shifts, np, interpolation=interpolation)
    twin = shifting.shift_frames(block, shifts, np, interpolation=interpolation, use_numba=False)
    np.testing.assert_allclose(fast, twin, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("axis", [0, 1])
def test_numba_contraction_matches_einsum(axis):
    """The subpixel step's CPU kernel and the einsum that other namespaces use."""
    rng = np.random.default_rng(1)
    cross = (rng.normal(size=(5, 16, 9)) + 1j * rng.normal(size=(5, 16, 9))).astype(np.complex64)
    vec = np.exp(1j * rng.uniform(0, 6, size=(5, cross.shape[1 + axis]))).astype(np.complex64)
    expected = np.einsum("fyk,fy->fk" if axis == 0 else "fyk,fk->fy", cross, vec)
    np.testing.assert_allclose(
        phase_correlation._contract(np, cross, vec, axis), expected, rtol=1e-5, atol=1e-5
    )


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs a CUDA GPU with CuPy")
def test_cupy_matches_numpy(small):  # pragma: no cover - needs a GPU
    import cupy

    res_np = motion_correct(small.movie, max_shift_px=4)
    res_cp = motion_correct(cupy.asarray(small.movie), max_shift_px=4)
    assert isinstance(res_cp.movie, cupy.ndarray) and isinstance(res_cp.template, cupy.ndarray)
    np.testing.assert_allclose(res_cp.shifts, res_np.shifts, atol=0.02)
    inner = (slice(None), slice(6, -6), slice(6, -6))
    np.testing.assert_allclose(res_cp.movie.get()[inner], res_np.movie[inner], rtol=1e-3, atol=1)


# --------------------------------------------------------------------------------------------------
# apply_shifts: sign, interpolation, borders, dtype
# --------------------------------------------------------------------------------------------------
def test_apply_shifts_moves_content_by_minus_shift():
    movie = np.zeros((2, 16, 16), np.float32)
    movie[:, 8, 9] = 1.0
    for interpolation in ("cubic", "linear", "fourier"):
        out = apply_shifts(movie, [[2.0, -3.0], [0.0, 0.0]], interpolation=interpolation)
        assert np.unravel_index(np.nanargmax(out[0]), (16, 16)) == (6, 12)
        np.testing.assert_allclose(np.nan_to_num(out[0]).sum(), 1.0, atol=1e-5)
        np.testing.assert_allclose(out[1], movie[1], atol=1e-5)


def test_interpolation_accuracy_on_a_smooth_scene():
    """Each method against the analytic shifted scene; cubic is the most accurate here."""
    rng = np.random.default_rng(0)
    centres, amps = rng.uniform(0, 64, (40, 2)), rng.uniform(0.5, 1.5, 40)

    def scene(y, x):
        blobs = [a * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 12.5) for a, (cy, cx) in
                 zip(amps, centres, strict=True)]  # fmt: skip
        return np.sum(blobs, axis=0)

    yy, xx = np.mgrid[:64, :64].astype(float)
    shifts = np.array([[0.5, 0.25], [-1.3, 2.6], [0.1, -0.9]])
    movie = np.stack([scene(yy, xx)] * 3).astype(np.float32)
    truth = np.stack([scene(yy + dy, xx + dx) for dy, dx in shifts])
    inner = (slice(None), slice(8, -8), slice(8, -8))
    error = {}
    for method in shifting.INTERPOLATIONS:
        out = apply_shifts(movie, shifts, interpolation=method)
        error[method] = np.sqrt(np.mean((out[inner] - truth[inner]) ** 2)) / movie.std()
    assert error["cubic"] < 0.005 and error["linear"] < 0.05 and error["fourier"] < 0.02, error
    assert error["cubic"] < error["linear"] / 5, error


def test_borders_and_valid_box():
    movie = np.arange(2 * 10 * 12, dtype=np.float32).reshape(2, 10, 12) + 1
    shifts = np.array([[2.5, -1.0], [-1.0, 0.0]])
    nan = apply_shifts(movie, shifts, border="nan")
    assert np.isnan(nan[0, 7:]).all() and not np.isnan(nan[0, :7, 1:]).any()  # rows > ny - 4
    assert np.isnan(nan[0, :, 0]).all() and np.isnan(nan[1, 0]).all()
    zero = apply_shifts(movie, shifts, border="zero")
    np.testing.assert_array_equal(zero[np.isnan(nan)], 0.0)
    edge = apply_shifts(movie, shifts, border="edge")
    assert not np.isnan(edge).any()
    np.testing.assert_array_equal(edge[0, 8], edge[0, 6])
    crop = apply_shifts(movie, shifts, border="crop")
    assert crop.shape == (2, 6, 11)  # rows [1, 7), columns [1, 12)
    np.testing.assert_array_equal(crop, nan[:, 1:7, 1:])
    assert shifting.valid_box(shifts, (10, 12)) == (1, 7, 1, 12)


def test_integer_output_dtype_is_rounded_and_clipped(small):
    out = apply_shifts(small.movie, small.truth.shifts, dtype=np.uint16, border="edge")
    ref = apply_shifts(small.movie, small.truth.shifts, border="edge")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, np.clip(np.rint(ref), 0, 65535).astype(np.uint16))
    with pytest.raises(ParameterError, match="dtype"):
        apply_shifts(small.movie, small.truth.shifts, dtype=np.uint16, border="nan")


# --------------------------------------------------------------------------------------------------
# Arguments, progress, cancellation
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_shift_px": -1}, "max_shift_px"),
        ({"max_shift_px": 40}, "max_shift_px"),
        ({"max_shift_px": (1, 2, 3)}, "max_shift_px"),
        ({"upsample_factor": 0}, "upsample_factor"),
        ({"upsample_factor": 2.5}, "upsample_factor"),
        ({"highpass_sigma_px": 0}, "highpass_sigma_px"),
        ({"smooth_sigma_px": -1}, "smooth_sigma_px"),
        ({"whitening": 1.5}, "whitening"),
        ({"interpolation": "spline"}, "interpolation"),
        ({"border": "wrap"}, "border"),
        ({"n_template_frames": 0}, "n_template_frames"),
        ({"n_template_iterations": -1}, "n_template_iterations"),
        ({"block_frames": 0}, "block_frames"),
        ({"dtype": "complex64"}, "dtype"),
    ],
)
def test_bad_arguments_raise_parameter_error_naming_them(small, kwargs, name):
    with pytest.raises(ParameterError, match=name):
        motion_correct(small.movie, **kwargs)


def test_bad_shapes_raise_shape_error(small):
    with pytest.raises(ShapeError, match="movie"):
        motion_correct(np.zeros((4, 2, 16, 16)))
    with pytest.raises(ShapeError, match="template"):
        motion_correct(small.movie, template=np.zeros((8, 8)))
    with pytest.raises(ShapeError, match="shifts"):
        apply_shifts(small.movie, np.zeros((3, 2)))
    with pytest.raises(ParameterError, match="finite"):
        apply_shifts(small.movie[:1], [[np.nan, 0.0]])


class Recorder:
    """tqdm-like factory that records what it was told."""

    def __init__(self):
        self.bars = []

    def __call__(self, total=None, desc=None):
        self.bars.append({"total": total, "desc": desc, "done": 0, "closed": False})
        return self

    def update(self, n):
        self.bars[-1]["done"] += n

    def close(self):
        self.bars[-1]["closed"] = True


def test_progress_reports_estimation_and_application(small):
    recorder = Recorder()
    motion_correct(small.movie, block_frames=16, progress=recorder)
    assert [bar["done"] for bar in recorder.bars] == [60, 60]
    assert all(bar["closed"] and bar["total"] == 60 for bar in recorder.bars)
    assert "estimat" in recorder.bars[0]["desc"] and "apply" in recorder.bars[1]["desc"]


@pytest.mark.parametrize("stop_after", [0, 7, 8, 9, 10])
def test_should_stop_cancels(small, stop_after):
    """Cancelled in the template, the estimation or the application pass."""
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > stop_after

    with pytest.raises(OperationCancelled):
        motion_correct(small.movie, block_frames=30, should_stop=should_stop)


def test_given_template_is_kept_and_reported(small):
    template = small.movie.mean(axis=0)
    res = motion_correct(small.movie, template=template, max_shift_px=4)
    np.testing.assert_array_equal(res.template, template.astype(np.float32))
    assert res.parameters["template_given"] is True
    assert res.parameters["max_shift_px"] == (4, 4)
