"""Progress inside each widget while it runs (issue 16, point 6): percentage and time left."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import dock_widget
from napari_calcium._napari._workers import progress_text


def test_progress_text():
    assert progress_text(0, 20, "motion", 0.0, now=1.0) == "motion: 0 % (0/20)"
    assert progress_text(5, 20, "motion", 0.0, now=4.0) == "motion: 25 % (5/20), about 12 s left"
    assert progress_text(10, 20, "", 0.0, now=600.0) == "50 % (10/20), about 10 min left"
    assert progress_text(20, 20, "x", 0.0, now=9.0) == "x: 100 % (20/20)"
    assert progress_text(3, 0, "blocks", 0.0, now=1.0) == "blocks: 3 done"


@pytest.mark.gui
def test_status_line_shows_percentage_while_running(make_napari_viewer, qtbot):
    """A widget's job reports progress; its status line shows percentage and time left.

    The job waits, between its updates, until the status line has shown each one, so the test
    sees every state the user would see, however fast the machine.
    """
    viewer = make_napari_viewer(show=True)
    widget = dock_widget(viewer, "Motion correction")
    seen: list[str] = []
    shown = threading.Event()
    show = widget._progress  # the slot that puts the job's progress on the status line

    def spy(text: str) -> None:
        show(text)
        seen.append(widget.status.value)  # what the user sees right after each update
        shown.set()

    widget._progress = spy

    def work(*, progress, should_stop):
        bar = progress(total=4, desc="registering")
        for _ in range(4):
            assert shown.wait(30), "the status line never showed the progress"
            shown.clear()
            time.sleep(0.12)  # updates are shown at most ten times a second
            bar.update(1)
        bar.close()
        return "ok"

    job = widget.launch(work, on_returned=lambda result: None)
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert seen[0] == "motion correction: running… registering: 0 % (0/4)", seen
    assert seen[1].startswith("motion correction: running… registering: 25 % (1/4), about "), seen
    assert seen[1].endswith(" s left"), seen
    assert "75 % (3/4)" in seen[3], seen
