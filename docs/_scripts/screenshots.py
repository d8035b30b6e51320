"""Render the screenshots used in docs/.

Run under Xvfb: ``xvfb-run -a python docs/_scripts/screenshots.py``.

Each picture is made from the plugin's own entry points, the way a user would get it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "images"


def sample_recording() -> None:
    """File > Open Sample > napari-calcium > Synthetic two-photon recording, 10 s in."""
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1300, 820)
    viewer.open_sample("napari-calcium", "synthetic")
    viewer.dims.set_point(0, 10.0)
    viewer.layers["ground-truth ROIs"].contour = 1
    viewer.layers["ground-truth ROIs"].opacity = 0.8
    viewer.scale_bar.visible = True
    viewer.text_overlay.visible = True
    viewer.text_overlay.text = "t = 10.0 s"
    napari.qt.get_qapp().processEvents()
    shot = viewer.screenshot(path=str(OUT / "sample_recording.png"), canvas_only=False, flash=False)
    assert np.asarray(shot)[..., :3].std() > 10, "blank screenshot"
    viewer.close()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    sample_recording()
    print("wrote", *sorted(p.name for p in OUT.glob("*.png")), file=sys.stderr)
