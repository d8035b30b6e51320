"""docs/tutorial.md: its Python code runs, in order, on a small demo PrairieView folder."""

from __future__ import annotations

import re

import numpy as np
import tifffile

from napari_calcium.cli import DEMO_BRUKER, main

FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
FOLDER = f"demo/{DEMO_BRUKER}"  # the folder the tutorial's code names


def python_blocks(text: str) -> list[str]:
    return [m.group(1) for m in FENCE.finditer(text)]


def test_tutorial_images_exist(repo_root):
    text = (repo_root / "docs" / "tutorial.md").read_text(encoding="utf-8")
    images = re.findall(r"\]\((images/[^)]+\.png)\)", text)
    assert len(images) >= 7
    for image in images:
        assert (repo_root / "docs" / image).is_file(), image


def test_tutorial_python_runs(repo_root, tmp_path, monkeypatch):
    text = (repo_root / "docs" / "tutorial.md").read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert len(blocks) >= 4 and FOLDER in "".join(blocks)
    small = ["--frames", "450", "--shape", "128", "128", "--neurons", "15", "--motion", "2"]
    assert main(["demo", str(tmp_path / "demo"), "--bruker", *small, "--seed", "3", "--quiet"]) == 0
    # "your own TIFF without metadata": a plain TIFF stack that states no frame rate
    tifffile.imwrite(tmp_path / "my_movie.tif", np.zeros((20, 32, 32), np.uint16))
    monkeypatch.chdir(tmp_path)  # the tutorial's relative paths (demo/..., results/) land here
    namespace: dict = {"__name__": "tutorial"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/tutorial.md python block {i + 1}", "exec"), namespace)
    rec, rois, spikes = namespace["rec"], namespace["rois"], namespace["spikes"]
    assert abs(rec.metadata.frame_rate_hz - 30.0) < 1e-9 and rec.metadata.pixel_size_um == (
        1.0,
        1.0,
    )
    assert rois.n_rois >= 5 and spikes.activity.shape == (rois.n_rois, 450)
    assert np.isfinite(spikes.activity).all()
    assert (tmp_path / "results" / "traces.npz").exists()
    assert namespace["results"].rois.n_rois >= 5
    tiff = namespace["my_movie"]
    assert tiff.metadata.frame_rate_hz == 7.5 and tiff.metadata.pixel_size_um == (1.15, 1.15)
    assert tiff.metadata.extra["overridden"] == {"frame_rate_hz": None, "pixel_size_um": None}
