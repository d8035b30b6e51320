"""The whole pipeline keeps its memory bounded by its block and binned-copy budgets (issue 8).

The pipeline runs in a child process (so the peak RSS is that run's alone) on a movie on disk
whose float32 intermediates (motion-corrected and filtered, 4 bytes a pixel) are larger than the
memory the pipeline may use above its import baseline: a step that loaded a whole intermediate
movie (``np.asarray(movie)``) would push the peak over the bound and fail this test (tried by
hand: the summary step doing so peaks 1.7 GiB over the baseline, against 0.9 GiB allowed).

A first child runs the same pipeline on a tiny movie of the same dtype, so that numba's on-disk
cache holds every kernel: the measured run then loads them instead of compiling them (LLVM's
memory during a compile is not the pipeline's, and a fresh checkout has no cache).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from napari_calcium.core.chunking import DEFAULT_BLOCK_BYTES
from napari_calcium.core.rois.detection.detect import DEFAULT_BINNED_MEMORY_MIB

MiB = 2**20
#: how many 64 MiB blocks a step may hold at once (a block read, dask's chunks of it, float64
#: temporaries, the block written); measured peaks are 6-9 blocks above the baseline
BLOCKS = 10
#: 394 MiB of uint16 on disk; 788 MiB per float32 intermediate; the binned copy for detection
#: (467 bins of 0.1 s, 262 MiB) is just over its 256 MiB budget, so it is spilled to a file
N_FRAMES, SIDE = 1400, 384
CONFIG = {"motion": {"enabled": True}, "filter": {"enabled": True, "size": 3}}

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from napari_calcium import run_pipeline

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()

    def peak_rss():
        # VmHWM: the high-water mark of this process's own memory since exec; not ru_maxrss,
        # which Linux carries over from the parent's memory at fork/exec (the test runner's)
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmHWM:"))

    base = rss()
    run = run_pipeline(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
    peak = peak_rss()
    print(json.dumps({"baseline": base, "peak": peak, "n_rois": run.summary["n_rois"]}))
    """
)


def _run_child(movie, out) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(movie), str(out), json.dumps(CONFIG)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_pipeline_peak_rss_stays_within_its_budgets(tmp_path):
    from napari_calcium import simulate_recording
    from napari_calcium.io.binary import save_binary

    def write(name, n_frames, side):
        rec = simulate_recording(
            n_frames=n_frames, shape=(side, side), n_neurons=40, motion_px=2.0, seed=1, lazy=True
        )
        return save_binary(tmp_path / name, rec.movie, frame_rate_hz=30.0, pixel_size_um=1.0)

    _run_child(write("warm.bin", 200, 96), tmp_path / "warm")  # fills numba's cache
    result = _run_child(write("movie.bin", N_FRAMES, SIDE), tmp_path / "out")
    allowed = DEFAULT_BINNED_MEMORY_MIB * MiB + BLOCKS * DEFAULT_BLOCK_BYTES
    intermediate = 4 * N_FRAMES * SIDE * SIDE  # one float32 movie
    assert intermediate > allowed - 4 * DEFAULT_BLOCK_BYTES  # loading one whole would show
    over = result["peak"] - result["baseline"]
    assert result["n_rois"] > 0
    assert over < allowed, (
        f"peak RSS {result['peak'] / MiB:.0f} MiB is {over / MiB:.0f} MiB over the baseline "
        f"{result['baseline'] / MiB:.0f} MiB; allowed {allowed / MiB:.0f} MiB"
    )
