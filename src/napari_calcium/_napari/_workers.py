"""Run long work off the GUI thread, with a napari progress bar and a Cancel that works.

Core functions take ``progress=`` (a tqdm-like factory) and ``should_stop=`` (a callable). Here
they get a factory whose bars relay their updates to the GUI thread through Qt signals (napari's
progress bars belong to the main thread), and a ``threading.Event`` as the stop flag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress as napari_progress
from qtpy.QtCore import QObject, Signal


class _ProgressRelay(QObject):
    """Lives in the GUI thread; owns the napari progress bars of one job."""

    opened = Signal(int, int, str)  # bar id, total, description
    advanced = Signal(int, int)  # bar id, n
    closed = Signal(int)
    #: a one-line summary of the newest open bar ("motion: 45 % (9/20), about 12 s left")
    summary = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._bars: dict[int, Any] = {}
        self._counts: dict[int, list] = {}  # bar id -> [done, total, description, start time]
        self._shown = 0.0
        self._next = 0
        self._lock = threading.Lock()
        self.opened.connect(self._open)
        self.advanced.connect(self._advance)
        self.closed.connect(self._close)

    def _open(self, bar_id: int, total: int, desc: str) -> None:
        self._counts[bar_id] = [0, total, desc, time.monotonic()]
        self._bars[bar_id] = napari_progress(total=total, desc=desc or None)
        self._report(bar_id, force=True)

    def _advance(self, bar_id: int, n: int) -> None:
        bar = self._bars.get(bar_id)
        if bar is not None:
            bar.update(n)
            if bar_id in self._counts:
                self._counts[bar_id][0] += n
                self._report(bar_id)

    def _report(self, bar_id: int, force: bool = False) -> None:
        """Emit :attr:`summary` for a bar, at most ten times a second."""
        now = time.monotonic()
        counts = self._counts.get(bar_id)
        if counts is None or (not force and now - self._shown < 0.1):
            return
        self._shown = now
        self.summary.emit(progress_text(*counts, now=now))

    def _close(self, bar_id: int) -> None:
        self._counts.pop(bar_id, None)
        bar = self._bars.pop(bar_id, None)
        if bar is not None:
            bar.close()

    def close_all(self) -> None:
        for bar_id in list(self._bars):
            self._close(bar_id)

    def factory(self, total: int, desc: str | None = None) -> _RelayedBar:
        """tqdm-like factory, safe to call from the worker thread."""
        with self._lock:
            bar_id = self._next
            self._next += 1
        self.opened.emit(bar_id, int(total), desc or "")
        return _RelayedBar(self, bar_id)


def progress_text(done: int, total: int, desc: str, started: float, *, now: float) -> str:
    """``"<desc>: 45 % (9/20), about 12 s left"``; no estimate before the first step is done.

    Parameters
    ----------
    done, total : int
        Steps done and steps in all (``total`` <= 0: unknown, only the count is shown).
    desc : str
        What is being done.
    started, now : float
        ``time.monotonic()`` when the bar opened, and now (s).
    """
    head = f"{desc}: " if desc else ""
    if total <= 0:
        return f"{head}{done} done"
    fraction = min(max(done / total, 0.0), 1.0)
    text = f"{head}{100 * fraction:.0f} % ({done}/{total})"
    if 0 < fraction < 1:
        left = (now - started) * (1 - fraction) / fraction
        text += f", about {left:.0f} s left" if left < 120 else f", about {left / 60:.0f} min left"
    return text


class _RelayedBar:
    def __init__(self, relay: _ProgressRelay, bar_id: int) -> None:
        self._relay, self._id = relay, bar_id

    def update(self, n: int = 1) -> None:
        self._relay.advanced.emit(self._id, int(n))

    def close(self) -> None:
        self._relay.closed.emit(self._id)


class Job:
    """A running background job: ``cancel()`` asks the core function to stop between blocks."""

    def __init__(self, worker, relay: _ProgressRelay, stop: threading.Event) -> None:
        self.worker = worker
        self._relay = relay
        self._stop = stop
        self.done = False  #: True once the worker has finished (returned, failed or cancelled)
        worker.finished.connect(self._mark_done)

    def _mark_done(self) -> None:
        self.done = True

    def cancel(self) -> None:
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()


def start_job(
    func: Callable[..., Any],
    /,
    *args: Any,
    on_returned: Callable[[Any], None] | None = None,
    on_errored: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    on_progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> Job:
    """Run ``func(*args, progress=..., should_stop=..., **kwargs)`` in a napari thread worker.

    ``on_returned`` gets the result in the GUI thread; ``on_errored`` gets the exception
    (including :class:`~napari_calcium.errors.OperationCancelled` after ``Job.cancel()``);
    ``on_finished`` runs last either way. Progress bars appear in napari's activity dock, and
    ``on_progress`` gets a one-line summary with percentage and time left (:func:`progress_text`)
    in the GUI thread, for the widget's own status line.
    """
    relay = _ProgressRelay()
    if on_progress is not None:
        relay.summary.connect(on_progress)
    stop = threading.Event()
    worker = create_worker(
        func,
        *args,
        progress=relay.factory,
        should_stop=stop.is_set,
        _start_thread=False,
        # with our own error handler, don't also re-raise in the event loop; without one,
        # napari shows the error as a notification
        _ignore_errors=on_errored is not None,
        **kwargs,
    )
    if on_returned is not None:
        worker.returned.connect(on_returned)
    if on_errored is not None:
        worker.errored.connect(on_errored)
    worker.finished.connect(relay.close_all)
    if on_finished is not None:
        worker.finished.connect(on_finished)
    job = Job(worker, relay, stop)
    worker.start()
    return job
