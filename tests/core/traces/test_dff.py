"""compute_dff (its denominator rules and neuropil flags of issue 17), standardized_noise, snr."""

import warnings

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.core.synthetic.traces import simulate_drifting_traces
from napari_calcium.core.traces import baseline as B
from napari_calcium.core.traces.dff import DFF_METHODS, compute_dff, snr, standardized_noise
from napari_calcium.errors import DegenerateTraceWarning, ParameterError, ShapeError

FS = 30.0


@pytest.fixture(scope="module")
def traces():
    return simulate_drifting_traces(5, 3000, seed=2)[0]


@pytest.mark.parametrize("method", DFF_METHODS)
def test_each_method_is_its_formula(traces, method):
    res = compute_dff(traces, frame_rate_hz=FS, method=method)
    assert res.method == method and res.dff.shape == traces.shape
    f0 = res.baseline
    denom = np.sqrt(f0) if method == "dff_sqrt" else f0
    np.testing.assert_allclose(res.dff, (traces - f0) / denom, rtol=1e-5, atol=1e-6)
    ref_f0 = {
        "robust": lambda: B.baseline_robust(traces, frame_rate_hz=FS),
        "calscipy": lambda: B.baseline_calscipy(traces, frame_rate_hz=FS),
        "sliding_percentile": lambda: B.baseline_sliding_percentile(traces, frame_rate_hz=FS),
        "maximin": lambda: B.baseline_maximin(traces, frame_rate_hz=FS),
        "percentile": lambda: B.baseline_percentile(traces, percentile=8),
        "dff_sqrt": lambda: B.baseline_sliding_percentile(traces, frame_rate_hz=FS, window_s=5),
    }[method]()
    np.testing.assert_array_equal(f0, ref_f0)
    assert compute_dff(traces, frame_rate_hz=FS).method == "robust"


def test_offset_reference_in_place(traces):
    ref = traces * 2.0
    res = compute_dff(
        traces, frame_rate_hz=FS, method="calscipy", offset=5.0, external_reference=ref
    )
    f0 = B.baseline_calscipy(ref, frame_rate_hz=FS) + 5.0
    np.testing.assert_allclose(res.baseline, f0, rtol=1e-6)
    np.testing.assert_allclose(res.dff, (traces - f0) / f0, rtol=1e-5, atol=1e-6)
    assert res.parameters["offset"] == 5.0
    work = traces.copy()
    out = compute_dff(work, frame_rate_hz=FS, method="percentile", in_place=True)
    assert out.dff is work
    np.testing.assert_allclose(
        work, compute_dff(traces, frame_rate_hz=FS, method="percentile").dff, rtol=1e-6
    )
    one = traces[0].copy()
    compute_dff(one, frame_rate_hz=FS, method="percentile", in_place=True)
    np.testing.assert_allclose(one, work[0], rtol=1e-6)


def test_standardized_noise_white_noise():
    rng = np.random.default_rng(1)
    sigma, fs = 0.03, 20.0
    x = rng.normal(0, sigma, size=(3, 100_000))
    nu = standardized_noise(x, frame_rate_hz=fs)
    np.testing.assert_allclose(nu, 100 * np.sqrt(2) * 0.67449 * sigma / np.sqrt(fs), rtol=0.02)
    np.testing.assert_allclose(nu / 100, sigma / np.sqrt(fs), rtol=0.06)  # ν ≈ σ/√f (in %)
    np.testing.assert_allclose(
        nu, 100 * np.median(np.abs(np.diff(x, axis=1)), axis=1) / np.sqrt(fs), rtol=1e-12
    )


def test_snr():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.1, size=(2, 20000))
    x[1, 5000] += 5.0
    s = snr(x)
    assert s[1] == pytest.approx(x[1].max() / B.noise_sigma(x)[1])
    assert s[1] > 40 > s[0] > 2


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "nope"}, ParameterError),
        ({"offset": "a"}, ParameterError),
        ({"external_reference": np.ones((2, 7))}, ShapeError),
        ({"frame_rate_hz": -1}, ParameterError),
    ],
)
def test_bad_input(kwargs, error):
    args = {"frame_rate_hz": FS, "method": "percentile", **kwargs}
    with pytest.raises(error):
        compute_dff(np.ones((3, 7)), **args)


