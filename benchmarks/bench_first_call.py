"""First call vs warm (issue 16): what numba's compilation costs the first use of each step.

Every napari-calcium kernel is compiled by numba on its first call with a new signature and then
cached on disk (``cache=True``), so only the first run after installing pays. This benchmark
measures it per widget step, each in a fresh child process with its own, initially empty,
``NUMBA_CACHE_DIR`` (so the ``__pycache__/*.nbc`` files of a development tree are not used):

``cold``
    the first call with an empty cache (what a fresh install pays), then the second call in the
    same process (``warm``);
``cached``
    a second process on the cache the cold run filled (every later session);
``warmed``
    the first call after :func:`napari_calcium.core._warmup.warm_up` has filled the cache (run
    once, in its own process, like the plugin's background warm-up; each step gets a copy);
``racing``
    the first call made at once after ``start_warm_up(first=step)`` started the background
    warm-up (the user clicks Run immediately after opening the widget).

Each step calls what its widget calls, with the widget's default parameters, on one synthetic
recording (default 1,800 x 256 x 256 uint16 at 30 Hz, 60 cells, 2 px of motion: the README's
demo size). ``pipeline`` calls ``run_pipeline`` on it in the process (the *Run pipeline* widget);
its "racing" starts ``start_warm_up(first="pipeline")``. ``demo`` and ``readme`` are the README's
two commands as processes (interpreter start and imports included): ``napari-calcium demo OUT``,
then ``napari-calcium run OUT/movie.tif --out ...``; warm = the same command again. Their
"warmed" column is a ``demo`` that starts ``start_warm_up(PIPELINE_STEPS, dtypes=("uint16",))``
and waits for it before it exits, then ``run`` on that cache; ``readme`` "racing" is a ``run``
that starts ``start_warm_up(first="pipeline", low_priority=False)`` first.

Besides wall time, each first and second call records the CPU time of its process (all threads;
for the command rows, of the process and its children): on a shared machine ``cold - warm CPU``
is the steadier measure of the work compilation adds.

Usage::

    python benchmarks/bench_first_call.py                       # all steps and scenarios
    python benchmarks/bench_first_call.py --venv /tmp/fresh     # children run /tmp/fresh/bin/python
    python benchmarks/bench_first_call.py --steps motion,dff --scenarios cold --frames 600
    python benchmarks/run.py --only first_call [--quick]       # through the runner (cold only)

A fresh virtualenv: ``python -m venv /tmp/fresh && /tmp/fresh/bin/pip install .`` (not
editable), then ``--venv /tmp/fresh``. The parent process makes the data with the napari-calcium
it imports; children only import napari-calcium (and numpy) from their interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - Windows: no CPU times for the command rows
    resource = None

#: the widget steps, in the order of an analysis, then the two whole-pipeline rows
STEPS = (
    "filter",
    "motion",
    "summary",
    "crop",
    "detrend",
    "detect",
    "neuropil",
    "extract",
    "dff",
    "deconvolve",
    "events",
    "pipeline",
    "readme",
)
SCENARIOS = ("cold", "cached", "warmed", "racing")

#: what each row runs (the widget and its default parameters)
DESCRIPTION = {
    "filter": "Filter movie: median_filter(size=3, axes='tyx')",
    "motion": "Motion correction: motion_correct(max_shift_px=10, n_template_iterations=2)",
    "summary": "Summary images: correlation_image(neighbours=8)",
    "crop": "Crop, bin, detrend: crop (the default operation)",
    "detrend": "Crop, bin, detrend: detrend(method='median')",
    "detect": "Detect ROIs: detect_rois + evaluate_rois",
    "neuropil": "Neuropil masks: neuropil_masks + neuropil_label_preview",
    "extract": "Extract traces: extract_traces (neuropil r=0.7)",
    "dff": "dF/F: compute_dff('robust') + snr + standardized_noise",
    "deconvolve": "Deconvolve: deconvolve('oasis-ar1', τ estimated, λ=0)",
    "events": "Events: identify_events(smooth 0.1 s, 0.5 SD, 0.5 s)",
    "pipeline": "Run pipeline: run_pipeline(movie.tif), default config",
    "demo": "README: napari-calcium demo OUT (a process)",
    "readme": "README: napari-calcium run OUT/movie.tif --out OUT/results (a process)",
}
RATE_HZ = 30.0


# --------------------------------------------------------------------------------------------------
# Child side: one step, one scenario, one JSON line on stdout
# --------------------------------------------------------------------------------------------------
def _step_call(step: str, data: Path) -> Any:
    """The callable a widget runs for `step`, its inputs loaded (not timed)."""
    import numpy as np

    movie = np.load(data / "movie.npy")
    if step == "filter":
        from napari_calcium.core.movie import filters

        return lambda: filters.median_filter(movie, size=3, axes="tyx")
    if step == "motion":
        from napari_calcium.core.movie.motion import rigid

        kwargs = {"max_shift_px": 10.0, "n_template_iterations": 2, "highpass_sigma_px": None}
        return lambda: rigid.motion_correct(movie, **kwargs)
    if step == "summary":
        from napari_calcium.core.movie import summary_images

        return lambda: summary_images.correlation_image(movie, neighbours=8)
    if step == "crop":
        from napari_calcium.core.movie import reshape

        n, h, w = movie.shape
        return lambda: reshape.crop(movie, frames=(0, n), y=(0, h), x=(0, w))
    if step == "detrend":
        from napari_calcium.core.movie import detrend

        return lambda: detrend.detrend(movie, method="median")
    if step == "detect":
        from napari_calcium.core.rois import quality
        from napari_calcium.core.rois.detection import detect as detection

        def detect():
            rois = detection.detect_rois(movie, frame_rate_hz=RATE_HZ, pixel_size_um=1.0)
            if len(rois):
                rois = quality.evaluate_rois(movie, rois, frame_rate_hz=RATE_HZ)
                rois = quality.filter_rois(rois, min_snr=None, min_r_value=None)
            return rois

        return detect
    from napari_calcium.core.rois.roiset import RoiSet

    rois = RoiSet.from_label_image(np.load(data / "labels.npy"))
    if step == "neuropil":
        from napari_calcium.core.rois import neuropil

        def masks():
            m = neuropil.neuropil_masks(
                rois, inner_radius_px=2, min_pixels=350, lam_percentile=50.0, circular=False
            )
            return m, neuropil.neuropil_label_preview(rois, m)

        return masks
    if step == "extract":
        from napari_calcium.core.traces.extraction import extract_traces

        settings = {"neuropil": True, "neuropil_coefficient": 0.7, "inner_radius_px": 2}
        return lambda: extract_traces(
            movie, rois, frame_rate_hz=RATE_HZ, min_pixels=350, **settings
        )
    traces = np.load(data / "traces.npz")
    if step == "dff":
        from napari_calcium.core.traces.dff import compute_dff, snr, standardized_noise

        def dff():
            res = compute_dff(traces["corrected"], frame_rate_hz=RATE_HZ, method="robust")
            return res, snr(res.dff), standardized_noise(res.dff, frame_rate_hz=RATE_HZ)

        return dff
    if step == "deconvolve":
        from napari_calcium.core.spikes.deconvolution.api import deconvolve

        kwargs = {"method": "oasis-ar1", "tau_decay_s": None, "tau_rise_s": None, "lam": 0.0}
        return lambda: deconvolve(traces["dff"], frame_rate_hz=RATE_HZ, **kwargs)
    if step == "events":
        from napari_calcium.core.spikes.events import event_counts, identify_events

        kwargs = {"smooth_s": 0.1, "threshold_sd": 0.5, "timeout_s": 0.5}
        return lambda: event_counts(identify_events(traces["dff"], frame_rate_hz=RATE_HZ, **kwargs))
    if step == "pipeline":
        from napari_calcium.pipeline.steps import run_pipeline

        runs = iter(range(1_000))
        out = Path(tempfile.mkdtemp(prefix="pipeline-", dir=data.parent))  # removed with it
        return lambda: run_pipeline(data / "movie.tif", out / f"run{next(runs)}", progress=False)
    raise ValueError(f"unknown step {step!r}")


class _CompileCounter:
    """Counts numba compilations (not cache loads) of any dispatcher, in any thread."""

    def __init__(self) -> None:
        self.count = 0
        try:
            from numba.core import event
        except ImportError:  # pragma: no cover - numba always has it (>= 0.55)
            return

        counter = self

        class Listener(event.Listener):
            depth = 0

            def on_start(self, ev):
                if Listener.depth == 0:
                    counter.count += 1
                Listener.depth += 1

            def on_end(self, ev):
                Listener.depth -= 1

        event.register("numba:compile", Listener())


def child(step: str, scenario: str, data: Path) -> dict[str, Any]:
    """Run one step in this (fresh) process as `scenario` says; return the timings."""
    import numpy  # noqa: F401 - imported before timing, as in a running viewer

    import napari_calcium  # noqa: F401

    result: dict[str, Any] = {"step": step, "scenario": scenario}
    job = None
    if scenario == "racing":
        try:
            from napari_calcium.core._warmup import start_warm_up
        except ImportError:
            return {**result, "skipped": "no napari_calcium.core._warmup in this install"}
        call = _step_call(step, data)
        counter = _CompileCounter()
        job = start_warm_up(first=step)
    else:
        call = _step_call(step, data)
        counter = _CompileCounter()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        call()
        result["first_s"] = time.perf_counter() - start
        result["first_cpu_s"] = time.process_time() - cpu  # all threads of this process
        result["first_compiles"] = counter.count
        counter.count = 0
        start, cpu = time.perf_counter(), time.process_time()
        call()
        result["second_s"] = time.perf_counter() - start
        result["second_cpu_s"] = time.process_time() - cpu
        result["second_compiles"] = counter.count
    finally:
        if job is not None:
            result["warm_up_done"] = job.done
            job.stop()
    return result


def warm_up_child() -> dict[str, Any]:
    """Fill the (empty) cache with the warm-up, as the plugin's background process does."""
    try:
        from napari_calcium.core._warmup import warm_up
    except ImportError:
        return {"skipped": "no napari_calcium.core._warmup in this install"}
    start = time.perf_counter()
    seconds = warm_up()
    return {"warm_up_s": time.perf_counter() - start, "per_step_s": seconds}


