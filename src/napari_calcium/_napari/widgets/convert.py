"""Plugins > napari-calcium > Convert recording: Bruker/TIFF/binary -> binary or TIFF stacks."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
)

from ...errors import NapariCalciumError, OperationCancelled
from ...io.convert import CONVERT_TARGETS, convert_recording
from .._workers import Job, start_job


class ConvertRecordingWidget(Container):
    """Repackage a recording into ``.bin``/``.json`` or TIFF stacks, off the GUI thread.

    Choose a source (a PrairieView folder, a TIFF, a folder of TIFFs or a binary stack), an output
    folder and a format; optionally restrict channels (comma-separated names or zero-based
    indices). Run starts a background job with a progress bar; Cancel stops it between blocks and
    removes what it had started writing.
    """

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.source = FileEdit(label="recording", mode="d", tooltip="PrairieView/TIFF folder")
        self.source_is_file = CheckBox(text="source is a file (TIFF, .bin)", value=False)
        self.output = FileEdit(label="output folder", mode="d")
        self.target = ComboBox(label="format", choices=CONVERT_TARGETS, value="binary")
        self.channels = LineEdit(label="channels", value="", tooltip="empty: all channels")
        self.size_cap = FloatSpinBox(label="TIFF size cap (GB)", value=3.9, min=0.001, max=1000)
        self.overwrite = CheckBox(text="overwrite existing files", value=False)
        self.run_button = PushButton(text="Convert")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        super().__init__(
            widgets=[
                self.source,
                self.source_is_file,
                self.output,
                self.target,
                self.channels,
                self.size_cap,
                self.overwrite,
                self.run_button,
                self.cancel_button,
                self.status,
            ],
        )
        self.job: Job | None = None
        self.result: list[Path] | None = None
        self.source_is_file.changed.connect(self._on_source_kind)
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)

    def _on_source_kind(self, is_file: bool) -> None:
        self.source.mode = "r" if is_file else "d"

    def _channels(self) -> list[str | int] | None:
        text = self.channels.value.strip()
        if not text:
            return None
        return [int(c) if c.strip().isdigit() else c.strip() for c in text.split(",") if c.strip()]

    def start(self) -> Job:
        """Start the conversion with the current settings."""
        self.result = None
        self.status.value = "converting…"
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.job = start_job(
            convert_recording,
            Path(self.source.value),
            Path(self.output.value),
            to=self.target.value,
            channels=self._channels(),
            size_cap_gb=self.size_cap.value,
            overwrite=self.overwrite.value,
            on_returned=self._done,
            on_errored=self._failed,
            on_finished=self._finished,
        )
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.value = "cancelling…"

    def _done(self, written: list[Path]) -> None:
        self.result = written
        self.status.value = f"wrote {len(written)} file(s) to {self.output.value}"

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, OperationCancelled):
            self.status.value = "cancelled: nothing was left half-written"
        elif isinstance(exc, NapariCalciumError):
            self.status.value = f"error: {exc}"
        else:
            self.status.value = f"unexpected error: {type(exc).__name__}: {exc}"

    def _finished(self) -> None:
        self.run_button.enabled = True
        self.cancel_button.enabled = False
