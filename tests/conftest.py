"""Shared test configuration.

GUI tests use napari's ``make_napari_viewer`` fixture with ``show=True`` under Xvfb (pytest-xvfb
starts it); with a hidden window the canvas renders black.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# Widgets start a background numba warm-up process when they open (core/_warmup.py); in the
# suite it would only compete with the tests for the cores. tests/test_first_call.py and
# tests/plugin/test_warm_up_on_open.py turn it on where they test it.
os.environ.setdefault("NAPARI_CALCIUM_WARMUP", "0")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def shared_data(*parts: str) -> Path:
    """A path inside ``../shared/data`` (real recordings; CI has them beside the clone).

    Missing data fails the test rather than skipping it, so a test never passes by not running.
    """
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"real test data not found at {path} (expected ../shared/data beside the repo)")
    return path


SPIKE_GROUNDTRUTH_SETS = ("DS06", "DS07", "DS08", "DS11", "DS13", "DS31", "SF4", "SF5", "SF6")


def spike_groundtruth_available(name: str) -> bool:
    """Whether spike ground truth `name` (CASCADE ``"DS06"``..., spikefinder ``"SF4"``) is here."""
    if name.startswith("SF"):
        return (SHARED_DATA / "spikefinder_groundtruth" / f"{name[2:]}.train.calcium.csv").is_file()
    folder = SHARED_DATA / "cascade_groundtruth_dev"
    return folder.is_dir() and any(folder.glob(f"{name}-*"))


def spike_groundtruth(name: str) -> list[tuple[np.ndarray, np.ndarray, float, np.ndarray, str]]:
    """Recordings of a spike ground-truth set: ``(trace, frame times s, rate Hz, spike times s,
    neuron)`` each.

    CASCADE sets (``cascade_groundtruth_dev``, one neuron per ``.mat`` file, ΔF/F ``fluo_mean``,
    spikes ``events_AP`` / 1e4 clipped to the imaged interval) and spikefinder training sets
    (100 Hz, one cell per column). Missing data fails the test (see :func:`shared_data`).
    """
    if name.startswith("SF"):
        folder = shared_data("spikefinder_groundtruth")

        def read(path: Path) -> np.ndarray:
            lines = path.read_text().splitlines()[1:]
            rows = [[float(v) if v.strip() else np.nan for v in r.split(",")] for r in lines]
            return np.asarray(rows).T

        n = name[2:]
        out = []
        calcium = read(folder / f"{n}.train.calcium.csv")
        counts = read(folder / f"{n}.train.spikes.csv")
        for i, (c, k) in enumerate(zip(calcium, counts, strict=True)):
            keep = np.isfinite(c) & np.isfinite(k)
            t = np.arange(int(keep.sum())) / 100.0
            out.append((c[keep], t, 100.0, np.repeat(t, k[keep].astype(np.int64)), f"{n}.{i}"))
        return out
    import scipy.io

    (folder,) = sorted(shared_data("cascade_groundtruth_dev").glob(f"{name}-*"))
    out = []
    for path in sorted(folder.glob("*.mat")):
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["CAttached"]
        for rec in np.atleast_1d(mat):
            t = np.asarray(rec.fluo_time, dtype=np.float64).ravel()
            x = np.asarray(rec.fluo_mean, dtype=np.float64).ravel()
            keep = np.isfinite(t) & np.isfinite(x)
            t, x = t[keep], x[keep]
            spikes = np.sort(np.asarray(rec.events_AP, dtype=np.float64).ravel() / 1e4)
            spikes = spikes[(spikes >= t[0]) & (spikes <= t[-1])]
            out.append((x, t, 1.0 / float(np.median(np.diff(t))), spikes, path.stem))
    return out


FOUR_PLANE = (
    "bruker_calscipy_4plane_tseries",
    "reg1_x300_y009n_z1425t1530_p110t131_APr_VSleft-007",
)
ONE_PLANE = ("bruker_calscipy_1plane_tseries", "EM0121_PRE-001")


# ------------------------------------------------------------------ robustness cases, capped
# ``tests/test_robustness_capped.py`` runs each ``tests/robustness/test_*.py`` in its own child
# ``python -m pytest`` under a 4 GiB address-space limit (``resource.RLIMIT_AS``), so an unbounded
# allocation raises MemoryError in that case instead of taking the machine down. A plain
# ``pytest`` over the suite leaves those files to that runner (they are not collected twice);
# naming the folder or a file on the command line runs them directly, uncapped. Every case there
# is also time-boxed, so a hang (a loader blocked on a named pipe) fails with where it was stuck.
ROBUSTNESS = Path(__file__).resolve().parent / "robustness"
#: set by the capped runner in the child's environment
ROBUSTNESS_CHILD_FLAG = "NC_ROBUSTNESS_CHILD"
#: seconds one robustness case may take before it fails as a hang
ROBUSTNESS_CASE_TIMEOUT_S = 120


def _names_robustness(config: pytest.Config) -> bool:
    """Whether the command line names tests/robustness or something inside it."""
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path == ROBUSTNESS or ROBUSTNESS in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent == ROBUSTNESS and collection_path.name.startswith("test_"):
        if os.environ.get(ROBUSTNESS_CHILD_FLAG) or _names_robustness(config):
            return None
        return True  # run by tests/test_robustness_capped.py under the memory cap
    return None


class CaseTimeout(Exception):
    """A robustness case ran past ROBUSTNESS_CASE_TIMEOUT_S."""


@pytest.fixture(autouse=True)
def _robustness_time_box(request):
    """Fail a robustness case that runs past its time box (SIGALRM in the main thread)."""
    if ROBUSTNESS not in Path(str(request.node.path)).parents or (
        threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def on_alarm(signum, frame):
        raise CaseTimeout(f"ran longer than {ROBUSTNESS_CASE_TIMEOUT_S} s: a hang?")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(ROBUSTNESS_CASE_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------ helpers of the widget tests
def dock_widget(viewer, name: str):
    """Open a napari-calcium widget from the Plugins menu, as a user would; return it."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", name)
    return widget