# --------------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------------
def _python(venv: str | None) -> str:
    if not venv:
        return sys.executable
    for candidate in (Path(venv) / "bin" / "python", Path(venv) / "Scripts" / "python.exe"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit(f"no python in the virtualenv {venv}")


def prepare(folder: Path, n_frames: int, side: int, cells: int) -> None:
    """The synthetic recording, its ROIs (the truth), traces and dF/F, and a TIFF of it."""
    import numpy as np

    from napari_calcium import compute_dff, extract_traces, simulate_recording
    from napari_calcium.core.rois.roiset import RoiSet
    from napari_calcium.io.tiff import write_tiff_stack

    rec = simulate_recording(
        n_frames=n_frames, shape=(side, side), n_neurons=cells, motion_px=2.0, seed=1
    )
    movie = np.asarray(rec.movie)
    np.save(folder / "movie.npy", movie)
    labels = np.asarray(rec.truth.labels)
    np.save(folder / "labels.npy", labels)
    write_tiff_stack(folder / "movie.tif", movie, frame_rate_hz=RATE_HZ, pixel_size_um=1.0)
    traces = extract_traces(movie, RoiSet.from_label_image(labels), frame_rate_hz=RATE_HZ)
    dff = compute_dff(traces.corrected, frame_rate_hz=RATE_HZ).dff
    np.savez(folder / "traces.npz", corrected=traces.corrected, dff=np.asarray(dff))


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "NUMBA_CACHE_DIR": str(cache)}


