"""First use (issue 16): the warm-up compiles what the steps use; the leaner kernels give the same
results. Behaviour only: timings are measured by ``benchmarks/bench_first_call.py``, never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from scipy import ndimage

from napari_calcium.core import _warmup
from napari_calcium.core.movie.motion import shifting
from napari_calcium.core.movie.summary_images import CorrStats
from napari_calcium.core.rois import _neuropil_kernels, neuropil
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.traces import _extraction_kernels
from napari_calcium.core.traces._baseline_kernels import running_rank


def _python(code: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (numba's per-process state starts empty there)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**{k: v for k, v in os.environ.items() if k != "NAPARI_CALCIUM_WARMUP"}, **env},
    )


# ------------------------------------------------------------------------------------ the warm-up
@pytest.mark.slow
def test_warm_up_compiles_every_kernel_the_default_steps_use():
    """In a fresh process: warm_up() gives the kernels signatures, and the default steps on
    another movie (other size, both dtypes) then compile nothing more."""
    proc = _python(
        """
        import json
        import numpy as np
        import napari_calcium as nc
        from napari_calcium.core import _warmup

        kernels = _warmup.kernel_dispatchers()
        before = {k: len(d.signatures) for k, d in kernels.items()}
        seconds = _warmup.warm_up()
        after = {k: list(map(str, d.signatures)) for k, d in kernels.items()}

        rec = nc.simulate_recording(n_frames=240, shape=(80, 96), n_neurons=8, seed=3)
        rois = nc.RoiSet.from_label_image(rec.truth.labels)
        for movie in (rec.movie, rec.movie.astype(np.float32)):
            nc.motion_correct(movie, max_shift_px=10.0, n_template_iterations=2)
            nc.median_filter(movie, size=3, axes="tyx")
            nc.correlation_image(movie, neighbours=8)
            nc.correlation_pnr(movie)
            found = nc.detect_rois(movie, frame_rate_hz=30.0)
            if len(found):
                nc.evaluate_rois(movie, found, frame_rate_hz=30.0)
            nc.neuropil_label_preview(rois, nc.neuropil_masks(rois))
            traces = nc.extract_traces(movie, rois, frame_rate_hz=30.0)
        res = nc.compute_dff(traces.corrected, frame_rate_hz=30.0)
        nc.deconvolve(res.dff, frame_rate_hz=30.0)
        nc.deconvolve(res.dff, frame_rate_hz=30.0, indicator="GCaMP6f")
        nc.identify_events(res.dff, frame_rate_hz=30.0)
        later = {k: list(map(str, d.signatures)) for k, d in kernels.items()}
        print(json.dumps({"before": before, "after": after, "later": later,
                          "steps": list(seconds)}))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not any(out["before"].values())  # a fresh process: nothing compiled or loaded yet
    assert out["steps"] == list(_warmup.STEPS)
    warmed = {k for k, sigs in out["after"].items() if sigs}
    expected = {
        "movie.motion.shifting.kernel",
        "movie.motion.phase_correlation.contract_ky",
        "movie.motion.phase_correlation.contract_kx",
        "movie._filter_kernels._median_3x3x3_numba",
        "movie._filter_kernels._separable_numba",
        "movie.summary_images._corr_rows",
        "rois._neuropil_kernels.percentile_cell_pixels",
        "rois._neuropil_kernels._rect_counts",
        "rois._neuropil_kernels._fill",
        "traces._extraction_kernels._project",
        "traces._baseline_kernels._rank_rows",
        "traces._baseline_kernels._clipped_mean_rows",
        "spikes.deconvolution._oasis_kernels._oasis_ar1_rows",
    }
    assert expected <= warmed, sorted(expected - warmed)
    # both movie dtypes of the movie kernels
    for name in ("movie.summary_images._corr_rows", "movie._filter_kernels._median_3x3x3_numba"):
        sigs = " ".join(out["after"][name])
        assert "uint16" in sigs and "float32" in sigs, sigs
    new = {k: sorted(set(out["later"][k]) - set(out["after"][k])) for k in out["later"]}
    assert not any(new.values()), {k: v for k, v in new.items() if v}  # nothing left to compile


def test_warm_up_runs_the_steps_asked_first_one_first():
    seconds = _warmup.warm_up(["events", "dff"], first="dF/F")
    assert list(seconds) == ["dff", "events"]
    assert all(s >= 0 for s in seconds.values())
    kernels = _warmup.kernel_dispatchers()
    assert kernels["traces._baseline_kernels._rank_rows"].signatures
    assert kernels["traces._baseline_kernels._clipped_mean_rows"].signatures
    with pytest.raises(ValueError, match="unknown warm-up step"):
        _warmup.warm_up(["nonsense"])


