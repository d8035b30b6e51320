"""compute_dff, standardized_noise, snr."""

import numpy as np
import pytest

from napari_calcium.core.synthetic.traces import simulate_drifting_traces
from napari_calcium.core.traces import baseline as B
from napari_calcium.core.traces.dff import DFF_METHODS, compute_dff, snr, standardized_noise
from napari_calcium.errors import ParameterError, ShapeError

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