def _run_child(python: str, args: list[str], cache: Path, timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), *args],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    return json.loads(lines[-1])


#: ``napari-calcium`` with ``start_warm_up(...)`` first: what ``run`` and ``demo`` would do with
#: the one-line call suggested in docs/benchmarks.md (``demo`` waits for it before it exits)
_CLI_WITH_WARM_UP = """
import sys
from napari_calcium.core._warmup import PIPELINE_STEPS, start_warm_up
from napari_calcium.cli import main
if sys.argv[1] == "demo":
    job = start_warm_up(PIPELINE_STEPS, dtypes=("uint16",), low_priority=False)
else:
    job = start_warm_up(first="pipeline", low_priority=False)
status = main()
job.wait() if sys.argv[1] == "demo" else None
sys.exit(status)
"""


def _cli(
    python: str, args: list[str], cache: Path, timeout: float, warm_up: bool = False
) -> dict[str, Any]:
    """``napari-calcium ARGS`` as a process, timed from its start to its end."""
    start_cmd = (
        [python, "-c", _CLI_WITH_WARM_UP] if warm_up else [python, "-m", "napari_calcium.cli"]
    )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN) if resource is not None else None
    start = time.perf_counter()
    proc = subprocess.run(
        [*start_cmd, *args], env=_env(cache), capture_output=True, text=True, timeout=timeout
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    if usage is None:
        return {"first_s": seconds}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return {"first_s": seconds, "first_cpu_s": cpu}  # CPU: the process and its warm-up


def _has_warm_up(python: str) -> bool:
    code = "import napari_calcium.core._warmup"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def _readme(
    python: str, size: tuple[int, int, int], tmp: Path, scenarios: list[str], timeout: float
) -> dict[str, Any]:
    """The README's two commands as processes: ``napari-calcium demo OUT``, then
    ``napari-calcium run OUT/movie.tif --out OUT/results``.

    Rows "demo" and "readme" (the ``run``): cold = an empty cache, warm = ``run`` again (the
    cache it filled). "warmed": ``demo`` starts the warm-up of the pipeline's steps and waits for
    it before it exits (the demo row's time), then ``run`` on that cache (the readme row's).
    "racing": ``run`` starts the warm-up (``first="pipeline"``) on an empty cache.
    """
    n_frames, side, cells = size
    demo_args = ["--frames", str(n_frames), "--shape", str(side), str(side)]
    demo_args += ["--neurons", str(cells), "--motion", "2", "--quiet"]
    demo: dict[str, Any] = {}
    readme: dict[str, Any] = {}
    cache = tmp / "cache-readme"
    cache.mkdir()
    out = tmp / "readme"
    first = _cli(python, ["demo", str(out), *demo_args], cache, timeout)
    again = _cli(python, ["demo", str(out), *demo_args, "--overwrite"], cache, timeout)
    demo["cold"] = {"first_s": first.get("first_s"), "second_s": again.get("first_s")}
    demo["cold"].update(first_cpu_s=first.get("first_cpu_s"), second_cpu_s=again.get("first_cpu_s"))
    run = ["run", str(out / "movie.tif"), "--out"]
    cold = _cli(python, [*run, str(out / "results-cold"), "--quiet"], cache, timeout)
    warm = _cli(python, [*run, str(out / "results-warm"), "--quiet"], cache, timeout)
    for found in (first, again, cold, warm):
        if "error" in found:
            return {"demo": {"cold": found}, "readme": {"cold": found}}
    readme["cold"] = {"first_s": cold["first_s"], "second_s": warm["first_s"]}
    readme["cold"].update(first_cpu_s=cold.get("first_cpu_s"), second_cpu_s=warm.get("first_cpu_s"))
    if "cached" in scenarios:
        readme["cached"] = warm
        demo["cached"] = again
    can_warm = _has_warm_up(python)
    if "warmed" in scenarios:
        if not can_warm:
            demo["warmed"] = readme["warmed"] = {"skipped": "no warm-up in this install"}
        else:
            cache = tmp / "cache-readme-warmed"
            cache.mkdir()
            out = tmp / "readme-warmed"
            demo["warmed"] = _cli(python, ["demo", str(out), *demo_args], cache, timeout, True)
            run = ["run", str(out / "movie.tif"), "--out", str(out / "results"), "--quiet"]
            readme["warmed"] = _cli(python, run, cache, timeout)
    if "racing" in scenarios:
        if not can_warm:
            readme["racing"] = {"skipped": "no warm-up in this install"}
        else:
            cache = tmp / "cache-readme-racing"
            cache.mkdir()
            run = ["run", str(tmp / "readme" / "movie.tif"), "--out", str(tmp / "racing")]
            readme["racing"] = _cli(python, [*run, "--quiet"], cache, timeout, warm_up=True)
    return {"demo": demo, "readme": readme}


def measure(
    python: str,
    data: Path,
    tmp: Path,
    steps: list[str],
    scenarios: list[str],
    size: tuple[int, int, int],
    timeout: float = 900.0,
    log: Any = None,
) -> dict[str, Any]:
    """Run every step in every scenario in its own child process; returns the results."""
    out: dict[str, Any] = {"steps": {}, "warm_up": None}

    def say(text: str) -> None:
        if log is not None:
            print(text, file=log, flush=True)

    warmed_cache = None
    if "warmed" in scenarios:
        warmed_cache = tmp / "cache-warmed"
        warmed_cache.mkdir()
        say("warm-up into an empty cache ...")
        out["warm_up"] = _run_child(python, ["--warm-up-child"], warmed_cache, timeout)
        if "skipped" in out["warm_up"] or "error" in out["warm_up"]:
            warmed_cache = None
    for step in steps:
        if step == "readme":
            say("readme (demo, then run) ...")
            out["steps"].update(_readme(python, size, tmp, scenarios, timeout))
            continue
        rows: dict[str, Any] = {}
        cold_cache = tmp / f"cache-{step}"
        cold_cache.mkdir()
        args = ["--child", step, "--data", str(data)]
        for scenario in scenarios:
            say(f"{step} {scenario} ...")
            if scenario in ("cold", "cached"):
                cache = cold_cache  # "cached": a new process on what "cold" compiled
            elif scenario == "warmed":
                if warmed_cache is None:
                    rows[scenario] = {"skipped": "no warm-up in this install"}
                    continue
                cache = shutil.copytree(warmed_cache, tmp / f"cache-warmed-{step}")
            else:
                cache = tmp / f"cache-racing-{step}"
                cache.mkdir()
            command = [*args, "--scenario", scenario]
            rows[scenario] = _run_child(python, command, cache, timeout)
        out["steps"][step] = rows
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(results: dict[str, Any], scenarios: list[str], markdown: bool) -> str:
    """One line per step: warm, cold first call (and its excess), then the other scenarios."""
    head = ["step", "warm s", "cold first s", "cold - warm s", "cold - warm CPU s"]
    extra = [s for s in scenarios if s != "cold"]
    head += [f"{s} first s" for s in extra]
    head += ["compiles (cold, 1st call)"]
    lines = []
    for step, rows in results["steps"].items():
        cold = rows.get("cold", {})
        warm, first = cold.get("second_s"), cold.get("first_s")
        cells = [step, _fmt(warm), _fmt(first)]
        cells.append(_fmt(None if warm is None or first is None else first - warm))
        cpu1, cpu2 = cold.get("first_cpu_s"), cold.get("second_cpu_s")
        cells.append(_fmt(None if cpu1 is None or cpu2 is None else cpu1 - cpu2))
        for scenario in extra:
            row = rows.get(scenario, {})
            text = _fmt(row.get("first_s"))
            if row.get("first_compiles"):
                text += f" ({row['first_compiles']} compiled)"
            if "skipped" in row:
                text = "n/a"
            elif "error" in row:
                text = "error"
            cells.append(text)
        cells.append(str(cold.get("first_compiles", "-")) if "error" not in cold else "error")
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c) + " |" for c in lines]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in [head, *lines])


