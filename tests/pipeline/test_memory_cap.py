"""The whole pipeline keeps its memory bounded by its block and binned-copy budgets (issue 8).

The pipeline runs in a child process (so the peak RSS is that run's alone) on a movie on disk
whose float32 intermediates (motion-corrected and filtered, 4 bytes a pixel) are larger than the
memory the pipeline may use above its import baseline: a step that loaded a whole movie
(``np.asarray(movie)``) would push the peak over the bound and fail this test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from napari_calcium.core.chunking import DEFAULT_BLOCK_BYTES
from napari_calcium.core.detection import DEFAULT_BINNED_MEMORY_MIB

MiB = 2**20
#: how many 64 MiB blocks a step may hold at once (a block read, dask's chunks of it, float64
#: temporaries, the block written); measured peaks are 4-6 blocks above the baseline
BLOCKS = 8
N_FRAMES, SIDE = 800, 384  # 225 MiB of uint16 on disk; 450 MiB per float32 intermediate

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from napari_calcium import run_pipeline
    from napari_calcium.core import detection, extraction, projections, registration
    from napari_calcium.pipeline import steps

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()

    base = rss()
    config = {"motion": {"enabled": True}, "filter": {"enabled": True, "size": 3}}
    run = run_pipeline(sys.argv[1], sys.argv[2], config)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"baseline": base, "peak": peak, "n_rois": run.summary["n_rois"]}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_pipeline_peak_rss_stays_within_its_budgets(tmp_path):
    from napari_calcium import simulate_recording
    from napari_calcium.io.binary import save_binary

    rec = simulate_recording(
        n_frames=N_FRAMES, shape=(SIDE, SIDE), n_neurons=40, motion_px=2.0, seed=1, lazy=True
    )
    movie = save_binary(tmp_path / "movie.bin", rec.movie, frame_rate_hz=30.0, pixel_size_um=1.0)
    del rec
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(movie), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    allowed = DEFAULT_BINNED_MEMORY_MIB * MiB + BLOCKS * DEFAULT_BLOCK_BYTES
    intermediate = 4 * N_FRAMES * SIDE * SIDE  # one float32 movie
    assert intermediate > allowed / 2  # loading it whole would not go unnoticed
    over = result["peak"] - result["baseline"]
    assert result["n_rois"] > 0
    assert over < allowed, (
        f"peak RSS {result['peak'] / MiB:.0f} MiB is {over / MiB:.0f} MiB over the baseline "
        f"{result['baseline'] / MiB:.0f} MiB; allowed {allowed / MiB:.0f} MiB"
    )
