"""The README's code runs as written (issue 16, point 7).

The Python block runs in a real napari viewer's namespace (``viewer``, as in the napari console),
with only its placeholder folder ``path/to/TSeries-folder`` replaced by the real one-plane Bruker
folder of ``../shared/data``. The set-up block's ``napari-calcium`` commands run as written with
this environment's console script standing in for ``.venv/bin/napari-calcium`` (the ``venv`` and
``pip install`` parts are what ``.ci/run`` itself does).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ONE_PLANE, shared_data

FENCE = re.compile(r"^```(?P<lang>\w+)\n(?P<code>.*?)^```", re.S | re.M)
PLACEHOLDER = "path/to/TSeries-folder"


def blocks(repo_root: Path, lang: str) -> list[str]:
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    return [m["code"] for m in FENCE.finditer(text) if m["lang"] == lang]


@pytest.mark.gui
def test_readme_python_block_runs_as_written(repo_root, make_napari_viewer):
    import napari_calcium as nc

    (code,) = blocks(repo_root, "python")
    assert PLACEHOLDER in code
    code = code.replace(PLACEHOLDER, str(shared_data(*ONE_PLANE)))
    viewer = make_napari_viewer(show=False)
    namespace: dict = {"viewer": viewer, "__name__": "readme"}
    exec(compile(code, "README.md python block", "exec"), namespace)

    rec, rois, traces = namespace["rec"], namespace["rois"], namespace["traces"]
    assert [layer.name for layer in viewer.layers] == ["movie", "truth"]
    # motion is corrected before detection: the example finds the simulated cells
    scores = nc.detection_scores(rois, nc.RoiSet.from_label_image(rec.truth.labels))
    assert scores.f1 >= 0.9, scores
    n_frames = rec.movie.shape[0]
    assert traces.corrected.shape == (len(rois), n_frames)
    assert namespace["dff"].shape == (len(rois), n_frames) and np.isfinite(namespace["dff"]).all()
    assert namespace["spikes"].s.shape == (len(rois), n_frames)
    assert len(namespace["events"]) == len(rois)


def test_readme_setup_commands_run_as_written(repo_root, tmp_path):
    setup = blocks(repo_root, "bash")[0]
    line = next(cmd for cmd in setup.splitlines() if "napari-calcium demo" in cmd)
    commands = [shlex.split(part) for part in line.split("&&")]
    ours = [cmd for cmd in commands if cmd[0].endswith("/napari-calcium")]
    assert [cmd[1] for cmd in ours] == ["demo", "run"], line
    exe = Path(sys.executable).with_name("napari-calcium")
    output = ""
    for cmd in ours:
        proc = subprocess.run(
            [str(exe), *cmd[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        output += proc.stdout
    # the summary the README quotes, in shape: "movie.tif: N ROIs, 1800 frames at 30 Hz (60.0 s)"
    summary = re.search(r"movie\.tif: (\d+) ROIs, 1800 frames at 30 Hz \(60\.0 s\)", output)
    assert summary, output
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    assert "1800 frames at 30 Hz (60.0 s)" in readme
    assert 40 <= int(summary[1]) <= 70  # the demo simulates 60 neurons
    results = tmp_path / "demo-output" / "results"
    assert (results / "provenance.json").is_file()