def _errors(results: dict[str, Any]) -> list[str]:
    found = []
    warm = results.get("warm_up") or {}
    if "error" in warm:
        found.append(f"warm-up: {warm['error']}")
    for step, rows in results["steps"].items():
        if "error" in rows:
            found.append(f"{step}: {rows['error']}")
        for scenario, row in rows.items():
            if isinstance(row, dict) and "error" in row:
                found.append(f"{step} {scenario}: {row['error']}")
    return found


# --------------------------------------------------------------------------------------------------
# The runner's entry point (benchmarks/run.py --only first_call)
# --------------------------------------------------------------------------------------------------
def run(quick: bool) -> list:
    """Cold first call vs warm per step (``--quick``: 200 x 64 x 64, four steps)."""
    from _harness.results import Row
    from _harness.timing import Timing

    n_frames, side, cells = (200, 64, 6) if quick else (1800, 256, 60)
    steps = ["filter", "summary", "dff", "deconvolve"] if quick else list(STEPS)
    size = f"{n_frames}x{side}x{side} uint16, {cells} cells"
    rows = []
    with tempfile.TemporaryDirectory(prefix="nc-bench-first-call-") as folder:
        tmp = Path(folder)
        (tmp / "data").mkdir()
        prepare(tmp / "data", n_frames, side, cells)
        results = measure(
            sys.executable, tmp / "data", tmp, steps, ["cold"], (n_frames, side, cells)
        )
    for step, found in results["steps"].items():
        cold = found.get("cold", {})
        if "error" in cold or "first_s" not in cold:
            rows.append(Row(f"first call: {step}", "napari-calcium", size, status="error",
                            notes=f"error: {cold.get('error', '?')[-300:]}"))  # fmt: skip
            continue
        first, warm = cold["first_s"], cold["second_s"]
        rows.append(Row(f"first call: {step}", "napari-calcium cold", size, Timing((first,)),
                        notes=f"{DESCRIPTION[step]}; warm {warm:.2f} s; +{first - warm:.2f} s; "
                        f"{cold.get('first_compiles', '?')} kernels compiled"))  # fmt: skip
        rows.append(Row(f"first call: {step}", "napari-calcium warm", size, Timing((warm,))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", help="run the children with this virtualenv's python")
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--cells", type=int, default=60)
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--timeout", type=float, default=900.0, help="per child process, s")
    # child modes (internal)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--warm-up-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, args.scenario, Path(args.data))), flush=True)
        return 0
    if args.warm_up_child:
        print(json.dumps(warm_up_child()), flush=True)
        return 0

    steps = [s for s in args.steps.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    bad = sorted(set(steps) - set(STEPS)) + sorted(set(scenarios) - set(SCENARIOS))
    if bad:
        raise SystemExit(f"unknown step or scenario: {', '.join(bad)}")
    python = _python(args.venv)
    probe = subprocess.run(
        [python, "-c", "import sys, numpy, numba, napari_calcium as nc; print(sys.version.split()"
         "[0], numpy.__version__, numba.__version__, nc.__version__, nc.__file__)"],
        capture_output=True, text=True, check=True, env=_env(Path(tempfile.gettempdir())),
    )  # fmt: skip
    size = f"{args.frames}x{args.side}x{args.side} uint16, {args.cells} cells"
    print(f"children: {python}\n  python, numpy, numba, napari-calcium: {probe.stdout.strip()}")
    print(f"cores: {os.cpu_count()}, size: {size}, at {time.strftime('%Y-%m-%d %H:%M')}\n")
    with tempfile.TemporaryDirectory(prefix="nc-bench-first-call-") as folder:
        tmp = Path(folder)
        (tmp / "data").mkdir()
        start = time.perf_counter()
        prepare(tmp / "data", args.frames, args.side, args.cells)
        print(f"data ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        shape = (args.frames, args.side, args.cells)
        results = measure(
            python, tmp / "data", tmp, steps, scenarios, shape, args.timeout, sys.stderr
        )
    results.update(python=python, versions=probe.stdout.strip(), size=size)
    warm = results.get("warm_up") or {}
    if "warm_up_s" in warm:
        per = ", ".join(f"{k} {v:.1f}" for k, v in warm["per_step_s"].items())
        print(f"warm-up (all steps, uint16 + float32) into an empty cache: "
              f"{warm['warm_up_s']:.1f} s ({per})\n")  # fmt: skip
    print(table(results, scenarios, args.markdown))
    for line in _errors(results):
        print(f"\nERROR {line}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if _errors(results) else 0


if __name__ == "__main__":
    sys.exit(main())
