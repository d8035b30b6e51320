"""Spike inference in the trace plot dock: the reconvolved fit and the activity of a ROI.

A mixin of :class:`~napari_calcium._napari.widgets.trace_plot.TracePlotWidget`. It reads what the
Deconvolve widget stored with the Labels layer (``metadata["napari_calcium"]``): ``"spikes"``
(a DeconvolutionResult), ``"spikes_source"`` (``"dff"`` or ``"corrected"``: the traces it was
computed from) and the live preview ``"spikes_preview"`` (``id``, ``fit``, ``activity``,
``method``, ``source``). The fit ``baseline + c`` is drawn over the trace it was computed from
(fluorescence plot for corrected traces, dF/F plot for dF/F), the activity in a third plot below;
the preview's curves are dashed and named "... preview". Nothing is computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._layers import METADATA_KEY
from ._plot_items import bounds

__all__ = ["SPIKE_COLORS", "SPIKE_STYLES", "SpikesMixin"]

#: pen colour per curve name (the activity plot is plot row 2)
SPIKE_COLORS = {
    "fit": "#d070e0",
    "activity": "#f0e050",
    "fit preview": "#d070e0",
    "activity preview": "#f0e050",
}
#: "solid" for stored results, "dash" for the Deconvolve widget's preview
SPIKE_STYLES = {
    "fit": "solid",
    "activity": "solid",
    "fit preview": "dash",
    "activity preview": "dash",
}
ACTIVITY_ROW = 2


def _store(layer: Any) -> dict:
    return (getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}


class SpikesMixin:
    """Stored spikes and the spikes preview of the chosen layer, as plot items of one ROI."""

    layer: Any
    traces: Any

    @property
    def spikes(self) -> Any:
        """The DeconvolutionResult stored with the layer if it fits the traces, else None."""
        spikes = _store(self.layer).get("spikes") if self.layer is not None else None
        traces = self.traces
        if spikes is None or traces is None or np.shape(spikes.c)[-1] != traces.n_frames:
            return None  # none, or stale (made from other traces)
        return spikes

    def spikes_source(self) -> str:
        """``"dff"`` or ``"corrected"``: the traces the stored spikes were computed from."""
        source = _store(self.layer).get("spikes_source")
        if source in ("dff", "corrected"):
            return source
        return "dff" if _store(self.layer).get("dff") is not None else "corrected"

    def _spikes_preview(self, traces: Any) -> dict | None:
        """The Deconvolve widget's live preview stored with the layer, if it fits the traces."""
        preview = _store(self.layer).get("spikes_preview") if self.layer is not None else None
        if not preview or traces is None or int(preview.get("id", -1)) not in traces.ids:
            return None
        if any(np.shape(preview.get(k)) != (traces.n_frames,) for k in ("fit", "activity")):
            return None
        return preview

    def _has_spikes(self, traces: Any) -> bool:
        return self.spikes is not None or self._spikes_preview(traces) is not None

    @staticmethod
    def fit_row(source: str | None) -> int:
        """Plot row of a fit computed from `source`: 1 (dF/F) or 0 (fluorescence)."""
        return 1 if source == "dff" else 0

    def _spike_items(self, roi: int, i: int, preview: dict | None) -> list[tuple]:
        """(name, plot row, y, (min, max), stacking anchor) of the spike curves of one ROI.

        The fit moves with the trace it was computed from in the stacked view (its anchor is
        that trace's minimum); the activity is anchored on its own minimum.
        """
        items = []
        spikes = self.spikes
        if spikes is not None and roi in spikes.ids:
            k = spikes.row(roi)
            source = self.spikes_source()
            fit = np.asarray(spikes.baseline[k]) + np.asarray(spikes.c[k])
            items += self._fit_and_activity("", fit, np.asarray(spikes.activity[k]), source, i)
        if preview is not None and int(preview["id"]) == roi:
            fit, act = np.asarray(preview["fit"]), np.asarray(preview["activity"])
            items += self._fit_and_activity(" preview", fit, act, preview.get("source"), i)
        return items

    def _fit_and_activity(self, suffix, fit, activity, source, i) -> list[tuple]:
        row = self.fit_row(source)
        rows = self._rows("dff" if row == 1 else "corrected")
        lo, hi = bounds(fit)
        anchor = self._bounds(rows, i)[0] if rows is not None else lo
        a_lo, a_hi = bounds(activity)
        return [
            ("fit" + suffix, row, fit, (lo, hi), anchor),
            ("activity" + suffix, ACTIVITY_ROW, activity, (a_lo, a_hi), a_lo),
        ]

    def _spike_rows(self, traces: Any) -> set[int]:
        """Plot rows the spike curves of the selection use (empty when none are drawn)."""
        preview = self._spikes_preview(traces)
        rows = set()
        if self.spikes is not None:
            rows |= {self.fit_row(self.spikes_source()), ACTIVITY_ROW}
        if preview is not None:
            rows |= {self.fit_row(preview.get("source")), ACTIVITY_ROW}
        return rows

    def _spikes_message(self, traces: Any) -> str:
        parts = []
        preview = self._spikes_preview(traces)
        if preview is not None and int(preview["id"]) in self.selected_ids:
            parts.append(
                f"Dashed: Deconvolve preview of ROI {int(preview['id'])} "
                f"({preview.get('method', '?')}, fit and activity; not stored)."
            )
        stored = _store(self.layer).get("spikes") if self.layer is not None else None
        if stored is not None and self.spikes is None:
            parts.append("The stored spikes do not fit these traces: run Deconvolve again.")
        return " ".join(parts)