def test_warm_up_order_for_a_widget_or_the_pipeline():
    assert _warmup._resolve(None, first="detect ROIs")[0] == "detect"
    assert _warmup._resolve(None, first="no such widget") == list(_warmup.STEPS)
    # a pipeline started at once compiles its first steps; the warm-up starts from its last
    order = _warmup._resolve(None, first="pipeline")
    assert order[: len(_warmup.PIPELINE_STEPS)] == list(reversed(_warmup.PIPELINE_STEPS))
    assert sorted(order) == sorted(_warmup.STEPS)


def test_warm_up_stops_when_asked():
    assert _warmup.warm_up(should_stop=lambda: True) == {}


def test_kernel_dispatchers_lists_numba_kernels():
    kernels = _warmup.kernel_dispatchers()
    assert len(kernels) >= 30
    assert all(hasattr(d, "signatures") and hasattr(d, "py_func") for d in kernels.values())


def test_warm_up_in_a_thread_does_not_raise(monkeypatch):
    monkeypatch.delenv("NAPARI_CALCIUM_WARMUP", raising=False)  # a conftest may turn it off
    job = _warmup.start_warm_up(["dff", "events"], mode="thread", force=True)
    assert job.mode == "thread"
    assert job.wait(timeout=600)
    assert job.error is None
    assert list(job.seconds) == ["dff", "events"]
    assert _warmup.start_warm_up() is job  # once per process unless forced


