"""``deconvolve`` skips the rows that compute_dff flags (NaN throughout) and solves the others."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.traces.dff import DegenerateTraceWarning, compute_dff
from napari_calcium.errors import ParameterError, ShapeError

FS = 30.0
FLAGGED = 2

#: every method of the API, with the options that take another code path
CASES = [
    ("oasis-ar1", {}),
    ("oasis-ar1", {"s_min": "noise"}),
    ("oasis-ar1", {"lam": "noise"}),
    ("oasis-ar2", {}),
    ("oasis-ar2", {"lam": "noise"}),
    ("oasis-ar2", {"s_min": 0.05}),
    ("fista", {}),
    ("fista", {"lam": "noise"}),
]
PER_ROI = ("c", "s", "activity", "baseline", "lam", "tau_decay_s", "tau_rise_s", "noise")


@pytest.fixture(scope="module")
def recording():
    """6 cells, 64x64, 300 frames, traces from the true ROIs; ROI 2 (row 2) has a zero trace."""
    rec = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=6, seed=1)
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    traces = nc.extract_traces(rec.movie, rois, frame_rate_hz=FS)
    corrected = np.array(traces.corrected, dtype=np.float64)
    corrected[FLAGGED] = 0.0  # an empty ROI: F0 = 0, compute_dff flags it
    with pytest.warns(DegenerateTraceWarning):
        dff = compute_dff(corrected, frame_rate_hz=FS)
    assert not dff.baseline_ok[FLAGGED] and dff.baseline_ok.sum() == 5
    assert np.isnan(dff.dff[FLAGGED]).all() and np.isfinite(np.delete(dff.dff, FLAGGED, 0)).all()
    return traces, dff


def _deconvolve_quietly(*args, **kwargs):
    """deconvolve, returning the result and every warning it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = deconvolve(*args, **kwargs)
    return res, caught


def _only_one_degenerate_warning(caught, rows):
    kinds = [w.category for w in caught]
    assert kinds == [DegenerateTraceWarning], [str(w.message) for w in caught]
    assert str(rows) in str(caught[0].message)


@pytest.mark.parametrize(("method", "options"), CASES)
def test_flagged_row_is_nan_and_the_others_equal_deconvolving_them_alone(
    recording, method, options
):
    traces, dff = recording
    ids = np.asarray(traces.ids)
    res, caught = _deconvolve_quietly(
        dff.dff, frame_rate_hz=FS, method=method, ids=ids, indicator="GCaMP6f", **options
    )
    _only_one_degenerate_warning(caught, [FLAGGED])
    keep = np.flatnonzero(dff.baseline_ok)
    alone = deconvolve(
        dff.dff[keep], frame_rate_hz=FS, method=method, ids=ids[keep], indicator="GCaMP6f",
        **options,
    )  # fmt: skip
    assert res.n_rois == 6 and res.n_frames == 300 and res.method == method
    np.testing.assert_array_equal(res.ids, ids)
    for name in PER_ROI:
        got = np.asarray(getattr(res, name))
        assert got.shape[0] == 6, name
        assert got.dtype == np.asarray(getattr(alone, name)).dtype, name
        assert np.isnan(got[FLAGGED]).all(), name
        np.testing.assert_array_equal(got[keep], getattr(alone, name), err_msg=name)
    assert np.isnan(res.fit[FLAGGED]).all() and np.isfinite(res.fit[keep]).all()
    assert np.isnan(res.spike_rate_hz()[FLAGGED]).all()
    for key in ("smoothing_s", "activity_shift_s"):
        assert len(res.parameters[key]) == 6
        assert np.isnan(res.parameters[key][FLAGGED])
        assert np.delete(res.parameters[key], FLAGGED).tolist() == alone.parameters[key]


@pytest.mark.filterwarnings("ignore::napari_calcium.core.traces.dff.DegenerateTraceWarning")
@pytest.mark.parametrize("method", ["oasis-ar1", "oasis-ar2", "fista"])
def test_per_roi_arguments_are_sliced_to_the_rows_solved(recording, method):
    """Per-ROI τ, λ, s_min and smoothing apply to their own row; a flagged row's value is unused."""
    _, dff = recording
    keep = np.flatnonzero(dff.baseline_ok)
    td = np.linspace(0.3, 0.8, 6)
    tr = np.linspace(0.02, 0.07, 6)
    lam = np.linspace(0.0, 0.05, 6)
    smin = np.linspace(0.0, 0.1, 6) if method != "fista" else 0.0
    sm = np.linspace(0.02, 0.2, 6)
    kwargs = {"tau_decay_s": td, "tau_rise_s": tr, "lam": lam, "s_min": smin, "smoothing_s": sm}
    res, caught = _deconvolve_quietly(dff.dff, frame_rate_hz=FS, method=method, **kwargs)
    _only_one_degenerate_warning(caught, [FLAGGED])
    sliced = {k: (v[keep] if np.ndim(v) else v) for k, v in kwargs.items()}
    alone = deconvolve(dff.dff[keep], frame_rate_hz=FS, method=method, **sliced)
    for name in PER_ROI:
        np.testing.assert_array_equal(getattr(res, name)[keep], getattr(alone, name), name)
        assert np.isnan(getattr(res, name)[FLAGGED]).all(), name
    # a flagged row's value is not used (a NaN from an earlier result is fine there)...
    td_nan = td.copy()
    td_nan[FLAGGED] = np.nan
    again = deconvolve(
        dff.dff, frame_rate_hz=FS, method=method, **{**kwargs, "tau_decay_s": td_nan}
    )
    np.testing.assert_array_equal(again.s, res.s)
    # ... but the values of the rows solved are still checked, and the lengths against all rows
    bad = td.copy()
    bad[0] = -1.0
    with pytest.raises(ParameterError, match="tau_decay_s"):
        deconvolve(dff.dff, frame_rate_hz=FS, method=method, tau_decay_s=bad)
    with pytest.raises(ShapeError, match=r"one value per ROI \(6\)"):
        deconvolve(dff.dff, frame_rate_hz=FS, method=method, tau_decay_s=td[keep])


