"""Numeric entry points under hostile parameters and odd data (issue 15).

Absurd sizes must be refused up front with our own error naming the parameter, never attempted:
each such case runs in a child process under a 4 GiB address-space limit (``RLIMIT_AS``) and a
timeout, so an unbounded allocation fails the test instead of the machine. Data the core cannot
work on (complex movies) gets our error instead of a numba traceback; a filter wider than the
movie works on dask input as it does on numpy input.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dask.array as da
import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.errors import RecordingError, ShapeError

LIMIT_BYTES = 4 * 2**30

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    import numpy as np
    import napari_calcium as nc
    traces = (100 + np.random.default_rng(0).standard_normal((3, 600))).astype(np.float32)
    try:
        {call}
        print(json.dumps({{"outcome": "returned"}}))
    except Exception as exc:
        print(json.dumps({{"outcome": type(exc).__module__ + "." + type(exc).__name__,
                          "message": str(exc)}}))
    """
)


def _in_child(call: str) -> dict:
    """Run `call` (a statement using ``nc`` and ``traces``) in a child under the memory cap."""
    code = CHILD.format(limit=LIMIT_BYTES, call=call)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        ("nc.compute_dff(traces, frame_rate_hz=30.0, window_s=1e8)", "window_s"),
        ("nc.compute_dff(traces, frame_rate_hz=30.0, window_s=1e6)", "window_s"),
        ("nc.compute_dff(traces, frame_rate_hz=30.0, method='maximin', window_s=1e8)", "window_s"),
        ("nc.baseline_maximin(traces, frame_rate_hz=30.0, sigma_frames=1e10)", "sigma_frames"),
        ("nc.deconvolve(traces, frame_rate_hz=1e12)", "sigma_s"),
        ("nc.identify_events(traces, frame_rate_hz=1e12)", "smooth_s"),
        ("nc.smooth(traces, frame_rate_hz=30.0, sigma_s=1e9)", "sigma_s"),
        ("nc.smooth(traces, frame_rate_hz=30.0, method='boxcar', window_s=1e9)", "window_s"),
        ("nc.smooth_activity(traces, 1e12, 0.05)", "sigma_s"),
    ],
)
def test_absurd_widths_are_refused_before_any_allocation(call, parameter):
    result = _in_child(call)
    assert result["outcome"] == "napari_calcium.errors.ParameterError", result
    assert result["message"].startswith(f"{parameter}=") and "too large" in result["message"]


def test_widths_the_data_can_need_still_work():
    """A window longer than a short recording (30 s on 20 s) is an ordinary request."""
    traces = (100 + np.random.default_rng(1).standard_normal((2, 600))).astype(np.float32)
    dff = nc.compute_dff(traces, frame_rate_hz=30.0, window_s=30.0, method="sliding_percentile")
    assert np.isfinite(dff.dff).all()
    events = nc.identify_events(traces, frame_rate_hz=30.0, smooth_s=10.0)
    assert len(events) == 2


def test_complex_movies_get_our_error():
    movie = (np.random.default_rng(2).random((20, 16, 16)) + 1j).astype(np.complex64)
    rois = nc.RoiSet.from_pixels([(np.array([3, 4]), np.array([3, 4]))], (16, 16))
    with pytest.raises(ShapeError, match=r"complex64.*real-valued"):
        nc.extract_traces(movie, rois)
    with pytest.raises(ShapeError, match="complex64"):
        nc.median_filter(movie, size=3)
    with pytest.raises(ShapeError, match="complex64"):
        nc.project(movie, "mean")
    with pytest.raises(ShapeError, match="complex64"):
        nc.correlation_image(movie)


def test_complex_tiff_in_the_napari_reader_names_the_file(tmp_path):
    import tifffile

    from napari_calcium._napari._reader import read_recording

    path = tmp_path / "complex.tif"
    tifffile.imwrite(path, (np.ones((4, 8, 8)) + 1j).astype(np.complex64), photometric="minisblack")
    with pytest.raises(RecordingError, match=r"complex\.tif.*complex64"):
        read_recording(str(path))


def test_nan_borders_give_finite_contrast_limits():
    from napari_calcium._napari._reader import display_range

    movie = np.random.default_rng(3).random((5, 10, 10)).astype(np.float32)
    movie[:, :2] = np.nan  # motion-corrected with border="nan"
    lo, hi = display_range(movie)
    assert np.isfinite([lo, hi]).all() and hi > lo
    assert display_range(np.full((3, 4, 4), np.nan, np.float32)) == (0.0, 1.0)


@pytest.mark.parametrize("chunks", [2, 5])
@pytest.mark.parametrize(
    "apply",
    [
        lambda m: nc.median_filter(m, size=20),
        lambda m: nc.gaussian_filter(m, sigma=8.0),
        lambda m: nc.uniform_filter(m, size=25),
    ],
)
def test_filter_wider_than_the_movie_works_on_dask_as_on_numpy(apply, chunks):
    movie = np.random.default_rng(4).random((5, 8, 8)).astype(np.float32)
    expected = apply(movie)
    got = apply(da.from_array(movie, chunks=(chunks, 8, 8))).compute()
    np.testing.assert_array_equal(got, expected)