def run_job(widget, qtbot, timeout: int = 120_000) -> None:
    """Start a widget's background job and wait until it reports done."""
    job = widget.start()
    assert job is not None, widget.status.value
    # wait on a flag set by a connection made before the worker started: a fast job may finish
    # before a signal spy could be connected
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    assert ": done" in widget.status.value, widget.status.value


def click_run(widget, qtbot, expect: str | None = ": done", *, button=None,
              timeout: int = 180_000):  # fmt: skip
    """Click a widget's Run (or `button`) as a user does and wait until its job has finished.

    Waits on the job's done flag and the Run button coming back, never on a delay; checks that
    the status line says `expect` (None: no check). Returns the layers the step added.
    """
    before = widget.job
    (button or widget.run_button).native.click()
    job = widget.job
    assert job is not None and job is not before, widget.status.value  # it started
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=timeout)
    if expect is not None:
        assert expect in widget.status.value, widget.status.value
    return getattr(widget, "last_layers", None)


@pytest.fixture
def count_reads(monkeypatch):
    """Count frames read from PrairieView files (every pixel read goes through _read_frame)."""
    from napari_calcium.io.bruker import stack as bruker_stack

    reads = []
    real = bruker_stack._read_frame

    def counting(path, *args, **kwargs):
        reads.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(bruker_stack, "_read_frame", counting)
    return reads


def simulate_traces(*, n_frames: int, seed: int, frame_rate_hz: float = 30.0):
    """A 96 × 96 synthetic recording with 10 cells, its true ROIs, their traces and dF/F."""
    import napari_calcium as nc

    rec = nc.simulate_recording(
        n_frames=n_frames, shape=(96, 96), n_neurons=10, frame_rate_hz=frame_rate_hz,
        pixel_size_um=2.0, seed=seed,
    )  # fmt: skip
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    traces = nc.extract_traces(rec.movie, rois, frame_rate_hz=frame_rate_hz)
    dff = nc.compute_dff(traces.corrected, frame_rate_hz=frame_rate_hz)
    return rec, rois, traces, dff


def add_movie(viewer, rec):
    """The recording's movie as the "movie" layer, scaled like the reader does."""
    from napari_calcium._napari._layers import movie_layer_kwargs

    return viewer.add_image(rec.movie, **movie_layer_kwargs(rec.metadata, name="movie"))


def add_rois(viewer, roi_set, /, name: str = "rois", **stored):
    """A ROI Labels layer over the "movie" layer, with ``stored`` in its napari-calcium store."""
    from napari_calcium._napari._rois import rois_labels_kwargs

    data, kwargs = rois_labels_kwargs(roi_set, name=name, reference=viewer.layers["movie"])
    kwargs["metadata"]["napari_calcium"].update(stored)
    return viewer.add_labels(data, **kwargs)


@pytest.fixture(scope="session")
def client():
    """A dask LocalCluster of two worker processes, one thread each (as in CI), started once."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env={"NUMBA_NUM_THREADS": "1"},
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c