def test_traceset_and_dff_result_inputs_skip_flagged_rows(recording):
    traces, dff = recording
    res, caught = _deconvolve_quietly(dff, frame_rate_hz=FS, ids=traces.ids)
    _only_one_degenerate_warning(caught, [FLAGGED])
    assert np.isnan(res.activity[FLAGGED]).all()
    corrected = np.array(traces.corrected, dtype=np.float32)
    corrected[[0, 4]] = np.nan
    ts = nc.TraceSet(**{**traces.__dict__, "corrected": corrected})
    res, caught = _deconvolve_quietly(ts)
    _only_one_degenerate_warning(caught, [0, 4])
    assert res.s.dtype == np.float32 and np.isnan(res.s[[0, 4]]).all()
    assert np.isfinite(res.s[[1, 2, 3, 5]]).all()
    np.testing.assert_array_equal(res.ids, traces.ids)


def test_partly_nan_or_infinite_rows_are_still_refused(recording):
    _, dff = recording
    for bad in (np.nan, np.inf, -np.inf):
        x = np.array(dff.dff)
        x[1, 10:20] = bad
        with pytest.raises(ParameterError, match=r"rows \[1\]"):
            deconvolve(x, frame_rate_hz=FS)
    x = np.array(dff.dff)
    x[1] = np.inf  # infinite throughout is not a flag
    with pytest.raises(ParameterError, match=r"rows \[1\]"):
        deconvolve(x, frame_rate_hz=FS)


@pytest.mark.parametrize(("method", "options"), CASES)
def test_all_rows_flagged_give_nan_results_of_the_right_shape(method, options):
    x = np.full((3, 200), np.nan, dtype=np.float32)
    res, caught = _deconvolve_quietly(x, frame_rate_hz=FS, method=method, **options)
    _only_one_degenerate_warning(caught, [0, 1, 2])
    for name in PER_ROI:
        got = getattr(res, name)
        assert got.shape == ((3, 200) if got.ndim == 2 else (3,)), name
        assert np.isnan(got).all(), name
    assert res.s.dtype == np.float32 and res.lam.dtype == np.float64
    np.testing.assert_array_equal(res.ids, [0, 1, 2])
    # a 1-D flagged trace too
    res, caught = _deconvolve_quietly(x[0], frame_rate_hz=FS, method=method, **options)
    _only_one_degenerate_warning(caught, [0])
    assert res.s.shape == (1, 200) and np.isnan(res.s).all()


def test_pipeline_finishes_with_a_roi_on_a_dark_region(tmp_path, capsys):
    from napari_calcium.cli import main

    """End to end: a ROI on a blank corner of the movie is flagged by dF/F, not a failure."""
    from napari_calcium.io.tiff import write_tiff_stack

    rec = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=6, seed=1)
    movie = np.array(rec.movie)
    movie[:, :14, :14] = 0  # a blanked corner (e.g. outside the field stop)
    labels = np.array(rec.truth.labels)
    assert not labels[:14, :14].any(), "a cell in the corner: pick another seed"
    labels[3:9, 3:9] = labels.max() + 1  # a ROI drawn on the dark corner: F = 0, neuropil > 0
    path = write_tiff_stack(tmp_path / "movie.tif", movie, frame_rate_hz=FS)
    save = nc.save_rois(nc.RoiSet.from_label_image(labels), tmp_path / "rois.npz")
    config = {"rois": {"method": "file", "path": str(save)}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = nc.run_pipeline(path, tmp_path / "out", config)
    assert {s.status for s in run.steps} == {"ran", "disabled"}, run.steps
    degenerate = [str(w.message) for w in caught if w.category is DegenerateTraceWarning]
    assert any("deconvolve" in m for m in degenerate), degenerate
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    traces, dff, spikes, _ = nc.load_traces(run.out_dir / "traces.npz", with_spikes=True)
    assert traces.n_rois == 7 and spikes is not None
    row = int(np.flatnonzero(np.asarray(traces.ids) == labels.max())[0])
    assert not dff.baseline_ok[row] and np.isnan(spikes.activity[row]).all()
    others = np.delete(np.arange(7), row)
    assert np.isfinite(spikes.activity[others]).all()
    assert run.summary["n_rois_flagged"] == 1
    # the command line's summary says so (a rerun on the same folder: every step is up to date)
    (tmp_path / "config.toml").write_text(f'[rois]\nmethod = "file"\npath = "{save}"\n')
    code = main(["run", str(path), "--config", str(tmp_path / "config.toml"),
                 "--out", str(tmp_path / "out"), "--quiet"])  # fmt: skip
    assert code == 0
    assert "1 ROI(s) flagged (dF/F baseline not positive" in capsys.readouterr().out
