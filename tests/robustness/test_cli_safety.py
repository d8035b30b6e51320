"""The command line and the simulator under hostile options (issue 15).

``napari-calcium run --config BAD`` exits 2 with one ``error:`` line naming the file and the key,
before any work. ``napari-calcium demo`` (and :func:`napari_calcium.simulate_recording`, which it
calls) refuses absurd, negative or NaN sizes up front, naming the option and the largest value
allowed: each such case runs in a child process under a 4 GiB address-space limit and a timeout,
so an attempt to allocate (the 23 GB OOM kill of ``--frames 1e11``) fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

import napari_calcium as nc

LIMIT_BYTES = 4 * 2**30
CHILD_TIMEOUT_S = 90

CAPPED_MAIN = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from napari_calcium.cli import main
    sys.exit(main({argv!r}))
    """
)

# Many refusals in one capped child (each is refused up front, so one interpreter start serves
# them all): every command's exit status and stderr, or every call's outcome, as JSON lines.
CAPPED_MAINS = textwrap.dedent(
    """
    import contextlib, io, json, resource
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from napari_calcium.cli import main
    for argv in {argvs!r}:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except BaseException as exc:
                status = f"raised {{type(exc).__name__}}: {{exc}}"
        print(json.dumps({{"status": status, "stderr": err.getvalue()}}), flush=True)
    """
)

CAPPED_CALLS = textwrap.dedent(
    """
    import json, resource
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    import napari_calcium as nc
    from napari_calcium.core.synthetic.traces import simulate_drifting_traces
    for call in {calls!r}:
        try:
            exec(call)
            result = {{"outcome": "returned"}}
        except Exception as exc:
            result = {{"outcome": type(exc).__module__ + "." + type(exc).__name__,
                       "message": str(exc)}}
        print(json.dumps(result), flush=True)
    """
)


def _capped_cli(argv: list[str]) -> subprocess.CompletedProcess:
    code = CAPPED_MAIN.format(limit=LIMIT_BYTES, argv=argv)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )


def _in_capped_child(template: str, **lists: list) -> list[dict]:
    """Run `template` in one child under the cap; one JSON result per item, in order."""
    code = template.format(limit=LIMIT_BYTES, **lists)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    (items,) = lists.values()
    assert proc.returncode == 0 and len(results) == len(items), (
        f"the capped child stopped after {len(results)} of {len(items)} items: "
        f"{items[len(results)] if len(results) < len(items) else ''}\n{proc.stderr[-2000:]}"
    )
    return results


# ---------------------------------------------------------------------- run --config BAD
@pytest.fixture
def tiny_movie(tmp_path):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, np.zeros((5, 16, 16), np.uint16))
    return path


BAD_CONFIGS = [
    (b"[dff]\nmethod = 'r\xe9sum\xe9'\n", "not UTF-8"),
    (b"[extract]\nmin_pixels = 1000000000000000000000000000000\n", "[extract] min_pixels"),
    (b"[extract]\ninner_radius_px = 18446744073709551616\n", "[extract] inner_radius_px"),
    (b"[dff]\nsigma_frames = nan\n", "[dff] sigma_frames: must be a finite number"),
    (b"[rois]\nmax_binned_frames = 10000000000\n", "[rois] max_binned_frames"),
    (b"[open]\nframe_rate_hz = 1e300\n", "[open] frame_rate_hz"),
]


