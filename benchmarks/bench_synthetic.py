"""Speed of the synthetic-recording generator (``simulate_recording``).

Rows (full size; ``--quick`` shrinks every size so the module finishes in seconds):

a. eager, 1,000 frames of 256 x 256, 50 neurons, defaults (photon + read noise on);
b. the same with ``noise=False``: the difference is what drawing the noise costs;
c. lazy, 2,000 frames of 512 x 512, 200 neurons, then ``.compute()`` with dask's default threaded
   scheduler (scene setup + rendering; the peak RSS increase is noted);
d. building that lazy movie without computing it: the scene setup (cells, spikes, neuropil,
   ground truth) and the dask graph;
e. ``motion_px=3`` at the size of (a): the cost of Fourier-shifting every frame.

Throughput is frames and megabytes (10**6 bytes) of uint16 output movie per second.

Run it through the runner: ``python benchmarks/run.py --only synthetic [--quick]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from _harness.memory import MiB
from _harness.results import Row
from _harness.timing import Timing, time_call
from napari_calcium.core.synthetic.recording import simulate_recording

IMPLEMENTATION = "napari-calcium"


@dataclass(frozen=True)
class Size:
    """A movie size: frames, square frame side in pixels, and number of neurons."""

    n_frames: int
    side: int
    n_neurons: int

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`simulate_recording`."""
        return {
            "n_frames": self.n_frames,
            "shape": (self.side, self.side),
            "n_neurons": self.n_neurons,
        }

    def label(self) -> str:
        """E.g. ``"1000x256x256, 50 cells"``."""
        return f"{self.n_frames}x{self.side}x{self.side}, {self.n_neurons} cells"

    def work(self) -> dict[str, float]:
        """Frames and decimal megabytes of uint16 output per movie."""
        return {"frames": self.n_frames, "MB": self.n_frames * self.side**2 * 2 / 1e6}


def _dask_workers() -> int | None:
    """Number of threads of dask's default threaded scheduler (``dask.system.CPU_COUNT``)."""
    try:
        from dask.system import CPU_COUNT
    except ImportError:
        return None
    return int(CPU_COUNT)


def run(quick: bool = False) -> list[Row]:
    """Time :func:`simulate_recording` eagerly, without noise, lazily and with motion.

    Parameters
    ----------
    quick : bool, optional
        Small sizes and fewer repeats, for a smoke run of a few seconds.

    Returns
    -------
    list of Row
        Rows (a) to (e) of the module docstring, in that order.
    """
    if quick:
        small, large = Size(200, 128, 10), Size(300, 256, 40)
        repeat, build_repeat = 2, 3
    else:
        small, large = Size(1000, 256, 50), Size(2000, 512, 200)
        repeat, build_repeat = 3, 5
    rows: list[Row] = []

    def eager(**extra: Any) -> Timing:
        return time_call(lambda: simulate_recording(**small.kwargs(), **extra), repeat=repeat)

    # (a) defaults, noise on
    t_default = eager()
    rows.append(
        Row(
            "simulate_recording eager",
            IMPLEMENTATION,
            small.label(),
            t_default,
            small.work(),
            notes="defaults (noise on, neuropil, bleaching)",
            params={**small.kwargs(), "lazy": False},
        )
    )

    # (b) noise off
    t_clean = eager(noise=False)
    share = 1 - t_clean.best / t_default.best
    rows.append(
        Row(
            "simulate_recording eager",
            IMPLEMENTATION,
            small.label(),
            t_clean,
            small.work(),
            notes=f"noise=False; noise is {share:.0%} of the default row's best time",
            params={**small.kwargs(), "lazy": False, "noise": False},
        )
    )

    # warm the lazy path (dask import, graph machinery) once, untimed, at a tiny size
    simulate_recording(n_frames=8, shape=(32, 32), n_neurons=2, lazy=True).movie.compute()

    # (c) lazy + compute with dask's default (threaded) scheduler, peak RSS sampled
    t_lazy = time_call(
        lambda: simulate_recording(**large.kwargs(), lazy=True).movie.compute(),
        repeat=repeat,
        warmup=0,
        memory=True,
    )
    probe = simulate_recording(**large.kwargs(), lazy=True).movie
    n_chunks = probe.npartitions
    chunk_frames = probe.chunksize[0]
    out_mib = probe.nbytes / MiB
    del probe
    notes = (
        f"lazy=True + .compute(), dask threaded scheduler ({_dask_workers()} threads), "
        f"{n_chunks} chunks of <= {chunk_frames} frames; includes scene setup"
    )
    if t_lazy.peak_rss_delta_bytes is not None:
        notes += (
            f"; peak RSS +{t_lazy.peak_rss_delta_bytes / MiB:,.0f} MiB (output {out_mib:,.0f} MiB)"
        )
    rows.append(
        Row(
            "simulate_recording lazy+compute",
            IMPLEMENTATION,
            large.label(),
            t_lazy,
            large.work(),
            notes=notes,
            params={**large.kwargs(), "lazy": True, "scheduler": "threads"},
        )
    )

    # (d) build the lazy array only
    t_build = time_call(
        lambda: simulate_recording(**large.kwargs(), lazy=True), repeat=build_repeat, warmup=1
    )
    rows.append(
        Row(
            "simulate_recording lazy build",
            IMPLEMENTATION,
            large.label(),
            t_build,
            {},
            notes=(
                "lazy=True, no compute: cells, spikes, neuropil, ground truth, dask graph; "
                f"{t_build.best / t_lazy.best:.1%} of the lazy+compute row"
            ),
            params={**large.kwargs(), "lazy": True, "compute": False},
        )
    )

    # (e) rigid motion: every frame Fourier-shifted
    t_motion = eager(motion_px=3.0)
    rows.append(
        Row(
            "simulate_recording eager",
            IMPLEMENTATION,
            small.label(),
            t_motion,
            small.work(),
            notes=(
                f"motion_px=3 (Fourier shift per frame, 19 px margin); "
                f"{t_motion.best / t_default.best:.2g}x the default row's best time"
            ),
            params={**small.kwargs(), "lazy": False, "motion_px": 3.0},
        )
    )
    return rows


if __name__ == "__main__":  # convenience: python benchmarks/bench_synthetic.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())
