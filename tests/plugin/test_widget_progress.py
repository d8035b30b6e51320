"""Progress inside each widget while it runs (issue 16, point 6): percentage and time left."""

from __future__ import annotations

import re

import pytest

import napari_calcium as nc
from conftest import add_movie, dock_widget
from napari_calcium._napari._workers import progress_text


def test_progress_text():
    assert progress_text(0, 20, "motion", 0.0, now=1.0) == "motion: 0 % (0/20)"
    assert progress_text(5, 20, "motion", 0.0, now=4.0) == "motion: 25 % (5/20), about 12 s left"
    assert progress_text(10, 20, "", 0.0, now=600.0) == "50 % (10/20), about 10 min left"
    assert progress_text(20, 20, "x", 0.0, now=9.0) == "x: 100 % (20/20)"
    assert progress_text(3, 0, "blocks", 0.0, now=1.0) == "blocks: 3 done"


@pytest.mark.gui
def test_status_line_shows_percentage_while_running(make_napari_viewer, qtbot):
    rec = nc.simulate_recording(n_frames=600, shape=(64, 64), n_neurons=5, seed=3, motion_px=1.0)
    viewer = make_napari_viewer(show=True)
    add_movie(viewer, rec)
    widget = dock_widget(viewer, "Motion correction")
    seen: list[str] = []
    show = widget._progress  # the slot that puts the job's progress on the status line

    def spy(text: str) -> None:
        show(text)
        seen.append(widget.status.value)  # what the user sees right after each update

    widget._progress = spy
    widget.run_button.clicked.emit()  # Run, as a user clicks it
    qtbot.waitUntil(lambda: widget.job is not None and widget.job.done, timeout=120_000)
    assert ": done" in widget.status.value
    shown = [re.search(r"running… .*?(\d+) % \((\d+)/(\d+)\)", text) for text in seen]
    assert shown and all(shown), seen
    assert [int(m[1]) for m in shown] == sorted(int(m[1]) for m in shown) or len(
        {m[3] for m in shown}
    ) > 1, seen  # one bar's percentage only grows (several bars: each starts afresh)