def test_run_with_a_bad_config_gives_one_error_line(tmp_path, tiny_movie):
    argvs, configs = [], []
    for i, (content, _) in enumerate(BAD_CONFIGS):
        config = tmp_path / f"bad{i}.toml"
        config.write_bytes(content)
        configs.append(config)
        argvs.append(
            ["run", str(tiny_movie), "--config", str(config), "--out", str(tmp_path / "o")]
        )
    results = _in_capped_child(CAPPED_MAINS, argvs=argvs)
    for (_, expect), config, result in zip(BAD_CONFIGS, configs, results, strict=True):
        assert result["status"] == 2, result
        lines = result["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"napari-calcium run: error: {config}: ")
        assert expect in lines[0], lines
    assert not (tmp_path / "o").exists()  # refused before any work
    # and as a command of its own: status 2, one line, no traceback
    proc = _capped_cli(argvs[1])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "[extract] min_pixels" in proc.stderr and "Traceback" not in proc.stderr


def test_run_with_a_fifo_as_config_does_not_block(tmp_path, tiny_movie):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    proc = _capped_cli(
        ["run", str(tiny_movie), "--config", str(fifo), "--out", str(tmp_path / "o")]
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "named pipe" in lines[0] and str(fifo) in lines[0], lines


# ---------------------------------------------------------------------------- demo options
DEMO_CASES = [
    (["--frames", "1e11"], "--frames 1e11 is too large: at most"),
    (["--frames", "100000000000"], "--frames 100000000000 is too large: at most"),
    (["--motion", "1e9"], "--motion 1e9 is too large: at most 256"),
    (["--shape", "100000", "100000"], "--shape 100000 100000 is too large: at most"),
    (["--shape", "4096", "4096", "--frames", "9", "--motion", "4000"], "--motion 4000 is too"),
    (["--neurons", "100000000"], "--neurons 100000000 is too large: at most"),
    (["--frames", "30000", "--neurons", "5000"], "--frames 30000 is too large: at most"),
    (["--frame-rate", "1e12"], "--frame-rate 1e12 is too large: at most"),
    (["--frame-rate", "1e-9"], "--frame-rate 1e-9 is too small"),
    (["--frame-rate", "nan"], "--frame-rate"),
    (["--motion", "nan"], "--motion"),
    (["--motion", "-1"], "--motion"),
    (["--frames", "-5"], "--frames"),
    (["--frames", "nan"], "--frames"),
    (["--frames", "inf"], "--frames"),
    (["--pixel-size", "0"], "--pixel-size"),
    (["--pixel-size", "1e-300"], "--pixel-size"),
    (["--seed", "-1"], "--seed"),
]


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    argvs = [["demo", str(out), "--quiet", *options] for options, _ in DEMO_CASES]
    results = _in_capped_child(CAPPED_MAINS, argvs=argvs)
    assert not out.exists()  # nothing attempted, not even the folder
    return results


@pytest.mark.parametrize(("case", "expect"), [(i, e) for i, (_, e) in enumerate(DEMO_CASES)])
def test_absurd_demo_options_are_refused_before_any_work(demo_results, case, expect):
    result = demo_results[case]
    assert result["status"] == 2, result
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("napari-calcium demo: error: ") and expect in lines[0], lines


def test_demo_sizes_at_the_limits_people_use_still_work(tmp_path):
    out = tmp_path / "demo"
    argv = ["demo", str(out), "--quiet", "--frames", "4e1", "--shape", "32", "32"]
    proc = _capped_cli([*argv, "--neurons", "3", "--motion", "32"])
    assert proc.returncode == 0, proc.stderr
    assert tifffile.imread(out / "movie.tif").shape == (40, 32, 32)


# ------------------------------------------------------------------------------- simulator
SIMULATION_CASES = [
    ("nc.simulate_recording(n_frames=10**11)", "n_frames"),
    ("nc.simulate_recording(n_frames=10**9, lazy=True)", "n_frames"),
    ("nc.simulate_recording(n_frames=float('nan'))", "n_frames"),
    ("nc.simulate_recording(n_frames=float('inf'))", "n_frames"),
    ("nc.simulate_recording(shape=(10**5, 10**5))", "shape"),
    ("nc.simulate_recording(shape=10**6)", "shape"),
    ("nc.simulate_recording(shape=(float('nan'), 64))", "shape"),
    ("nc.simulate_recording(motion_px=1e9)", "motion_px"),
    ("nc.simulate_recording(n_neurons=10**8)", "n_neurons"),
    ("nc.simulate_recording(n_frames=50_000, n_neurons=2000)", "n_frames"),
    ("nc.simulate_recording(frame_rate_hz=1e12)", "frame_rate_hz"),
    ("nc.simulate_recording(frame_rate_hz=1e-9)", "frame_rate_hz"),
    ("nc.simulate_recording(firing_rate_hz=(0.1, 1e9))", "firing_rate_hz"),
    ("nc.simulate_recording(f0_photons=(1.0, 1e30))", "f0_photons"),
    ("nc.simulate_recording(neuropil_photons=1e30)", "neuropil_photons"),
    ("nc.simulate_recording(dff_per_spike=1e30)", "dff_per_spike"),
    ("nc.simulate_recording(tau_rise_s=0.01, tau_decay_s=1e12)", "tau_decay_s"),
    ("nc.simulate_recording(seed=-1)", "seed"),
    ("nc.simulate_recording(bit_depth=float('nan'))", "bit_depth"),
    ("simulate_drifting_traces(10**6, 10**6)", "n_frames"),
    ("simulate_drifting_traces(10, 100, frame_rate_hz=1e9)", "frame_rate_hz"),
    ("simulate_drifting_traces(10, -3)", "n_frames"),
    ("simulate_drifting_traces(10, 100, noise=float('nan'))", "noise"),
]


@pytest.fixture(scope="module")
def simulation_results():
    return _in_capped_child(CAPPED_CALLS, calls=[call for call, _ in SIMULATION_CASES])


@pytest.mark.parametrize(
    ("case", "parameter"), [(i, p) for i, (_, p) in enumerate(SIMULATION_CASES)]
)
def test_absurd_simulation_sizes_are_refused_before_any_allocation(
    simulation_results, case, parameter
):
    result = simulation_results[case]
    assert result["outcome"] == "napari_calcium.errors.ParameterError", result
    assert result["message"].startswith(f"{parameter}="), result


def test_simulations_people_run_still_work():
    rec = nc.simulate_recording(n_frames=20, shape=(32, 32), n_neurons=2, motion_px=32.0)
    assert rec.movie.shape == (20, 32, 32)
    assert np.abs(rec.truth.shifts).max() == pytest.approx(32.0)
    from napari_calcium.core.synthetic.traces import simulate_drifting_traces

    traces, f0, calcium = simulate_drifting_traces(3, 200)
    assert traces.shape == f0.shape == calcium.shape == (3, 200)