def test_in_place_needs_float_array():
    with pytest.raises(ParameterError, match="in_place"):
        compute_dff(np.ones((2, 10), dtype=np.int16), frame_rate_hz=FS, in_place=True)


# ------------------------------------------------------------------ neuropil-dominated ROIs (17)
F_MIN = 0.1  # the default min_baseline_fraction


def _neuropil_case(n_frames: int = 3000, seed: int = 0):
    """Four cells whose true contamination is 0.5 while r = 0.7 is subtracted.

    Resting soma light 200, 100, 66, 50 under a neuropil of ~300: the corrected baseline is about
    140, 40, 6, -10, i.e. 40 %, 16 %, 3 % and -5 % of the raw one (rows 2 and 3 dominated).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / FS
    neu = 300 + 30 * np.sin(2 * np.pi * t / 40) + rng.normal(0, 3, n_frames)
    calcium = np.zeros((4, n_frames))
    for i in range(4):
        for start in rng.choice(n_frames - 200, 12, replace=False):
            calcium[i, start:] += 0.5 * np.exp(-np.arange(n_frames - start) / (0.5 * FS))
    soma = np.array([200.0, 100.0, 66.0, 50.0])[:, None] * (1 + calcium)
    F = (soma + 0.5 * neu + rng.normal(0, 2, (4, n_frames))).astype(np.float32)
    Fneu = (neu + rng.normal(0, 1, (4, n_frames))).astype(np.float32)
    return nc.TraceSet(
        F=F, Fneu=Fneu, corrected=F - np.float32(0.7) * Fneu,
        coefficients=np.full(4, 0.7, np.float32), ids=np.arange(1, 5), frame_rate_hz=FS,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dominated():
    return _neuropil_case()


@pytest.mark.parametrize("method", ["robust", "percentile", "maximin"])
def test_neuropil_dominated_flag_is_exactly_its_definition(dominated, method):
    """Flagged iff F0c <= f F0raw in some frame with F0raw > 0: every F0c <= 0 row included."""
    res = compute_dff(dominated, frame_rate_hz=FS, method=method)
    f0c, f0raw = np.asarray(res.baseline), np.asarray(res.raw_baseline)
    expected = ((f0c <= F_MIN * f0raw) & (f0raw > 0)).any(axis=1)
    np.testing.assert_array_equal(res.neuropil_dominated, expected)
    assert res.neuropil_dominated.tolist() == [False, False, True, True]
    nonpositive = (f0c <= 0).any(axis=1)
    assert nonpositive[3] and np.all(res.neuropil_dominated[nonpositive])
    np.testing.assert_allclose(res.baseline_fraction, (f0c / f0raw).min(axis=1), rtol=1e-6)
    assert res.parameters["neuropil_dominated_rows"] == [2, 3]
    assert res.parameters["denominator"] == "floored"
    assert res.parameters["min_baseline_fraction"] == F_MIN
    # the baselines are the method's own, of the corrected and of the raw traces
    ref = compute_dff(dominated.F, frame_rate_hz=FS, method=method)
    np.testing.assert_array_equal(res.raw_baseline, ref.baseline)


def test_floored_changes_only_the_flagged_rows_and_bounds_them(dominated):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateTraceWarning)  # flagged, not warned about
        res = compute_dff(dominated, frame_rate_hz=FS)
    x = dominated.corrected
    with pytest.warns(DegenerateTraceWarning, match=r"rows \[3\]"):
        old = compute_dff(x, frame_rate_hz=FS)  # no raw F: the rule before issue 17
    keep = ~res.neuropil_dominated
    np.testing.assert_array_equal(res.dff[keep], old.dff[keep])  # number for number
    assert res.baseline_ok.all() and np.isfinite(res.dff).all()  # old: row 3 is NaN
    assert not old.baseline_ok[3] and old.neuropil_dominated is None
    f0c, f0raw = res.baseline, res.raw_baseline
    np.testing.assert_allclose(res.dff, (x - f0c) / np.maximum(f0c, F_MIN * f0raw), rtol=1e-5)
    np.testing.assert_array_equal(res.denominator, np.maximum(f0c, F_MIN * f0raw))
    bound = np.abs(x - f0c) / (F_MIN * f0raw)
    assert np.all(np.abs(res.dff) <= bound * (1 + 1e-5))
    # flagged rows: the change over a tenth of the raw baseline, not over ~0
    assert np.percentile(np.abs(res.dff[2:]), 99) < 10 < np.nanpercentile(np.abs(old.dff[2]), 99)
    assert res.flagged.tolist() == [False, False, True, True]
    reasons = res.flag_reasons()
    assert reasons[:2] == ["", ""] and all("neuropil-dominated" in r for r in reasons[2:])


def test_corrected_and_raw_denominators(dominated):
    x, F = dominated.corrected, dominated.F
    with pytest.warns(DegenerateTraceWarning) as record:
        old = compute_dff(x, raw=F, frame_rate_hz=FS, denominator="corrected")
    text = str(record[0].message)
    assert len(record) == 1 and "rows [3]" in text and "NaN" in text  # F0c <= 0: NaN, as before
    assert "neuropil-dominated" in text and "rows [2]" in text  # F0c > 0 but tiny: inflated
    with pytest.warns(DegenerateTraceWarning, match=r"rows \[3\]"):
        np.testing.assert_array_equal(old.dff, compute_dff(x, frame_rate_hz=FS).dff)
    assert old.neuropil_dominated.tolist() == [False, False, True, True]
    raw = compute_dff(x, raw=F, frame_rate_hz=FS, denominator="raw")
    np.testing.assert_allclose(raw.dff, (x - raw.baseline) / raw.raw_baseline, rtol=1e-5)
    np.testing.assert_array_equal(raw.denominator, raw.raw_baseline)
    same = compute_dff(x, raw=F, frame_rate_hz=FS)  # arrays or the TraceSet: the same
    np.testing.assert_array_equal(same.dff, compute_dff(dominated, frame_rate_hz=FS).dff)


def test_dff_sqrt_offset_and_in_place_with_the_raw_f(dominated):
    x, F = dominated.corrected, dominated.F
    res = compute_dff(x, raw=F, frame_rate_hz=FS, method="dff_sqrt", offset=5.0)
    np.testing.assert_allclose(res.raw_baseline, compute_dff(F, frame_rate_hz=FS,
                               method="dff_sqrt", offset=5.0).baseline)  # fmt: skip
    np.testing.assert_allclose(res.dff, (x - res.baseline) / np.sqrt(res.denominator), rtol=1e-5)
    work = x.copy()
    out = compute_dff(work, raw=F, frame_rate_hz=FS, in_place=True)
    assert out.dff is work
    np.testing.assert_allclose(work, compute_dff(x, raw=F, frame_rate_hz=FS).dff, rtol=1e-6)


def test_without_the_raw_f_nothing_is_flagged_dominated(dominated):
    res = compute_dff(dominated.corrected[:2], frame_rate_hz=FS)
    assert res.neuropil_dominated is None and res.baseline_fraction is None
    assert res.parameters["denominator"] is None and res.flagged.tolist() == [False, False]
    no_neuropil = nc.TraceSet(
        F=dominated.F, Fneu=None, corrected=dominated.F, coefficients=np.zeros(4, np.float32),
        ids=dominated.ids,
    )  # fmt: skip
    assert compute_dff(no_neuropil, frame_rate_hz=FS).neuropil_dominated is None


def test_flags_survive_a_save_and_load(dominated, tmp_path):
    res = compute_dff(dominated, frame_rate_hz=FS)
    nc.save_traces(tmp_path / "t.npz", dominated, dff=res)
    _, loaded, _ = nc.load_traces(tmp_path / "t.npz")
    assert loaded.neuropil_dominated.tolist() == res.neuropil_dominated.tolist()
    assert loaded.baseline_ok.tolist() == res.baseline_ok.tolist()
    assert loaded.flagged.tolist() == res.flagged.tolist()
    assert loaded.parameters["denominator"] == "floored"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"denominator": "soma"}, ParameterError),
        ({"min_baseline_fraction": 0.0}, ParameterError),
        ({"min_baseline_fraction": 1.0}, ParameterError),
        ({"min_baseline_fraction": "a"}, ParameterError),
        ({"raw": np.ones((2, 7))}, ShapeError),
    ],
)
def test_bad_rule_input(kwargs, error):
    with pytest.raises(error):
        compute_dff(np.ones((3, 7)), frame_rate_hz=FS, method="percentile", **kwargs)


def test_in_place_refuses_a_trace_set(dominated):
    with pytest.raises(ParameterError, match="TraceSet"):
        compute_dff(dominated, frame_rate_hz=FS, in_place=True)


# accuracy on synthetic truth: the rule must not cost accuracy where the old one was fine, and must
# help where the neuropil is bright (f itself was chosen on synthetic data: bench_dff_rule.py)
def _simulated(neuropil_photons, contamination, seed=0):
    rec = nc.simulate_recording(
        n_frames=1000, shape=(128, 128), n_neurons=25, frame_rate_hz=7.5, seed=seed,
        neuropil_photons=neuropil_photons, neuropil_coefficient=contamination,
        f0_photons=(10.0, 60.0), indicator="GCaMP6s",
    )  # fmt: skip
    tr = nc.extract_traces(
        rec.movie, nc.RoiSet.from_label_image(rec.truth.labels), frame_rate_hz=7.5
    )
    off = np.float32(rec.truth.offset_adu)  # dark offset removed, as in the neurofinder movie
    F, Fneu = tr.F - off, tr.Fneu - off
    traces = nc.TraceSet(F=F, Fneu=Fneu, corrected=F - np.float32(0.7) * Fneu,
                         coefficients=tr.coefficients, ids=tr.ids, frame_rate_hz=7.5)  # fmt: skip
    return traces, rec.truth.calcium[tr.ids - 1]


def _gain(dff, truth):
    """Least-squares slope of dF/F on the true ΔF/F (1 = exact amplitude), per row."""
    out = np.full(len(dff), np.nan)
    for i, (d, t) in enumerate(zip(dff, truth, strict=True)):
        if t.std() > 0 and np.isfinite(d).all():
            out[i] = np.linalg.lstsq(np.c_[t, np.ones_like(t)], d, rcond=None)[0][0]
    return out


def test_same_accuracy_where_the_old_rule_was_fine():
    traces, truth = _simulated(25, 0.7)  # the simulator's default neuropil
    new = compute_dff(traces, frame_rate_hz=7.5)
    old = compute_dff(traces.corrected, frame_rate_hz=7.5)
    assert not new.neuropil_dominated.any()
    np.testing.assert_array_equal(new.dff, old.dff)
    active = truth.std(axis=1) > 0
    r = [np.corrcoef(new.dff[i], truth[i])[0, 1] for i in np.flatnonzero(active)]
    assert np.median(r) > 0.9
    # the raw baseline would cost amplitude: the true ΔF/F is under-reported by about half
    raw = compute_dff(traces, frame_rate_hz=7.5, denominator="raw")
    assert np.nanmedian(_gain(raw.dff, truth)) < 0.6 < np.nanmedian(_gain(new.dff, truth))


def test_better_amplitudes_where_the_neuropil_dominates():
    traces, truth = _simulated(100, 0.5)  # r = 0.7 over-subtracts a bright neuropil
    with pytest.warns(DegenerateTraceWarning):
        old = compute_dff(traces, frame_rate_hz=7.5, denominator="corrected")
    new = compute_dff(traces, frame_rate_hz=7.5)
    flagged = new.neuropil_dominated
    assert flagged.sum() >= 5 and (~old.baseline_ok).sum() >= 3 and new.baseline_ok.all()
    err_new = np.abs(np.log(_gain(new.dff, truth)))
    err_old = np.abs(np.log(np.clip(_gain(old.dff, truth), 1e-3, None)))
    both = flagged & np.isfinite(err_old) & np.isfinite(err_new)
    assert both.sum() >= 3
    assert np.median(err_new[both]) < 0.7 * np.median(err_old[both])
    assert np.nanmedian(err_new[flagged]) < np.log(2)  # within a factor 2 of the truth
    p99 = np.percentile(np.abs(new.dff), 99, axis=1)
    assert p99.max() < 10 < np.nanmax(np.percentile(np.abs(old.dff), 99, axis=1))
