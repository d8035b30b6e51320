"""Plugins > napari-calcium > Convert recording: Bruker/TIFF/binary -> binary or TIFF stacks."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, FileEdit, FloatSpinBox, LineEdit

from ...io.convert import CONVERT_TARGETS, convert_recording
from .._workers import Job
from ._base import JobWidget


class ConvertRecordingWidget(JobWidget):
    """Repackage a recording into ``.bin``/``.json`` or TIFF stacks, off the GUI thread.

    Choose a source (a PrairieView folder, a TIFF, a folder of TIFFs or a binary stack), an output
    folder and a format; optionally restrict channels (comma-separated names or zero-based
    indices). Run starts a background job with a progress bar; Cancel stops it between blocks and
    removes what it had started writing.
    """

    title = "convert"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.source = FileEdit(label="recording", mode="d", tooltip="PrairieView/TIFF folder")
        self.source_is_file = CheckBox(text="source is a file (TIFF, .bin)", value=False)
        self.output = FileEdit(label="output folder", mode="d")
        self.target = ComboBox(label="format", choices=CONVERT_TARGETS, value="binary")
        self.channels = LineEdit(label="channels", value="", tooltip="empty: all channels")
        self.size_cap = FloatSpinBox(label="TIFF size cap (GB)", value=3.9, min=0.001, max=1000)
        self.overwrite = CheckBox(text="overwrite existing files", value=False)
        super().__init__(
            [self.source, self.source_is_file, self.output, self.target, self.channels,
             self.size_cap, self.overwrite],
            run_text="Convert",
        )  # fmt: skip
        self.result: list[Path] | None = None
        self.source_is_file.changed.connect(self._on_source_kind)

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
        return self.launch(
            convert_recording,
            Path(self.source.value),
            Path(self.output.value),
            to=self.target.value,
            channels=self._channels(),
            size_cap_gb=self.size_cap.value,
            overwrite=self.overwrite.value,
            on_returned=self._done,
        )

    def _done(self, written: list[Path]) -> None:
        self.result = written
        self.status.value = f"wrote {len(written)} file(s) to {self.output.value}"
