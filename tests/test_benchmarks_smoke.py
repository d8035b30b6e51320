"""The benchmark scripts keep working (their numbers are read by people, never asserted here)."""

from __future__ import annotations

import subprocess
import sys


def test_benchmark_runner_quick(repo_root):
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "synthetic"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "numpy" in out and "napari-calcium" in out  # machine/version header
    assert "simulate_recording" in out and "frames/s" in out
    assert "error" not in out.lower()