@pytest.mark.slow
def test_warm_up_in_a_process_fills_the_cache(tmp_path):
    """The background process warms the cache this process then loads from (same cache dir)."""
    cache = tmp_path / "numba-cache"
    proc = _python(
        """
        from napari_calcium.core import _warmup
        job = _warmup.start_warm_up(["deconvolve"])
        print(job.mode, job.wait(timeout=600), job.returncode)
        """,
        NUMBA_CACHE_DIR=str(cache),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["process", "True", "0"]
    index = [p.name for p in cache.rglob("*.nbi")]  # numba's cache index files
    assert any("_oasis_kernels" in name for name in index)
    # its inputs are made, not computed: warming a late step compiles no early step's kernels
    assert not any("_extraction_kernels" in name or "_neuropil_kernels" in name for name in index)
    loaded = _python(
        """
        import numpy as np
        from napari_calcium.core import _warmup
        kernel = _warmup.kernel_dispatchers()["spikes.deconvolution._oasis_kernels._oasis_ar1_rows"]
        _warmup.warm_up(["deconvolve"])
        print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))
        """,
        NUMBA_CACHE_DIR=str(cache),
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    hits, misses = map(int, loaded.stdout.split())
    assert hits >= 1 and misses == 0  # loaded from what the process wrote, not compiled


def test_warm_up_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("NAPARI_CALCIUM_WARMUP", "0")
    job = _warmup.start_warm_up(force=True)
    assert job.mode == "off" and job.done and job.wait(0)


def test_warm_up_command_line():
    proc = subprocess.run(
        [sys.executable, "-m", "napari_calcium.core._warmup", "events"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] == "events"


# ------------------------------------------------------------- leaner kernels, the same results
def _labels(shape=(96, 112), seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for k in range(1, 13):
        y, x = rng.integers(4, shape[0] - 10), rng.integers(4, shape[1] - 10)
        h, w = rng.integers(3, 9, size=2)
        labels[y : y + h, x : x + w] = k  # overlapping squares: later ones win
    labels[0:2, 0:3] = 20  # an ROI in the corner (grids clipped at the edge)
    return labels


def _reference_neuropil(rois, usable, inner, min_pixels, circular):
    """suite2p's surround from the definition: global city-block distances, no kernels."""
    ny, nx = rois.shape
    rows = []
    for i in range(len(rois)):
        pix = rois.masks[[i]].indices
        roi = np.zeros((ny, nx), bool)
        roi.flat[pix] = True
        d = ndimage.distance_transform_cdt(~roi, metric="taxicab")
        ys, xs = np.divmod(pix, nx)
        steps = 0
        while True:
            steps += 1
            outer = inner + 5 * steps
            if circular:
                keep = usable & (d > inner) & (d <= outer)
            else:
                box = np.zeros((ny, nx), bool)
                box[max(ys.min() - outer, 0) : ys.max() + outer + 1,
                    max(xs.min() - outer, 0) : xs.max() + outer + 1] = True  # fmt: skip
                keep = usable & box & (d > inner)
            if keep.sum() > min_pixels or steps >= 100:
                break
        rows.append(np.flatnonzero(keep))
    return rows


@pytest.mark.parametrize("circular", [False, True])
@pytest.mark.parametrize(("inner", "min_pixels"), [(2, 350), (0, 40), (4, 1500)])
def test_neuropil_masks_match_their_definition(circular, inner, min_pixels):
    """The rectangular and circular kernels (now separate) against a from-scratch reference."""
    rois = RoiSet.from_label_image(_labels())
    masks = neuropil.neuropil_masks(
        rois, inner_radius_px=inner, min_pixels=min_pixels, circular=circular
    )
    usable = ~neuropil.cell_pixel_map(rois)
    expected = _reference_neuropil(rois, usable, inner, min_pixels, circular)
    for i, want in enumerate(expected):
        got = masks.masks[[i]]
        np.testing.assert_array_equal(got.indices, want)
        np.testing.assert_allclose(got.data, 1.0 / max(want.size, 1), rtol=1e-6)


def test_neuropil_kernel_wrappers_take_any_integer_arguments():
    rois = RoiSet.from_label_image(_labels())
    usable = ~neuropil.cell_pixel_map(rois)
    integral = np.zeros((usable.shape[0] + 1, usable.shape[1] + 1), np.int64)
    np.cumsum(np.cumsum(usable, axis=0), axis=1, out=integral[1:, 1:])
    m = rois.masks
    indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int64)
    a = _neuropil_kernels.neuropil_counts(indptr, indices, usable, integral, 2, 350, False)
    b = _neuropil_kernels.neuropil_counts(
        indptr, indices, usable, integral, np.int32(2), np.int16(350), np.bool_(False)
    )
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["reflect", "nearest", "mirror", "wrap"])
def test_running_rank_is_scipys_rank_filter(dtype, mode):
    """The radix argsort (plain loops now) still gives ndimage.rank_filter exactly."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 700)).astype(dtype)
    x[0, ::5] = 0.0  # ties
    x[1, :50] = -0.0
    x[2] = np.round(x[2], 1)  # many ties
    x[3, 100:200] = -np.inf
    for window, rank in ((31, 0), (31, 15), (101, 7), (5, 4), (700, 350)):
        got = running_rank(x, window, rank, mode=mode)
        want = ndimage.rank_filter(x, rank, size=(1, window), mode=mode)
        np.testing.assert_array_equal(got, want)


def _threads_then_one(func):
    """`func()` with the kernels' threads (``numba.get_num_threads()``), then with one thread."""
    many = func()
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = func()
    finally:
        numba.set_num_threads(before)
    return many, single


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_shift_kernel_in_threads_equals_one_thread_and_its_twin(dtype):
    """Frames spread over plain threads (was a prange): any split gives the same frames."""
    rng = np.random.default_rng(2)
    block = (rng.random((9, 40, 52)) * 4000).astype(dtype)
    shifts = rng.uniform(-6, 6, size=(9, 2))
    many, single = _threads_then_one(
        lambda: shifting.shift_frames(block, shifts, np, interpolation="cubic")
    )
    np.testing.assert_array_equal(many, single)
    twin = shifting.shift_frames(block, shifts, np, interpolation="cubic", use_numba=False)
    np.testing.assert_allclose(many, twin, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("neighbours", [4, 8])
def test_correlation_rows_in_threads_equal_one_thread_and_exact_sums(neighbours):
    rng = np.random.default_rng(4)
    movie = rng.integers(0, 500, size=(30, 17, 23)).astype(np.uint16)

    def sums(numba_kernel=True):
        stats = CorrStats(movie[0], neighbours, numba_kernel=numba_kernel)
        for start in range(0, 30, 7):
            stats.update(movie[start : start + 7])
        return [np.array(s) for s in stats.sums]

    many, single = _threads_then_one(sums)
    for a, b, c in zip(many, single, sums(numba_kernel=False), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)  # integer data: every float64 sum is exact


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_projection_in_threads_equals_one_thread_and_the_sparse_product(dtype):
    """Groups of frames spread over plain threads (was a prange): the same traces."""
    rng = np.random.default_rng(6)
    rois = RoiSet.from_label_image(_labels((40, 44), seed=3))
    matrix = rois.masks.tocsr().astype(np.float32)
    prepared = {
        "matrix": matrix,
        "order": _extraction_kernels.spatial_row_order(matrix, 44),
        "indptr": matrix.indptr.astype(np.int64),
        "indices": matrix.indices.astype(np.int64),
        "data": matrix.data,
    }
    block = (rng.random((11, 40, 44)) * 3000).astype(dtype)  # 11: a partial group of frames

    def project():
        out = np.zeros((matrix.shape[0], 14), np.float32)
        _extraction_kernels.project_block_numba(prepared, block, out, 2)
        return out

    many, single = _threads_then_one(project)
    np.testing.assert_array_equal(many, single)
    want = (matrix.astype(np.float64) @ block.reshape(11, -1).astype(np.float64).T).astype(
        np.float32
    )
    np.testing.assert_allclose(many[:, 2:13], want, rtol=1e-5, atol=1e-3)
    assert not many[:, :2].any() and not many[:, 13:].any()
