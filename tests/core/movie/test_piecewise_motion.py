"""Tests of piecewise-rigid motion correction (NoRMCorre; ``motion_correct(piecewise=True)``).

The movie is a textured, cell-like scene warped by a smooth displacement field that varies across
the frame (2-4 px on top of a rigid shift of up to 3 px) and changes every frame, plus noise. The
true correction field ``d`` satisfies ``corrected(q) = movie(q + d(q)) = scene(q)``: with the
forward warp ``movie(p) = scene(p - u(p))`` it is the fixed point ``d(q) = u(q + d(q))``.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcium.core._backend import gpu_available
from napari_calcium.core.movie.motion import piecewise as pw
from napari_calcium.core.movie.motion import warp
from napari_calcium.core.movie.motion.rigid import apply_shifts, motion_correct
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError

SHAPE = (256, 256)
PATCH = {"patch_px": 64, "overlap_px": 32, "max_deviation_px": 5.0}


def textured_scene(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Soma-like blobs, fine texture and a smooth background, float64 (about 0-150)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    img = np.zeros(shape)
    n = ny * nx // 250
    img[rng.integers(0, ny, n), rng.integers(0, nx, n)] = rng.uniform(0.5, 1.5, n)
    img = ndi.gaussian_filter(img, 3.0) * 2000
    img += ndi.gaussian_filter(rng.normal(size=shape), 1.5) * 20
    img += ndi.gaussian_filter(rng.normal(size=shape), 12) * 600
    return img + 100.0


def displacement(params, shape, yy, xx):
    """Forward displacement ``u(p)``: a rigid part plus a smooth non-rigid field (px)."""
    ry, rx, ay, ax, py, px = params
    ny, nx = shape
    wy, wx = yy / ny - 0.5, xx / nx - 0.5
    dy = ry + ay * np.sin(2 * np.pi * wx / 2.5 + py) * np.cos(np.pi * wy / 2.0)
    dx = rx + ax * np.sin(2 * np.pi * wy / 2.5 + px) * np.cos(np.pi * wx / 2.0)
    return dy, dx


def warped_movie(n_frames=24, shape=SHAPE, seed=0, noise=3.0):
    """(movie (frames, y, x) float32, scene (y, x) float32, true field (frames, 2, y, x))."""
    rng = np.random.default_rng(seed + 1)
    scene = textured_scene(shape, seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    movie = np.empty((n_frames, *shape), np.float32)
    truth = np.empty((n_frames, 2, *shape))
    for t in range(n_frames):
        sign = rng.choice([-1, 1], 2)
        params = (*rng.uniform(-3, 3, 2), *(rng.uniform(2, 4, 2) * sign),
                  *rng.uniform(-0.5, 0.5, 2))  # fmt: skip
        u = displacement(params, shape, yy, xx)
        movie[t] = ndi.map_coordinates(scene, [yy - u[0], xx - u[1]], order=3, mode="reflect")
        d = u
        for _ in range(20):  # the correction field: d(q) = u(q + d(q))
            d = displacement(params, shape, yy + d[0], xx + d[1])
        truth[t] = d
    movie += rng.normal(0, noise, movie.shape).astype(np.float32)
    return movie, scene.astype(np.float32), truth


def field_rms(field: np.ndarray, truth: np.ndarray, inner: tuple[slice, slice]) -> float:
    """RMS length (px) of the difference of two (frames, 2, y, x) fields inside `inner`."""
    err = (field - truth)[:, :, inner[0], inner[1]]
    return float(np.sqrt(np.mean(np.sum(err**2, axis=1))))


INNER = (slice(32, -32), slice(32, -32))  # between the outer patch centres (31.5, 223.5)


@pytest.fixture(scope="module")
def warped():
    return warped_movie()


@pytest.fixture(scope="module")
def rigid(warped):
    movie, scene, _ = warped
    return motion_correct(movie, template=scene, max_shift_px=10)


@pytest.fixture(scope="module")
def piecewise(warped):
    movie, scene, _ = warped
    return motion_correct(movie, template=scene, max_shift_px=10, piecewise=True, **PATCH)


# --------------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------------
def test_dense_field_within_0p2_px_where_rigid_leaves_over_1_px(warped, rigid, piecewise):
    _, _, truth = warped
    rigid_field = np.broadcast_to(rigid.shifts[:, :, None, None], truth.shape)
    dense = np.stack([piecewise.shift_field(t) for t in range(len(truth))])
    assert dense.shape == truth.shape
    assert field_rms(rigid_field, truth, INNER) >= 1.0
    assert field_rms(dense, truth, INNER) <= 0.2


def test_corrected_movie_much_closer_to_template_than_rigid(warped, rigid, piecewise):
    _, scene, _ = warped

    def mse(movie):
        return float(np.nanmean((movie[:, INNER[0], INNER[1]] - scene[INNER]) ** 2))

    assert mse(piecewise.movie) < 0.25 * mse(rigid.movie)


def test_result_keeps_rigid_shifts_and_the_patch_grid(warped, rigid, piecewise):
    movie = warped[0]
    np.testing.assert_array_equal(piecewise.shifts, rigid.shifts)
    assert piecewise.piecewise and not rigid.piecewise
    assert piecewise.patch_shifts.shape == (len(movie), 7, 7, 2)
    assert piecewise.patch_peak_correlation.shape == (len(movie), 7, 7)
    cy, cx = piecewise.patch_centres
    np.testing.assert_allclose(cy, np.arange(7) * 32 + 31.5)
    np.testing.assert_allclose(cx, cy)
    deviation = np.abs(piecewise.patch_shifts - piecewise.shifts[:, None, None, :])
    assert deviation.max() <= PATCH["max_deviation_px"] + 1e-9
    assert piecewise.parameters["piecewise"] is True
    assert piecewise.parameters["patch_px"] == [64, 64]
    field = rigid.shift_field(3)
    assert field.shape == (2, *SHAPE)
    np.testing.assert_array_equal(field[:, 5, 7], rigid.shifts[3])


def test_max_deviation_bounds_patch_shifts(warped):
    movie, scene, _ = warped
    res = motion_correct(movie[:6], template=scene, max_shift_px=10, piecewise=True,
                         patch_px=64, overlap_px=32, max_deviation_px=1.0)  # fmt: skip
    deviation = np.abs(res.patch_shifts - res.shifts[:, None, None, :])
    assert deviation.max() <= 1.0 + 1e-9


def test_built_template_improves_on_rigid(warped):
    movie = warped[0]
    rig = motion_correct(movie, max_shift_px=10)
    res = motion_correct(movie, max_shift_px=10, piecewise=True, **PATCH)

    def mse(r):
        return float(np.nanmean((r.movie[:, INNER[0], INNER[1]] - r.template[INNER]) ** 2))

    assert mse(res) < 0.5 * mse(rig)


def test_highpass_template_option_runs(warped):
    movie, scene, truth = warped
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    glow = (200.0 * np.exp(-((yy - 128.0) ** 2 + (xx - 100.0) ** 2) / (2 * 80.0**2))).astype(
        np.float32
    )  # a bright static background that does not move with the tissue
    res = motion_correct(movie[:8] + glow, template=scene + glow, max_shift_px=10,
                         piecewise=True, highpass_sigma_px=6.0, **PATCH)  # fmt: skip
    dense = np.stack([res.shift_field(t) for t in range(8)])
    assert field_rms(dense, truth[:8], INNER) <= 0.3


# --------------------------------------------------------------------------------------------------
# Chunking, dask, reuse
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("border", ["nan", "crop"])
def test_chunked_equals_whole_bit_for_bit(warped, border):
    movie = warped[0][:12]
    whole = motion_correct(movie, piecewise=True, border=border, block_frames=12, **PATCH)
    for block_frames in (1, 5):
        chunked = motion_correct(movie, piecewise=True, border=border,
                                 block_frames=block_frames, **PATCH)  # fmt: skip
        np.testing.assert_array_equal(chunked.shifts, whole.shifts)
        np.testing.assert_array_equal(chunked.patch_shifts, whole.patch_shifts)
        np.testing.assert_array_equal(chunked.patch_peak_correlation, whole.patch_peak_correlation)
        np.testing.assert_array_equal(chunked.movie, whole.movie)
        assert chunked.valid_box == whole.valid_box
    if border == "crop":
        y0, y1, x0, x1 = whole.valid_box
        assert whole.movie.shape == (12, y1 - y0, x1 - x0)
        assert not np.isnan(whole.movie).any()


def test_dask_input_is_lazy_and_equal_to_numpy(warped):
    movie = warped[0][:12]
    lazy = da.from_array(movie, chunks=(5, 128, 256))
    res_np = motion_correct(movie, piecewise=True, **PATCH)
    res_da = motion_correct(lazy, piecewise=True, **PATCH)
    assert isinstance(res_da.movie, da.Array)
    assert res_da.movie.chunks[0] == (5, 5, 2)
    np.testing.assert_array_equal(res_da.patch_shifts, res_np.patch_shifts)
    np.testing.assert_array_equal(res_da.movie.compute(), res_np.movie)


def test_memmap_and_uint16_input(tmp_path, warped):
    movie = np.clip(warped[0][:6], 0, None).astype(np.uint16)
    path = tmp_path / "movie.u16"
    mm = np.memmap(path, dtype=np.uint16, mode="w+", shape=movie.shape)
    mm[:] = movie
    mm.flush()
    res_mm = motion_correct(np.memmap(path, dtype=np.uint16, mode="r", shape=movie.shape),
                            piecewise=True, **PATCH)  # fmt: skip
    res_np = motion_correct(movie, piecewise=True, **PATCH)
    np.testing.assert_array_equal(res_mm.movie, res_np.movie)


def test_apply_to_another_channel(warped, piecewise):
    movie = warped[0]
    again = piecewise.apply(movie)
    np.testing.assert_array_equal(again, piecewise.movie)
    lazy = piecewise.apply(da.from_array(movie, chunks=(7, 256, 256)))
    np.testing.assert_array_equal(lazy.compute(), piecewise.movie)
    direct = pw.apply_patch_shifts(movie, piecewise.patch_shifts, piecewise.patch_centres,
                                   border="zero", dtype=np.uint16)  # fmt: skip
    assert direct.dtype == np.uint16


def test_uniform_patch_shifts_match_the_rigid_correction(warped):
    movie = warped[0][:4]
    shifts = np.array([[1.25, -2.5], [0.0, 0.0], [-3.7, 0.4], [2.0, 2.0]])
    grid = pw.patch_grid(SHAPE, (64, 64), (32, 32))
    patch_shifts = np.broadcast_to(shifts[:, None, None, :], (4, 7, 7, 2))
    for interpolation in ("cubic", "linear"):
        ours = pw.apply_patch_shifts(movie, patch_shifts, grid.centres, border="zero",
                                     interpolation=interpolation)  # fmt: skip
        ref = apply_shifts(movie, shifts, border="zero", interpolation=interpolation)
        np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=1e-5)


def test_dense_field_interpolates_patch_values_at_centres():
    grid = pw.patch_grid((200, 300), (64, 80), (24, 30))
    rng = np.random.default_rng(0)
    values = rng.normal(size=(*grid.grid_shape, 2))
    field = pw.dense_shift_field(values, grid.centres, grid.shape)
    cy, cx = grid.centres
    whole_y, whole_x = cy == np.round(cy), cx == np.round(cx)
    iy, ix = cy[whole_y].astype(int), cx[whole_x].astype(int)
    np.testing.assert_allclose(
        np.moveaxis(field[:, iy][:, :, ix], 0, -1), values[whole_y][:, whole_x], atol=1e-12
    )
    # a field linear in the patch index is reproduced exactly between the centres
    lin = np.stack(np.meshgrid(np.arange(grid.grid_shape[0]), np.arange(grid.grid_shape[1]),
                               indexing="ij"), axis=-1).astype(float)  # fmt: skip
    field = pw.dense_shift_field(lin, grid.centres, grid.shape)
    inner = np.arange(int(np.ceil(cy[0])), int(cy[-1]))
    expected = np.interp(inner, cy, np.arange(len(cy)))
    np.testing.assert_allclose(field[0, inner, 100], expected, atol=1e-9)


@pytest.mark.parametrize("interpolation", ["cubic", "linear"])
@pytest.mark.parametrize("border", ["nan", "zero", "edge"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_numba_warp_matches_its_array_twin(warped, interpolation, border, dtype):
    block = np.clip(warped[0][:3], 0, None).astype(dtype)
    grid = pw.patch_grid(SHAPE, (64, 64), (32, 32))
    rng = np.random.default_rng(1)
    shifts = rng.uniform(-6, 6, (3, 7, 7, 2))
    kwargs = {"interpolation": interpolation, "border": border}
    fast = warp.warp_frames(block, shifts, grid.centres, np, **kwargs)
    twin = warp.warp_frames(block, shifts, grid.centres, np, use_numba=False, **kwargs)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(twin))
    np.testing.assert_allclose(fast, twin, rtol=1e-5, atol=1e-3, equal_nan=True)


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs a CUDA GPU with CuPy")
def test_cupy_matches_numpy(warped):  # pragma: no cover - needs a GPU
    import cupy

    movie, scene, _ = warped
    res_np = motion_correct(movie[:8], template=scene, piecewise=True, **PATCH)
    res_cp = motion_correct(cupy.asarray(movie[:8]), template=cupy.asarray(scene),
                            piecewise=True, **PATCH)  # fmt: skip
    assert isinstance(res_cp.movie, cupy.ndarray)
    np.testing.assert_allclose(res_cp.patch_shifts, res_np.patch_shifts, atol=0.02)
    inner = (slice(None), INNER[0], INNER[1])
    np.testing.assert_allclose(res_cp.movie.get()[inner], res_np.movie[inner], rtol=1e-3, atol=1)


def test_numba_patch_extraction_matches_its_array_twin(warped):
    movie = warped[0][:3]
    grid = pw.patch_grid(SHAPE, (64, 64), (32, 32))
    est = pw.make_patch_estimator(
        movie, grid, max_deviation_px=3, upsample_factor=10, highpass_sigma_px=None,
        smooth_sigma_px=1.15, whitening=1.0,
    )  # fmt: skip
    offsets = np.broadcast_to(est._starts()[None], (3, 49, 2)) + np.array([2, -1])
    offsets = np.clip(offsets, 0, 192)
    fast = est._patches(movie, offsets)
    twin = est._patches(movie, offsets, use_numba=False)
    np.testing.assert_allclose(fast, twin, rtol=1e-4, atol=1e-3)


def test_outlier_patches_are_replaced_by_neighbours():
    shifts = np.zeros((2, 3, 3, 2)) + np.array([1.0, -1.0])
    shifts[0, 1, 1] = [9.0, 9.0]  # a wild patch with a weak peak
    peaks = np.full((2, 3, 3), 0.4, np.float32)
    peaks[0, 1, 1] = 0.05
    rigid = np.array([[0.5, 0.5], [0.5, 0.5]])
    fixed = pw.replace_outliers(shifts, peaks, rigid, ratio=0.5)
    np.testing.assert_array_equal(fixed[0, 1, 1], [1.0, -1.0])
    np.testing.assert_array_equal(fixed[1], shifts[1])
    # no trusted neighbour left: the frame's rigid shift
    peaks[0] = 0.4
    peaks[0, 1:, 1:] = 0.05
    fixed = pw.replace_outliers(shifts, peaks, rigid, ratio=0.5)
    np.testing.assert_array_equal(fixed[0, 2, 2], rigid[0])


def test_textureless_patch_follows_its_neighbours(warped):
    movie, scene, _ = warped
    movie = movie[:6].copy()
    scene = scene.copy()
    flat = (slice(96, 160), slice(96, 160))  # patch (3, 3): pure noise in the frames
    scene[flat] = scene.mean()
    movie[(slice(None), *flat)] = scene.mean() + np.random.default_rng(5).normal(0, 3, (6, 64, 64))
    res = motion_correct(movie, template=scene, max_shift_px=10, piecewise=True, **PATCH)
    centre = res.patch_shifts[:, 3, 3]
    neighbours = np.median(res.patch_shifts[:, 2:5, 2:5].reshape(6, 9, 2), axis=1)
    assert np.abs(centre - neighbours).max() < 1.0


# --------------------------------------------------------------------------------------------------
# Options, errors, hooks
# --------------------------------------------------------------------------------------------------
def test_patch_in_um_equals_patch_in_px(warped):
    movie, scene, _ = warped
    px = motion_correct(movie[:4], template=scene, piecewise=True, **PATCH)
    um = motion_correct(movie[:4], template=scene, piecewise=True, patch_um=32.0,
                        overlap_um=16.0, pixel_size_um=0.5, max_deviation_px=5.0)  # fmt: skip
    np.testing.assert_array_equal(um.patch_shifts, px.patch_shifts)


def test_patch_grid_tiles_the_frame():
    g = pw.patch_grid((512, 500), (128, 128), (32, 32))
    assert g.starts_y[0] == 0 and g.starts_y[-1] == 512 - 128
    assert g.starts_x[-1] == 500 - 128
    assert np.diff(g.starts_y).max() <= 96 and np.diff(g.starts_x).max() <= 96
    one = pw.patch_grid((64, 64), (64, 64), (0, 0))
    assert one.grid_shape == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patch_px": 300}, "patch_px=300 is larger than the frame"),
        ({"patch_px": (64, 400)}, "larger than the frame"),
        ({"patch_px": 64, "overlap_px": 64}, "overlap_px=64 must be smaller than the patch"),
        ({"patch_px": 64, "overlap_px": 80}, "overlap_px"),
        ({"patch_px": -64}, "patch_px must be an integer >= 0"),
        ({"patch_px": 64, "overlap_px": -1}, "overlap_px must be an integer >= 0"),
        ({"patch_px": 4}, "at least 8 px"),
        ({"patch_px": 64.5}, "patch_px"),
        ({"max_deviation_px": -1}, "max_deviation_px"),
        ({"patch_px": 16, "overlap_px": 8, "max_deviation_px": 10}, "max_deviation_px"),
        ({"patch_um": 30.0}, "pixel_size_um"),
        ({"patch_um": 30.0, "pixel_size_um": -1.0}, "pixel_size_um"),
        ({"patch_um": 1000.0, "pixel_size_um": 1.0}, "patch_um=1000.0"),
        ({"interpolation": "fourier"}, "interpolation"),
        ({"patch_outlier_ratio": 2.0}, "patch_outlier_ratio"),
    ],
)
def test_bad_parameters_raise_parameter_error(warped, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        motion_correct(warped[0][:2], piecewise=True, **kwargs)


def test_bad_patch_shifts_raise():
    movie = np.zeros((2, 64, 64), np.float32)
    grid = pw.patch_grid((64, 64), (32, 32), (16, 16))
    with pytest.raises(ShapeError, match="patch_shifts"):
        pw.apply_patch_shifts(movie, np.zeros((2, 3, 2)), grid.centres)
    with pytest.raises(ShapeError, match="patch_centres"):
        pw.apply_patch_shifts(movie, np.zeros((2, 2, 3, 2)), grid.centres)
    with pytest.raises(ParameterError, match="finite"):
        pw.apply_patch_shifts(movie, np.full((2, 3, 3, 2), np.nan), grid.centres)


class Recorder:
    """tqdm-like factory that records what it was told."""

    def __init__(self):
        self.bars = []

    def __call__(self, total=None, desc=None):
        self.bars.append({"total": total, "desc": desc, "done": 0})
        return self

    def update(self, n):
        self.bars[-1]["done"] += n

    def close(self):
        pass


def test_progress_and_cancel(warped):
    movie = warped[0][:10]
    recorder = Recorder()
    motion_correct(movie, piecewise=True, block_frames=4, progress=recorder, **PATCH)
    # one pass estimates the rigid and the patch shifts, one applies them
    assert [bar["done"] for bar in recorder.bars] == [10, 10]
    assert "patches" in recorder.bars[0]["desc"] and "apply" in recorder.bars[1]["desc"]
    for stop_after in (0, 5, 8):
        calls = []

        def should_stop(calls=calls, stop_after=stop_after):
            calls.append(1)
            return len(calls) > stop_after

        with pytest.raises(OperationCancelled):
            motion_correct(movie, piecewise=True, block_frames=4, should_stop=should_stop,
                           **PATCH)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------------
_SHORT_MOVIE = pytest.mark.filterwarnings("ignore::napari_calcium.errors.DetectionWarning")


@_SHORT_MOVIE
def test_pipeline_motion_step_piecewise(tmp_path):
    import napari_calcium as nc
    from napari_calcium.io.binary import open_binary
    from napari_calcium.io.tiff import write_tiff_stack
    from napari_calcium.pipeline import run_pipeline
    from napari_calcium.pipeline.config import load_config

    assert load_config().motion.piecewise is False  # the default stays rigid
    rec = nc.simulate_recording(n_frames=60, shape=(64, 64), n_neurons=6, motion_px=2, seed=2)
    path = write_tiff_stack(tmp_path / "movie.tif", rec.movie, frame_rate_hz=30.0,
                            pixel_size_um=1.0)  # fmt: skip
    cfg = {"motion": {"enabled": True, "max_shift_px": 4.0, "piecewise": True, "patch_px": 32,
                      "overlap_px": 16, "max_deviation_px": 2.0},
           "deconvolve": {"enabled": False}, "events": {"enabled": False}}  # fmt: skip
    out = tmp_path / "out"
    run_pipeline(path, out, cfg)
    saved = np.load(out / "motion.npz")
    assert saved["patch_shifts"].shape == (60, 3, 3, 2)
    np.testing.assert_allclose(saved["patch_centres_y"], [15.5, 31.5, 47.5])
    direct = motion_correct(rec.movie, max_shift_px=4.0, piecewise=True, patch_px=32,
                            overlap_px=16, max_deviation_px=2.0, border="edge")  # fmt: skip
    np.testing.assert_array_equal(saved["patch_shifts"], direct.patch_shifts)
    movie = open_binary(out / "motion_corrected.bin").movie
    np.testing.assert_array_equal(np.asarray(movie), direct.movie)


@_SHORT_MOVIE
@pytest.mark.parametrize("piecewise", [False, True])
def test_pipeline_motion_step_on_a_cluster(client, tmp_path, piecewise):
    """Rigid runs on the workers as before; piecewise measures here and warps on the workers."""
    import napari_calcium as nc
    from napari_calcium.io.binary import open_binary, save_binary
    from napari_calcium.pipeline import run_pipeline

    rec = nc.simulate_recording(n_frames=40, shape=(64, 64), n_neurons=6, motion_px=2, seed=2)
    path = tmp_path / "movie.bin"
    save_binary(path, rec.movie, frame_rate_hz=30.0, pixel_size_um=1.0)
    motion = {"enabled": True, "max_shift_px": 4.0, "piecewise": piecewise, "patch_px": 32,
              "overlap_px": 16}  # fmt: skip
    cfg = {"motion": motion, "deconvolve": {"enabled": False}, "events": {"enabled": False}}
    run_pipeline(path, tmp_path / "out", cfg, client=client)
    saved = np.load(tmp_path / "out" / "motion.npz")
    assert ("patch_shifts" in saved.files) is piecewise
    kwargs = {"patch_px": 32, "overlap_px": 16} if piecewise else {}
    direct = motion_correct(rec.movie, max_shift_px=4.0, piecewise=piecewise, border="edge",
                            **kwargs)  # fmt: skip
    movie = np.asarray(open_binary(tmp_path / "out" / "motion_corrected.bin").movie)
    np.testing.assert_allclose(movie, direct.movie, atol=1e-3)


@pytest.mark.parametrize(
    ("motion", "key"),
    [({"patch_px": -4}, "patch_px"), ({"overlap_px": -1}, "overlap_px"),
     ({"max_deviation_px": -1.0}, "max_deviation_px"), ({"piecewise": "yes"}, "piecewise")],
)  # fmt: skip
def test_pipeline_config_checks_piecewise_keys(motion, key):
    from napari_calcium.pipeline.config import load_config

    with pytest.raises(ParameterError, match=rf"\[motion\] {key}"):
        load_config({"motion": motion})
